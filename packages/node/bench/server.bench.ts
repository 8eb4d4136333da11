// Server-side cost benchmark: `pnpm bench server` (LIFELINE_BENCH_SERVER=heap,unacked,sqlite,start
// picks sections). Every server runs in a child process from the builds (server-child.mjs, plain
// `node --expose-gc`), Lifeline beside a plain `ws` server in the same run, rounds interleaved:
//
// 1. Heap per connection: N clients connect to a plain `ws` server and to a resume server (each
//    opens a resume session with a HELLO); the server's heap after gc, minus its heap before,
//    divided by N. Then the clients go: a detached resume session is kept for its TTL, and what
//    it holds is measured the same way.
// 2. Memory held per unacknowledged 4 KiB message: a client that never acknowledges; the server
//    sends N messages (with send(), then with post()), each from a buffer of its own that the
//    caller drops; heap + external (ArrayBuffers) after gc, minus before, divided by N, against
//    the payload size.
// 3. Server -> client throughput, SqliteSessionStore against the MemorySessionStore (64 B).
// 4. Process start to listening: a resume server on SQLite against a plain `ws` server, and
//    against the same plain server loading `ws` with `require` as the resume server does.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach, type HAConnection, type LinkData } from '@lifeline/core';
import { decodeFrame, encodeHello, resumable } from '@lifeline/core/internal';
import { wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import WebSocket from 'ws';

const CHILD = fileURLToPath(new URL('./server-child.mjs', import.meta.url));
const CONNECTIONS = Number(process.env.LIFELINE_BENCH_CONNECTIONS ?? 1_000);
/** Warm-up connections before the heap baseline (LIFELINE_BENCH_WARM; default as many as measured). */
const WARM = Number(process.env.LIFELINE_BENCH_WARM ?? CONNECTIONS);
const UNACKED = 1_000;
const UNACKED_SIZE = 4_096;
const MESSAGES = 20_000;
// 20 rounds: a start's median moves by 10-20 ms between runs of 8 on 2 shared cores, about the
// size of the difference measured. LIFELINE_BENCH_STARTS overrides it.
const STARTS = Number(process.env.LIFELINE_BENCH_STARTS ?? 20);
const sections = new Set((process.env.LIFELINE_BENCH_SERVER ?? 'heap,unacked,sqlite,start').split(','));
const spawned = new Set<ChildProcess>();

const watchdog = setTimeout(() => {
  console.error('server.bench: over its time budget, stopping');
  for (const child of spawned) child.kill('SIGKILL');
  process.exit(1);
}, 280_000);
watchdog.unref();

interface Child {
  readonly process: ChildProcess;
  readonly port: number;
  ask<T>(command: string): Promise<T>;
  kill(): Promise<void>;
}

async function startChild(spec: string): Promise<Child & { startMs: number; cpuMs: number }> {
  const begin = performance.now();
  const child = spawn(process.execPath, ['--expose-gc', CHILD, spec], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  spawned.add(child);
  const lines: Interface = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  let waiter: ((line: string) => void) | undefined;
  lines.on('line', (line) => {
    if (waiter) {
      const resolve = waiter;
      waiter = undefined;
      resolve(line);
    } else queue.push(line);
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const line = queue.shift();
      if (line !== undefined) return resolve(line);
      // One exit listener per wait, removed with its answer: a long conversation must not pile them up.
      const exited = () => reject(new Error(`server child ${spec} exited`));
      child.once('exit', exited);
      waiter = (answer) => {
        child.off('exit', exited);
        resolve(answer);
      };
    });
  const { port, cpuMs } = JSON.parse(await next()) as { port: number; cpuMs: number };
  const startMs = performance.now() - begin;
  return {
    process: child,
    port,
    startMs,
    cpuMs,
    async ask<T>(command: string): Promise<T> {
      child.stdin!.write(`${command}\n`);
      return JSON.parse(await next()) as T;
    },
    async kill() {
      spawned.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

interface Heap {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Opens `n` raw WebSocket clients, `hello`: each opens a resume session and waits for its WELCOME;
 * else each sends the plain server a "ping" and waits for its "pong", so that both servers have
 * taken one message and sent one per connection (a `ws` receiver that has taken a message keeps a
 * grown buffer list, ~0.15 KB, that an unused one does not: counted on both sides, not only ours).
 */
async function openClients(port: number, n: number, hello: boolean): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  // In batches, so that 1,000 handshakes do not all queue on a loaded machine at once.
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, async () => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
      socket.binaryType = 'nodebuffer';
      sockets.push(socket);
      await once(socket, 'open');
      if (!hello) {
        const pong = once(socket, 'message');
        socket.send('ping');
        const [data] = (await pong) as [Buffer];
        if (String(data) !== 'pong') throw new Error(`expected pong, got ${String(data)}`);
        return;
      }
      const welcome = once(socket, 'message');
      socket.send(encodeHello(undefined, 0));
      const [data] = (await welcome) as [Buffer];
      const frame = decodeFrame(new Uint8Array(data));
      if (frame.type !== 'welcome') throw new Error(`expected WELCOME, got ${frame.type}`);
    });
    await Promise.all(batch);
  }
  return sockets;
}

async function closeClients(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(async (socket) => {
      if (socket.readyState === WebSocket.CLOSED) return;
      const closed = once(socket, 'close');
      socket.terminate();
      await closed;
    }),
  );
}

/** Polls the child (bounded: 200 x 50 ms) until `done` holds. */
async function until<T>(child: Child, command: string, done: (answer: T) => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (done(await child.ask<T>(command))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting on ${command}`);
}

function range(values: number[], digits = 1, unit = ''): string {
  const sorted = [...values].sort((a, b) => a - b);
  const lo = sorted[0]!.toFixed(digits);
  const hi = sorted[sorted.length - 1]!.toFixed(digits);
  return lo === hi ? `${lo}${unit}` : `${lo}-${hi}${unit}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Sessions {
  live: number;
  connected: number;
  /** -1 for a build that cannot tell. */
  parked: number;
}

/** `n` sessions, none attached, and all parked where the build tells. */
function allParked(s: Sessions, n: number): boolean {
  return s.live === n && s.connected === 0 && (s.parked < 0 || s.parked === n);
}

async function heapSection(): Promise<void> {
  // LIFELINE_BENCH_SNAPSHOTS=<dir>: the first resume round writes heap snapshots there, at the
  // baseline and with its sessions detached, to compare (what a detached session holds).
  const snapshots = process.env.LIFELINE_BENCH_SNAPSHOTS;
  const plain: number[] = [];
  const attached: number[] = [];
  const detached: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (const kind of round % 2 ? ['resume', 'plain'] : ['plain', 'resume']) {
      const child = await startChild(kind);
      try {
        // Warm-up connections, as many as measured, so that code V8 compiles (lazily, then
        // optimised once hot) and caches do not count per connection: their sessions attach,
        // detach and are parked (the detach, park and sweep paths run) before the baseline. With
        // 50 warm-up connections, ~0.3 KB per detached session was optimised code (heap
        // snapshots, LIFELINE_BENCH_SNAPSHOTS), not data. The warm-up sessions stay, parked.
        await closeClients(await openClients(child.port, WARM, kind === 'resume'));
        if (kind === 'resume') await until<Sessions>(child, 'sessions', (s) => allParked(s, WARM));
        // And the plain server's warm-up connections closed on its side too: measured before that,
        // a varying number of them still counted in its baseline (plain 2.1-2.8 KB run to run).
        else await until<{ clients: number }>(child, 'clients', (c) => c.clients === 0);
        const before = await child.ask<Heap>('heap');
        if (snapshots && round === 0 && kind === 'resume')
          await child.ask(`snapshot:${snapshots}/before.heapsnapshot`);
        const sockets = await openClients(child.port, CONNECTIONS, kind === 'resume');
        const open = await child.ask<Heap>('heap');
        const perConnection = (open.heapUsed - before.heapUsed) / CONNECTIONS / 1_024;
        if (kind === 'plain') {
          plain.push(perConnection);
          await closeClients(sockets);
        } else {
          attached.push(perConnection);
          await closeClients(sockets);
          // Every session parked (one busy at its detach is parked by the next sweep): measuring
          // before that counted a varying number of unparked endpoints.
          await until<Sessions>(child, 'sessions', (s) => allParked(s, CONNECTIONS + WARM));
          const gone = await child.ask<Heap>('heap');
          if (snapshots && round === 0) await child.ask(`snapshot:${snapshots}/detached.heapsnapshot`);
          detached.push((gone.heapUsed - before.heapUsed) / CONNECTIONS / 1_024);
        }
      } finally {
        await child.kill();
      }
    }
  }
  console.log(`### Server heap per connection, ${CONNECTIONS} connections, 3 rounds (range)\n`);
  console.log('| server | heap per connection | ratio to plain `ws` (medians) |');
  console.log('| --- | ---: | ---: |');
  console.log(`| plain \`ws\` server, one message listener | ${range(plain, 1, ' KB')} | 1.00x |`);
  console.log(
    `| resume server, session attached | ${range(attached, 1, ' KB')} | ${(median(attached) / median(plain)).toFixed(2)}x |`,
  );
  console.log(
    `| resume server, session detached (client gone, kept for its TTL) | ${range(detached, 2, ' KB')} | - |`,
  );
  console.log('');
}

/**
 * A resume client that reads and never acknowledges; the server sends with `send()` (its promise
 * ignored) and with `post()` (no promise), in alternating order over 3 rounds.
 */
async function unackedSection(): Promise<void> {
  const perMessage: Record<'send' | 'post', number[]> = { send: [], post: [] };
  for (let round = 0; round < 3; round++) {
    for (const how of round % 2 ? (['post', 'send'] as const) : (['send', 'post'] as const)) {
      const held = await unackedRun(how);
      if (held !== undefined) perMessage[how].push(held);
    }
  }
  console.log(
    `### Memory held per unacknowledged ${UNACKED_SIZE} B message, ${UNACKED} messages held, 3 runs (range)\n`,
  );
  console.log('| server | held per message (heap + external) | ratio to the payload |');
  console.log('| --- | ---: | ---: |');
  for (const how of ['send', 'post'] as const) {
    const runs = perMessage[how];
    const label = `resume server (MemorySessionStore), \`session.${how}()\``;
    if (runs.length === 0) {
      console.log(`| ${label} | not in this build | - |`);
      continue;
    }
    console.log(
      `| ${label} | ${range(runs, 0, ' B')} | ${range(
        runs.map((bytes) => bytes / UNACKED_SIZE),
        2,
        'x',
      )} |`,
    );
  }
  console.log('');
}

/** Bytes held per unacknowledged message sent with `how`; `undefined` if the build has no `post`. */
async function unackedRun(how: 'send' | 'post'): Promise<number | undefined> {
  const child = await startChild('resume');
  try {
    const [socket] = await openClients(child.port, 1, true);
    let seen = 0;
    let wanted = 0;
    let reached: (() => void) | undefined;
    socket!.on('message', (data: Buffer) => {
      if (decodeFrame(new Uint8Array(data)).type === 'data') {
        if (++seen === wanted) reached?.();
      }
    });
    // Warm-up: the send path's code and the store's structures exist before the baseline.
    wanted = 10;
    let arrived = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const { sent } = await child.ask<{ sent: number }>(`unacked:10:4096:${how}`);
    if (sent === 0) return undefined;
    await arrived;
    const before = await child.ask<Heap>('heap');
    wanted = 10 + UNACKED;
    arrived = new Promise<void>((resolve) => {
      reached = resolve;
    });
    await child.ask(`unacked:${UNACKED}:${UNACKED_SIZE}:${how}`);
    await arrived;
    const after = await child.ask<Heap>('heap');
    await closeClients([socket!]);
    return (after.heapUsed + after.external - before.heapUsed - before.external) / UNACKED;
  } finally {
    await child.kill();
  }
}

function connect(port: number): HAConnection<LinkData, LinkData> {
  return attach(resumable(wsTransport(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 5_000 })), {
    backoff: { initialDelayMs: 5, maxDelayMs: 50 },
    minUptimeMs: 0,
  });
}

async function sqliteSection(dir: string): Promise<void> {
  const paths = [
    { name: 'MemorySessionStore', spec: 'resume', runs: [] as number[], cpu: [] as number[] },
    {
      name: 'SqliteSessionStore',
      spec: `sqlite:${join(dir, 'throughput.db')}`,
      runs: [] as number[],
      cpu: [] as number[],
    },
  ];
  const children: Child[] = [];
  const connections: HAConnection<LinkData, LinkData>[] = [];
  try {
    const opened = [];
    for (const path of paths) {
      const child = await startChild(path.spec);
      children.push(child);
      const conn = connect(child.port);
      connections.push(conn);
      await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
      opened.push({ path, conn, child });
    }
    // Wall-clock throughput swings with the machine's load; the server's CPU time per message
    // (read from the child before and after) is the steadier figure of the two.
    const download = async (conn: HAConnection<LinkData, LinkData>, child: Child, cpu?: number[]) => {
      const cpuBefore = (await child.ask<{ micros: number }>('cpu')).micros;
      let received = 0;
      const done = new Promise<void>((resolve) => {
        const subscription = conn.messages$.subscribe((message) => {
          if (message === 'done') {
            subscription.unsubscribe();
            resolve();
          } else received++;
        });
      });
      const start = performance.now();
      void conn.send(`up:${MESSAGES}`);
      await done;
      const elapsed = performance.now() - start;
      if (received !== MESSAGES) throw new Error(`received ${received} of ${MESSAGES}`);
      cpu?.push(((await child.ask<{ micros: number }>('cpu')).micros - cpuBefore) / MESSAGES);
      return (MESSAGES * 1_000) / elapsed;
    };
    for (const { conn, child } of opened) await download(conn, child);
    for (let round = 0; round < 3; round++) {
      for (const { path, conn, child } of round % 2 ? [...opened].reverse() : opened) {
        path.runs.push(await download(conn, child, path.cpu));
      }
      for (const { path, conn, child } of round % 2 ? opened : [...opened].reverse()) {
        path.runs.push(await download(conn, child, path.cpu));
      }
    }
  } finally {
    for (const conn of connections) conn.close();
    await Promise.all(children.map((child) => child.kill()));
  }
  const base = median(paths[0]!.runs);
  const baseCpu = median(paths[0]!.cpu);
  console.log(`### Server -> client throughput by store, 64 B messages, ${MESSAGES} a run, 6 runs each\n`);
  console.log(
    '| store | messages/s (range) | throughput ratio to memory (medians) | server CPU µs/message (median) | throughput implied by CPU, ratio to memory |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const path of paths) {
    const cpu = median(path.cpu);
    console.log(
      `| ${path.name} | ${range(
        path.runs.map((r) => r / 1_000),
        1,
        'k',
      )} | ${(median(path.runs) / base).toFixed(2)}x | ${cpu.toFixed(1)} | ${(baseCpu / cpu).toFixed(2)}x |`,
    );
  }
  console.log('');
}

async function startSection(dir: string): Promise<void> {
  const db = join(dir, 'start.db');
  // The ES application's plain server (the goal's baseline), the same loading `ws` with `require`
  // as @lifeline/node/server does (so its ratio is the resume server's own cost), and ours.
  const kinds = [
    { name: 'plain `ws` server (`import ws`)', spec: 'plain', ms: [] as number[], cpu: [] as number[] },
    {
      name: "plain `ws` server (`require('ws')`)",
      spec: 'plain:require',
      ms: [] as number[],
      cpu: [] as number[],
    },
    {
      name: 'resume server on SqliteSessionStore',
      spec: `sqlite:${db}`,
      ms: [] as number[],
      cpu: [] as number[],
    },
  ];
  // The first start creates the database file: not counted (a restart finds it).
  for (const kind of kinds) await (await startChild(kind.spec)).kill();
  for (let i = 0; i < STARTS; i++) {
    // Every order in turn, so that no server always follows the same one.
    const order = kinds.map((_, k) => kinds[(k + i) % kinds.length]!);
    if (i % 2) order.reverse();
    for (const kind of order) {
      const child = await startChild(kind.spec);
      kind.ms.push(child.startMs);
      kind.cpu.push(child.cpuMs);
      await child.kill();
    }
  }
  const resume = kinds[kinds.length - 1]!;
  console.log(`### Process start to listening, ${STARTS} rounds, interleaved\n`);
  console.log(
    '"resume / this": the resume server\'s median start over this server\'s; "per round": its start over this server\'s in the same round (median and quartiles of the rounds). "CPU": the child\'s own CPU time (user + system) when listening, median (range), and the ratio of the medians.\n',
  );
  console.log(
    '| server | start to listening (range) | quartiles | median | resume / this | per round | CPU | resume / this |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const kind of kinds) {
    const [q1, q3] = quartiles(kind.ms);
    const cells = [
      range(kind.ms, 0, ' ms'),
      `${q1!.toFixed(0)}-${q3!.toFixed(0)} ms`,
      `${median(kind.ms).toFixed(0)} ms`,
    ];
    const cpu = `${median(kind.cpu).toFixed(0)} ms (${range(kind.cpu, 0)})`;
    if (kind === resume) cells.push('', '', cpu, '');
    else {
      const rounds = resume.ms.map((ms, i) => ms / kind.ms[i]!);
      const [r1, r3] = quartiles(rounds);
      cells.push(
        `${(median(resume.ms) / median(kind.ms)).toFixed(2)}x`,
        `${median(rounds).toFixed(2)}x (${r1!.toFixed(2)}-${r3!.toFixed(2)}x)`,
        cpu,
        `${(median(resume.cpu) / median(kind.cpu)).toFixed(2)}x`,
      );
    }
    console.log(`| ${kind.name} | ${cells.join(' | ')} |`);
  }
  console.log('');
}

/** The first and third quartiles (medians of the lower and upper halves). */
function quartiles(values: number[]): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const half = sorted.length >> 1;
  return [median(sorted.slice(0, half)), median(sorted.slice(sorted.length - half))];
}

const dir = await mkdtemp(join(tmpdir(), 'lifeline-bench-server-'));
try {
  if (sections.has('heap')) await heapSection();
  if (sections.has('unacked')) await unackedSection();
  if (sections.has('sqlite')) await sqliteSection(dir);
  if (sections.has('start')) await startSection(dir);
} finally {
  for (const child of spawned) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}
