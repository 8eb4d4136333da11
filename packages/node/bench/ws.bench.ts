// HAWebSocket vs a raw `ws` client, same run, same echo server (a child process):
// messages per second at 64 B and 4 KiB with a window of outstanding messages, client CPU per
// message, and the memory of 1,000 idle connections.
//   pnpm bench ws
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HAWebSocket } from '@lifeline/node/ws';
import WebSocket from 'ws';
import { alternate, fmt, measure, row, type Sample, startChildServer } from './bench-utils.js';

const MESSAGES = 40_000;
const WINDOW = 256;
const ROUNDS = 3;
const IDLE_CONNECTIONS = 1_000;

const thisFile = fileURLToPath(import.meta.url);
const idleMode = process.argv[2] === '--idle';
const server = idleMode
  ? undefined
  : await startChildServer(fileURLToPath(new URL('./echo-server.mjs', import.meta.url)));
let url = server ? `ws://127.0.0.1:${server.port}` : '';

interface Client {
  send(data: Buffer): void;
  onMessage(listener: () => void): void;
  close(): Promise<void>;
}

async function rawClient(): Promise<Client> {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  await once(socket, 'open');
  return {
    send: (data) => socket.send(data),
    onMessage: (listener) => socket.on('message', listener),
    close: async () => {
      socket.close();
      await once(socket, 'close');
    },
  };
}

async function haClient(): Promise<Client> {
  const socket = new HAWebSocket(url);
  await once(socket as unknown as EventTarget, 'open');
  return {
    send: (data) => socket.send(data),
    onMessage: (listener) => socket.addEventListener('message', listener),
    close: async () => {
      const closed = once(socket as unknown as EventTarget, 'close');
      socket.close();
      await closed;
    },
  };
}

async function throughput(makeClient: () => Promise<Client>, size: number): Promise<Sample> {
  const client = await makeClient();
  const payload = Buffer.alloc(size, 7);
  let received = 0;
  let sent = 0;
  let wake: (() => void) | undefined;
  client.onMessage(() => {
    received++;
    if (wake && (sent - received < WINDOW / 2 || received === MESSAGES)) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const sample = await measure(MESSAGES, async () => {
    while (received < MESSAGES) {
      while (sent < MESSAGES && sent - received < WINDOW) {
        client.send(payload);
        sent++;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  });
  await client.close();
  return sample;
}

/**
 * Memory of idle connections, measured in a fresh process per run: a heap shared with earlier
 * runs (their garbage, their compiled code) made the deltas meaningless.
 */
async function idleMemory(kind: 'raw' | 'ha'): Promise<{ heap: number; rss: number }> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', thisFile, '--idle', kind, url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  await once(child, 'exit');
  return JSON.parse(line) as { heap: number; rss: number };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

if (process.argv[2] === '--idle') {
  const [, , , kind, target] = process.argv;
  url = target!;
  const make = kind === 'raw' ? rawClient : haClient;
  // Warm up: load and compile everything a connection uses, so only per-connection memory is counted.
  await (await make()).close();
  await settle();
  const before = process.memoryUsage();
  const clients: Client[] = [];
  for (let i = 0; i < IDLE_CONNECTIONS; i++) clients.push(await make());
  await settle();
  const after = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({
      heap: (after.heapUsed - before.heapUsed) / IDLE_CONNECTIONS,
      rss: (after.rss - before.rss) / IDLE_CONNECTIONS,
    })}\n`,
  );
  await Promise.all(clients.map((client) => client.close()));
  process.exit(0);
}

console.log(`${MESSAGES} messages per run, window ${WINDOW}, ${ROUNDS} x (A B B A), medians\n`);
row(['payload', 'raw ws msg/s', 'HAWebSocket msg/s', 'ratio', 'raw CPU µs/msg', 'HA CPU µs/msg']);
row(['---', '---', '---', '---', '---', '---']);
for (const size of [64, 4096]) {
  const { a: raw, b: ha } = await alternate(
    ROUNDS,
    () => throughput(rawClient, size),
    () => throughput(haClient, size),
  );
  row([
    `${size} B`,
    fmt(raw.perSecond),
    fmt(ha.perSecond),
    `${fmt(ha.perSecond / raw.perSecond, 2)}x`,
    fmt(raw.cpuMicrosPerMessage, 1),
    fmt(ha.cpuMicrosPerMessage, 1),
  ]);
}

const rawMemory: { heap: number; rss: number }[] = [];
const haMemory: { heap: number; rss: number }[] = [];
for (let i = 0; i < 2; i++) {
  rawMemory.push(await idleMemory('raw'));
  haMemory.push(await idleMemory('ha'));
  haMemory.push(await idleMemory('ha'));
  rawMemory.push(await idleMemory('raw'));
}
const avg = (values: number[]) => values.reduce((x, y) => x + y, 0) / values.length;
const rawHeap = avg(rawMemory.map((m) => m.heap));
const haHeap = avg(haMemory.map((m) => m.heap));
const rawRss = avg(rawMemory.map((m) => m.rss));
const haRss = avg(haMemory.map((m) => m.rss));
console.log(
  `\n${IDLE_CONNECTIONS} idle connections per process, bytes per connection after GC, mean of 4 fresh processes each\n`,
);
row(['client', 'JS heap', 'RSS', 'heap ratio', 'RSS ratio']);
row(['---', '---', '---', '---', '---']);
row(['raw ws', fmt(rawHeap), fmt(rawRss), '1.00x', '1.00x']);
row(['HAWebSocket', fmt(haHeap), fmt(haRss), `${fmt(haHeap / rawHeap, 2)}x`, `${fmt(haRss / rawRss, 2)}x`]);
await server?.stop();
