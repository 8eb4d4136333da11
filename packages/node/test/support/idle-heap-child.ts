// Child process of ws-idle-memory.test.ts: opens N idle HAWebSockets to the port given and prints
// the JS heap they hold, per connection, after GC. Run with --expose-gc, from the sources.
import { once } from 'node:events';
import { HAWebSocket } from '@lifeline/node/ws';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const gc = (globalThis as { gc?: () => void }).gc!;

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function open(): Promise<InstanceType<typeof HAWebSocket>> {
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`);
  await once(socket as unknown as EventTarget, 'open');
  return socket;
}

// Warm up: load and compile what a connection uses, so only per-connection memory is counted.
const warm = await open();
const closed = once(warm as unknown as EventTarget, 'close');
warm.close();
await closed;
await settle();
const before = process.memoryUsage().heapUsed;
const sockets = [];
for (let i = 0; i < count; i++) sockets.push(await open());
await settle();
const perConnection = (process.memoryUsage().heapUsed - before) / count;
process.stdout.write(`${JSON.stringify({ perConnection })}\n`);
process.exit(0);
