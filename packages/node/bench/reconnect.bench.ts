// Recovery latency and cost at DEFAULT options (issue 9): `pnpm bench reconnect`.
//
// 1. 100 `new HAWebSocket(url)` clients, default options, open against an echo server in a child
//    process. The server is killed with SIGKILL, stays down for 1 s (then 5 s), and comes back on
//    the same port (a process loaded ahead, told to listen). For each client: the time from the
//    server listening again (its own timestamp) to that client's `open` state again. Per round,
//    the median and p90 over the 100 clients, and the spread of their arrival (min, p10, max).
// 2. The cost of a long outage: 100 fresh clients, the server killed and its port answered by a
//    TCP listener that counts each connection and resets it, for 30 s. Connection attempts per
//    second per client (all 30 s, and the last 10 s), and how many clients gave up meanwhile.
//
// A benchmark, not a test: it asserts nothing, and its figures depend on the machine's load.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { HAWebSocketInstance } from '@lifeline/core/internal';
import { HAWebSocket } from '@lifeline/node/ws';
import { fmt, row } from './bench-utils.js';

const CLIENTS = 100;
const OUTAGES_MS = [1_000, 5_000];
const ROUNDS = 3;
const LONG_OUTAGE_MS = 30_000;
/** A round whose clients have not all reopened by then reports what it has. */
const ROUND_TIMEOUT_MS = 90_000;

const script = fileURLToPath(new URL('./echo-server.mjs', import.meta.url));
/** Epoch milliseconds from the monotonic clock, comparable with the server process's timestamp. */
const now = () => performance.timeOrigin + performance.now();
const at = (time: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, time - now())));

/** The echo server's process: `standby` ones are loaded and listen when told to. */
class ServerProcess {
  /** When it accepted each TCP connection (standby processes report them). */
  readonly accepted: number[] = [];
  private readonly listened: Promise<{ port: number; t: number }>;

