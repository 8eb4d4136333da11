// HAWebSocket vs a raw `ws` client, same run, same echo server (a child process):
// messages per second at 64 B and 4 KiB with a window of outstanding messages, client CPU per
// message, and the memory of 1,000 idle connections.
//   pnpm bench ws
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { HAWebSocket } from '@lifeline/node/ws';
import WebSocket from 'ws';
import { alternate, fmt, measure, row, type Sample, startChildServer } from './bench-utils.js';

const MESSAGES = 40_000;
const WINDOW = 256;
const ROUNDS = 3;
const IDLE_CONNECTIONS = 1_000;

const server = await startChildServer(fileURLToPath(new URL('./echo-server.mjs', import.meta.url)));
const url = `ws://127.0.0.1:${server.port}`;

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

async function idleMemory(makeClient: () => Promise<Client>): Promise<number> {
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  const clients: Client[] = [];
  for (let i = 0; i < IDLE_CONNECTIONS; i++) clients.push(await makeClient());
  globalThis.gc?.();
  const bytesPerConnection = (process.memoryUsage().heapUsed - before) / IDLE_CONNECTIONS;
  await Promise.all(clients.map((client) => client.close()));
  return bytesPerConnection;
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

const rawMemory: number[] = [];
const haMemory: number[] = [];
for (let i = 0; i < 2; i++) {
  rawMemory.push(await idleMemory(rawClient));
  haMemory.push(await idleMemory(haClient));
  haMemory.push(await idleMemory(haClient));
  rawMemory.push(await idleMemory(rawClient));
}
const avg = (values: number[]) => values.reduce((x, y) => x + y, 0) / values.length;
console.log(
  `\n${IDLE_CONNECTIONS} idle connections, JS heap per connection (after GC), mean of 4 runs each\n`,
);
row(['client', 'heap bytes/connection', 'ratio']);
row(['---', '---', '---']);
row(['raw ws', fmt(avg(rawMemory)), '1.00x']);
row(['HAWebSocket', fmt(avg(haMemory)), `${fmt(avg(haMemory) / avg(rawMemory), 2)}x`]);
await server.stop();
