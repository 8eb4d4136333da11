// WebSocket clients side by side, same run, same servers (a child process, peer-server.mjs, from
// the builds): raw `ws` (and raw `ws` corked per tick), HAWebSocket, HAWebSocket with `resume`,
// reconnecting-websocket, partysocket and socket.io-client.
//   1. client CPU per 64 B send (process.cpuUsage over SENDS sends, 1,000 per tick)
//   2. client CPU per 4 KiB receive (the server floods RECEIVES messages)
//   3. idle JS heap and RSS per connection, 1,000 connections, a fresh process per sample
// Rounds are interleaved (every client once per round, the order rotated by one each round, so
// every client runs in every position: reversing it every other round ran the clients at both ends
// twice in a row, which flattered them) and reported as median and range (min-max), so drift on the
// shared machine hits every client alike. BENCH_ROUNDS (default 5) sets the rounds.
// Two builds are not compared in one process: the build imported second measured 0.6-0.9 µs more
// per send than the first, whichever it was (two copies of `ws` and the engine in one V8). Swap
// the builds between runs instead.
//   pnpm bench ws
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HAWebSocket } from '@lifeline/node/ws';
import { WebSocket as PartySocket } from 'partysocket';
import ReconnectingWebSocket from 'reconnecting-websocket';
import { io as ioClient } from 'socket.io-client';
import WebSocket from 'ws';

const SENDS = 20_000; // within HAWebSocket's default queue (16 MiB, 512 B accounted per message) with none confirmed yet
const PER_TICK = 1_000;
const RECEIVES = 10_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_CONNECTIONS = 1_000;
const IDLE_SAMPLES = Number(process.env.BENCH_IDLE_SAMPLES ?? 3);
const thisFile = fileURLToPath(import.meta.url);

interface Ports {
  raw: number;
  resume: number;
  io: number;
}

/** What a benchmark needs of a client: send, hear binary messages and "done", close. */
interface Client {
  send(data: Buffer | string): void;
  /** Called for every binary message, and with `done` true for the server's "done". */
  listen(listener: (done: boolean) => void): void;
  close(): Promise<void>;
}

type Kind =
  | 'raw ws'
  | 'raw ws, corked per tick'
  | 'HAWebSocket'
  | 'HAWebSocket, resume'
  | 'reconnecting-websocket'
  | 'partysocket'
  | 'socket.io-client';

/** `ws` with its TCP socket corked until the end of the tick in which it first writes (as HAWebSocket does). */
function corkedSend(socket: WebSocket, data: Buffer | string): void {
  const tcp = (socket as unknown as { _socket: { cork(): void; uncork(): void; writableCorked: number } })
    ._socket;
  if (tcp.writableCorked === 0) {
    tcp.cork();
    process.nextTick(() => tcp.uncork());
  }
  socket.send(data);
}

async function open(kind: Kind, ports: Ports): Promise<Client> {
  const rawUrl = `ws://127.0.0.1:${ports.raw}`;
  switch (kind) {
    case 'raw ws':
    case 'raw ws, corked per tick': {
      const socket = new WebSocket(rawUrl, { perMessageDeflate: false });
      await once(socket, 'open');
      const corked = kind !== 'raw ws';
      return {
        send: corked ? (data) => corkedSend(socket, data) : (data) => socket.send(data),
        listen: (listener) => socket.on('message', (_data, isBinary) => listener(!isBinary)),
        close: async () => {
          socket.close();
          await once(socket, 'close');
        },
      };
    }
    case 'HAWebSocket':
    case 'HAWebSocket, resume': {
      const socket =
        kind === 'HAWebSocket'
          ? new HAWebSocket(rawUrl)
          : new HAWebSocket(`ws://127.0.0.1:${ports.resume}`, { resume: true });
      await once(socket as unknown as EventTarget, 'open');
      return {
        send: (data) => socket.send(data),
        listen: (listener) =>
          socket.addEventListener('message', (event) => listener(typeof event.data === 'string')),
        close: async () => {
          const closed = once(socket as unknown as EventTarget, 'close');
          socket.close();
          await closed;
        },
      };
    }
    case 'reconnecting-websocket':
    case 'partysocket': {
      const socket =
        kind === 'partysocket'
          ? new PartySocket(rawUrl, [], { WebSocket })
          : new ReconnectingWebSocket(rawUrl, [], { WebSocket });
      socket.binaryType = 'nodebuffer' as BinaryType;
      await once(socket as unknown as EventTarget, 'open');
      return {
        send: (data) => socket.send(data as Uint8Array<ArrayBuffer>),
        listen: (listener) =>
          socket.addEventListener('message', (event: MessageEvent) =>
            listener(typeof event.data === 'string'),
          ),
        close: async () => {
          const closed = once(socket as unknown as EventTarget, 'close');
          socket.close();
          await closed;
        },
      };
    }
    case 'socket.io-client': {
      const socket = ioClient(`http://127.0.0.1:${ports.io}`, {
        transports: ['websocket'],
        reconnection: true,
      });
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      return {
        send: (data) => {
          if (typeof data === 'string') {
            const [command, n, size] = data.split(':');
            socket.emit(command!, Number(n), Number(size));
          } else socket.emit('m', data);
        },
        listen: (listener) => {
          socket.on('m', () => listener(false));
          socket.on('done', () => listener(true));
        },
        close: async () => {
          socket.close();
        },
      };
    }
  }
}