  private constructor(private readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! });
    this.listened = new Promise((resolve, reject) => {
      child.once('exit', () => reject(new Error('the echo server exited before listening')));
      lines.on('line', (line) => {
        const record = JSON.parse(line) as { port?: number; t?: number; a?: number };
        if (record.a !== undefined) this.accepted.push(record.a);
        else resolve(record as { port: number; t: number });
      });
    });
    // Killed on purpose later; only a process that never listened is an error.
    this.listened.catch(() => {});
  }

  static spawn(port: number, standby: boolean): ServerProcess {
    const args = [script, String(port)];
    if (standby) args.push('standby');
    const child = spawn(process.execPath, args, { stdio: [standby ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
    return new ServerProcess(child);
  }

  /** Tells a standby process to listen; resolves with its port and when it began listening. */
  listening(): Promise<{ port: number; t: number }> {
    this.child.stdin?.end('go\n');
    return this.listened;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** A client and the times it (re)opened and gave up. */
interface Client {
  socket: HAWebSocketInstance;
  opens: number[];
  closedAt?: number;
  /** Recovery attempts it announced (ConnectionState `recovering` with a new attempt number). */
  attempts: number[];
}

async function openClients(url: string): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const socket = new HAWebSocket(url);
    const client: Client = { socket, opens: [], attempts: [] };
    let previous = '';
    let attempt = 0;
    socket.state$.subscribe((state) => {
      if (state.status === 'open' && previous !== 'open') client.opens.push(now());
      if (state.status === 'recovering' && state.attempt !== attempt) client.attempts.push(now());
      attempt = state.status === 'recovering' ? state.attempt : 0;
      if (state.status === 'closed') client.closedAt ??= now();
      previous = state.status;
    });
    clients.push(client);
  }
  await until(() => clients.every((client) => client.opens.length > 0), 30_000);
  return clients;
}

async function closeClients(clients: Client[]): Promise<void> {
  const closing = clients.map((client) =>
    client.socket.readyState === 3 ? undefined : once(client.socket, 'close'),
  );
  for (const client of clients) client.socket.close();
  await Promise.all(closing);
}

/** Polls `check` every 10 ms until it holds or `timeoutMs` passed; says whether it held. */
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Nearest-rank percentile of an ascending array. */
const rank = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;

// 1. Listening again -> open again.
let server = ServerProcess.spawn(0, false);
const { port } = await server.listening();
const url = `ws://127.0.0.1:${port}`;

console.log(
  `${CLIENTS} HAWebSocket clients at default options; server SIGKILLed, down for the outage, back on the same port; ms from the server listening again to each client's open.\n`,
);
row([
  'outage',
  'round',
  'reopened',
  'median',
  'p90',
  'min',
  'p10',
  'max',
  'gave up',
  'accepted: median',
  'p90',
  'client loop delay p99',
]);
row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
const summary: string[][] = [];
for (const outageMs of OUTAGES_MS) {
  const pooled: number[] = [];
  const pooledAccepts: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const clients = await openClients(url);
    const next = ServerProcess.spawn(port, true);
    // How late this process's timers ran during the round: on a loaded machine, part of every figure.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const killedAt = now();
    await server.kill();
    await at(killedAt + outageMs);
    server = next;
    const { t: listenedAt } = await server.listening();
    await until(
      () => clients.every((client) => client.closedAt !== undefined || client.opens.length > 1),
      ROUND_TIMEOUT_MS,
    );
    const latencies = clients
      .filter((client) => client.opens.length > 1)
      .map((client) => client.opens[1]! - listenedAt)
      .sort((a, b) => a - b);
    loopDelay.disable();
    pooled.push(...latencies);
    // The server's side: listening -> each TCP connection accepted, before any upgrade work.
    const accepts = server.accepted.map((t) => t - listenedAt).sort((a, b) => a - b);
    pooledAccepts.push(...accepts);
    const gaveUp = clients.filter((client) => client.closedAt !== undefined).length;
    row([
      `${outageMs / 1_000} s`,
      round,
      `${latencies.length}/${CLIENTS}`,
      fmt(rank(latencies, 0.5)),
      fmt(rank(latencies, 0.9)),
      fmt(latencies[0]!),
      fmt(rank(latencies, 0.1)),
      fmt(latencies.at(-1)!),
      gaveUp,
      fmt(rank(accepts, 0.5)),
      fmt(rank(accepts, 0.9)),
      fmt(loopDelay.percentile(99) / 1e6),
    ]);
    await closeClients(clients);
  }
  pooled.sort((a, b) => a - b);
  pooledAccepts.sort((a, b) => a - b);
  summary.push([
    `${outageMs / 1_000} s`,
    `all ${ROUNDS}`,
    `${pooled.length}/${CLIENTS * ROUNDS}`,
    fmt(rank(pooled, 0.5)),
    fmt(rank(pooled, 0.9)),
    fmt(pooled[0]!),
    fmt(rank(pooled, 0.1)),
    fmt(pooled.at(-1)!),
    '',
    fmt(rank(pooledAccepts, 0.5)),
    fmt(rank(pooledAccepts, 0.9)),
    '',
  ]);
}
for (const cells of summary) row(cells);

// 2. Attempts during a long outage: the port answers with a TCP listener that counts and resets.
const clients = await openClients(url);
await server.kill();
const connections: number[] = [];
const counter = createServer((socket: Socket) => {
  connections.push(now());
  socket.resetAndDestroy();
});
counter.listen(port, '127.0.0.1');
await once(counter, 'listening');
const outageStart = now();
await at(outageStart + LONG_OUTAGE_MS);
counter.close();
const lastTenFrom = outageStart + LONG_OUTAGE_MS - 10_000;
const perClientPerSecond = (count: number, seconds: number) => fmt(count / CLIENTS / seconds, 2);
const announced = clients.flatMap((client) => client.attempts.filter((t) => t >= outageStart));
const gaveUp = clients.filter((client) => client.closedAt !== undefined).map((client) => client.closedAt!);
gaveUp.sort((a, b) => a - b);
console.log(
  `\n${CLIENTS} clients at default options through a ${LONG_OUTAGE_MS / 1_000} s outage (the port resets every connection).\n`,
);
/** Per client per second: all of the outage, its first 1 s and 5 s, its last 10 s. */
const rates = (times: readonly number[]) => [
  perClientPerSecond(times.length, LONG_OUTAGE_MS / 1_000),
  perClientPerSecond(times.filter((t) => t < outageStart + 1_000).length, 1),
  perClientPerSecond(times.filter((t) => t < outageStart + 5_000).length, 5),
  perClientPerSecond(times.filter((t) => t >= lastTenFrom).length, 10),
];
row(['measure', `all ${LONG_OUTAGE_MS / 1_000} s`, 'first 1 s', 'first 5 s', 'last 10 s']);
row(['---', '---:', '---:', '---:', '---:']);
row(['TCP connections per client per second', ...rates(connections)]);
row(['attempts announced (state) per client per second', ...rates(announced)]);
row([
  'clients that gave up (median time into the outage)',
  gaveUp.length ? `${gaveUp.length} (${fmt((rank(gaveUp, 0.5) - outageStart) / 1_000, 1)} s)` : '0',
  '',
  '',
  '',
]);
await closeClients(clients);
await once(counter, 'close');
