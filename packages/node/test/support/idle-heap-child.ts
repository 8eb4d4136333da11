// Child process of ws-idle-memory.test.ts and resume-idle-memory.test.ts: opens N idle HAWebSockets to the port given and prints
// the JS heap they hold, per connection, after GC. Run with --expose-gc, from the sources.
import { once } from 'node:events';
import { HAWebSocket } from '@lifeline/node/ws';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
// `resume` as a third argument: resuming sockets (against a resume server), for resume-idle-memory.test.ts.
const resume = process.argv[4] === 'resume';
const gc = (globalThis as { gc?: () => void }).gc!;

/**
 * The heap after GC once it stops shrinking: a GC can leave work for the next one (Node 24 frees
 * about 3 MB of its own on a later pass), so one reading after a fixed number of passes can sit
 * above what a later one sees. At most 20 rounds of 3 passes.
 */
async function settledHeap(): Promise<number> {
  let last = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const heap = process.memoryUsage().heapUsed;
    if (heap > last - 64 * 1024) return Math.min(heap, last);
    last = heap;
  }
  return last;
}

async function open(): Promise<InstanceType<typeof HAWebSocket>> {
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, resume ? { resume: true } : {});
  await once(socket as unknown as EventTarget, 'open');
  return socket;
}

// Warm up: load and compile what a connection uses, so only per-connection memory is counted.
const warm = await open();
const closed = once(warm as unknown as EventTarget, 'close');
warm.close();
await closed;
const before = await settledHeap();
const sockets = [];
for (let i = 0; i < count; i++) sockets.push(await open());
const perConnection = ((await settledHeap()) - before) / count;
process.stdout.write(`${JSON.stringify({ perConnection })}\n`);
process.exit(0);