interface Sample {
  cpuMicros: number;
  perSecond: number;
}

/** CPU per send: "count:N", then N 64 B sends, PER_TICK per tick; ends at the server's "done". */
async function sendRun(client: Client, hear: Hear): Promise<Sample> {
  const payload = Buffer.alloc(64, 7);
  const done = hear.next();
  return measure(SENDS, async () => {
    client.send(`count:${SENDS}`);
    for (let sent = 0; sent < SENDS; ) {
      for (let i = 0; i < PER_TICK && sent < SENDS; i++, sent++) client.send(payload);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
  });
}

/** CPU per receive: "flood:N:4096"; ends at the server's "done" after N messages. */
async function receiveRun(client: Client, hear: Hear): Promise<Sample> {
  const done = hear.next();
  hear.messages = 0;
  const sample = await measure(RECEIVES, async () => {
    client.send(`flood:${RECEIVES}:4096`);
    await done;
  });
  if (hear.messages !== RECEIVES) throw new Error(`received ${hear.messages} of ${RECEIVES}`);
  return sample;
}

/** Counts binary messages and resolves a promise per "done". */
class Hear {
  messages = 0;
  private wake: (() => void) | undefined;
  constructor(client: Client) {
    client.listen((done) => {
      if (!done) this.messages++;
      else this.wake?.();
    });
  }
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }
}

async function measure(count: number, body: () => Promise<void>): Promise<Sample> {
  globalThis.gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await body();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { cpuMicros: (used.user + used.system) / count, perSecond: count / seconds };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Idle memory, in a fresh process per sample: a heap shared with earlier runs made the deltas meaningless. */
async function idleMemory(kind: Kind, ports: Ports): Promise<{ heap: number; rss: number }> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', thisFile, '--idle', kind, JSON.stringify(ports)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  await once(child, 'exit');
  return JSON.parse(line) as { heap: number; rss: number };
}

if (process.argv[2] === '--idle') {
  const kind = process.argv[3] as Kind;
  const ports = JSON.parse(process.argv[4]!) as Ports;
  // Warm up: load and compile everything a connection uses, so only per-connection memory is counted.
  await (await open(kind, ports)).close();
  await settle();
  const before = process.memoryUsage();
  const clients: Client[] = [];
  for (let i = 0; i < IDLE_CONNECTIONS; i++) clients.push(await open(kind, ports));
  await settle();
  const after = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({
      heap: (after.heapUsed - before.heapUsed) / IDLE_CONNECTIONS,
      rss: (after.rss - before.rss) / IDLE_CONNECTIONS,
    })}\n`,
  );
  process.exit(0);
}

const server = spawn(process.execPath, [fileURLToPath(new URL('./peer-server.mjs', import.meta.url))], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const [portsLine] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
const ports = JSON.parse(portsLine) as Ports;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const f = (value: number, digits: number) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const range = (values: number[], digits: number) =>
  `${f(median(values), digits)} (${f(Math.min(...values), digits)}–${f(Math.max(...values), digits)})`;

const only = process.env.BENCH_CLIENTS?.split(';');
const kinds = (
  [
    'raw ws',
    'raw ws, corked per tick',
    'HAWebSocket',
    'HAWebSocket, resume',
    'reconnecting-websocket',
    'partysocket',
    'socket.io-client',
  ] as Kind[]
).filter((kind) => !only || kind.startsWith('raw ws') || only.includes(kind));

async function table(
  title: string,
  baseline: Kind,
  run: (client: Client, hear: Hear) => Promise<Sample>,
  skip: Kind[] = [],
): Promise<Map<Kind, number[]>> {
  const clients = new Map<Kind, { client: Client; hear: Hear }>();
  for (const kind of kinds) {
    if (skip.includes(kind)) continue;
    const client = await open(kind, ports);
    clients.set(kind, { client, hear: new Hear(client) });
  }
  const cpu = new Map<Kind, number[]>();
  const rate = new Map<Kind, number[]>();
  // Warm-up, unmeasured: JIT and socket buffers.
  for (const { client, hear } of clients.values()) await run(client, hear);
  const order = [...clients.keys()];
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of rotated(order, round)) {
      const { client, hear } = clients.get(kind)!;
      const sample = await run(client, hear);
      cpu.set(kind, [...(cpu.get(kind) ?? []), sample.cpuMicros]);
      rate.set(kind, [...(rate.get(kind) ?? []), sample.perSecond]);
    }
  }
  for (const { client } of clients.values()) await client.close();
  console.log(`\n### ${title}, ${ROUNDS} interleaved rounds, median (min–max)\n`);
  console.log(`| client | client CPU µs/message | vs ${baseline} (median) | messages/s |`);
  console.log('| --- | ---: | ---: | ---: |');
  const base = median(cpu.get(baseline) ?? [Number.NaN]);
  for (const kind of order) {
    const values = cpu.get(kind)!;
    console.log(
      `| ${kind} | ${range(values, 2)} | ${f(median(values) / base, 2)}x | ${f(median(rate.get(kind)!), 0)} |`,
    );
  }
  return cpu;
}

/** `items` starting at index `by` (modulo its length), wrapping around. */
function rotated<T>(items: readonly T[], by: number): T[] {
  const at = by % items.length;
  return [...items.slice(at), ...items.slice(0, at)];
}

try {
  if (!process.env.BENCH_SKIP_CPU) {
    await table(
      `Client CPU per 64 B send (${SENDS.toLocaleString('en-US')} sends per run, ${PER_TICK} per tick)`,
      'raw ws, corked per tick',
      sendRun,
    );
    await table(
      `Client CPU per 4 KiB receive (${RECEIVES.toLocaleString('en-US')} messages per run)`,
      'raw ws',
      receiveRun,
      ['raw ws, corked per tick'],
    );
  }
  const heap = new Map<Kind, number[]>();
  const rss = new Map<Kind, number[]>();
  const idleKinds = kinds.filter((kind) => kind !== 'raw ws, corked per tick');
  for (let i = 0; i < IDLE_SAMPLES; i++) {
    for (const kind of rotated(idleKinds, i)) {
      const sample = await idleMemory(kind, ports);
      heap.set(kind, [...(heap.get(kind) ?? []), sample.heap]);
      rss.set(kind, [...(rss.get(kind) ?? []), sample.rss]);
    }
  }
  if (IDLE_SAMPLES > 0) {
    console.log(
      `\n### Idle memory per connection, ${IDLE_CONNECTIONS.toLocaleString('en-US')} connections, a fresh process per sample, ${IDLE_SAMPLES} samples, median (min–max), bytes\n`,
    );
    console.log('| client | JS heap | vs raw ws | RSS |');
    console.log('| --- | ---: | ---: | ---: |');
    const rawHeap = median(heap.get('raw ws') ?? [Number.NaN]);
    for (const kind of idleKinds) {
      console.log(
        `| ${kind} | ${range(heap.get(kind)!, 0)} | ${f(median(heap.get(kind)!) / rawHeap, 2)}x | ${range(rss.get(kind)!, 0)} |`,
      );
    }
  }
} finally {
  server.stdin!.end();
  await once(server, 'exit');
}
