// Session store benchmark: `pnpm bench stores`.
//
// 1. Throughput through the resume server with each store, in the same run, alternating
//    (memory, SQLite, Redis, Redis, SQLite, memory) and repeating: 64 B messages client -> server
//    (the server stores its `received` watermark before acknowledging) and server -> client (the
//    server appends each message to the store before writing it). Each server runs in a child
//    process (this file with --server), so the client's CPU time per message is its own.
// 2. Recovery after a crash: a server streaming to a client is killed with SIGKILL; the time from
//    the kill to the first message the client receives from the next server. SQLite: the same
//    host restarts the server process (the time includes starting Node). Redis: a second replica
//    is already running and the client fails over to it.
// 3. The cost of `waitForReplicas` (WAIT 1 after each write) on the Redis store, against a primary
//    with one replica on loopback: the latency of one write at a time, and the throughput of 64
//    sessions writing at once, with and without it. `LIFELINE_BENCH_STORES=wait` runs only this.
// 4. `LIFELINE_BENCH_STORES=cpu` (only this, no Redis): the store alone, in this process, as the
//    server drives it when streaming to one client: each macrotask appends a batch of messages and
//    acknowledges the batch before it. CPU µs per message, MemorySessionStore against
//    SqliteSessionStore, runs alternating, medians.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach, failoverTransport, type HAConnection, type LinkData } from '@lifeline/core';
import { resumable } from '@lifeline/core/internal';
import {
  createResumeServer,
  MemorySessionStore,
  RedisSessionStore,
  type SessionStore,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { Redis } from 'ioredis';
import { filter, firstValueFrom } from 'rxjs';

const MESSAGES = 20_000;
const ROUNDS = 2;
const SIZE = 64;
const CRASHES = 10;
const SEQUENTIAL_WRITES = 2_000;
const CONCURRENT_WRITES = 200;
const DEADLINE = Date.now() + 58_000;
const REDIS_SERVER = process.env.LIFELINE_REDIS_SERVER ?? '/usr/bin/redis-server';

/** Every process this benchmark starts, so that a run that overstays its time leaves none behind. */
const spawned = new Set<ChildProcess>();

if (process.argv.includes('--server')) await serve(process.argv[process.argv.indexOf('--server') + 1]!);
else {
  const watchdog = setTimeout(() => {
    console.error('stores.bench: over its time budget, stopping');
    for (const child of spawned) child.kill('SIGKILL');
    process.exit(1);
  }, 170_000);
  watchdog.unref();
  await main();
}

/** Child: a resume server on the given store. "up:N" asks for N messages to the client; "done" answers N received. */
async function serve(spec: string): Promise<void> {
  const [kind, target] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)];
  const store: SessionStore =
    kind === 'sqlite'
      ? new SqliteSessionStore({ path: target })
      : kind === 'redis'
        ? new RedisSessionStore({ redis: target })
        : new MemorySessionStore();
  const server = createResumeServer({ store });
  const payload = new Uint8Array(SIZE).fill(42);
  server.sessions$.subscribe((session) => {
    let expected = Number.POSITIVE_INFINITY;
    let count = 0;
    let streaming: ReturnType<typeof setInterval> | undefined;
    session.messages$.subscribe(({ data }) => {
      if (typeof data !== 'string') {
        if (++count === expected) session.send('done').catch(() => {});
        return;
      }
      if (data.startsWith('start:')) {
        expected = Number(data.slice('start:'.length));
        count = 0;
      } else if (data.startsWith('up:')) {
        const n = Number(data.slice('up:'.length));
        for (let i = 0; i < n; i++) session.send(payload).catch(() => {});
        session.send('done').catch(() => {});
      } else if (data === 'stream') stream();
    });
    // For the crash runs: a tick every millisecond until the process dies. The cursor carries the
    // mode, so a server that takes the session over after a crash streams on.
    const stream = () => {
      streaming ??= setInterval(
        () => session.send(`tick:${process.pid}`, { cursor: 'stream' }).catch(() => {}),
        1,
      );
    };
    if (session.resumeCursor === 'stream') stream();
    session.events$.subscribe({ complete: () => clearInterval(streaming) });
  });
  const { port } = await server.listen({ port: Number(process.env.PORT ?? 0) });
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

interface Child {
  readonly process: ChildProcess;
  readonly port: number;
}

async function startServer(spec: string, port = 0): Promise<Child> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--server', spec],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PORT: String(port) },
    },
  );
  spawned.add(child);
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { process: child, port: (JSON.parse(line) as { port: number }).port };
}

async function kill(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = once(child.process, 'exit');
  child.process.kill('SIGKILL');
  await exited;
}

async function startRedis(
  dir: string,
  extraArgs: readonly string[] = [],
): Promise<{ url: string; port: number; process: ChildProcess }> {
  // A free loopback port: bind port 0, read it, close.
  const probe = createNetServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--dir',
      dir,
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  spawned.add(child);
  const lines = createInterface({ input: child.stdout! });
  let ready = false;
  for await (const line of lines) {
    if (!line.includes('Ready to accept connections')) continue;
    ready = true;
    break;
  }
  if (!ready) throw new Error('redis-server exited before it was ready');
  child.stdout!.resume();
  return { url: `redis://127.0.0.1:${port}`, port, process: child };
}

interface Run {
  readonly perSecond: number;
  readonly cpuMicrosPerMessage: number;
}

async function measure(body: () => Promise<void>): Promise<Run> {
  (globalThis as { gc?: () => void }).gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await body();
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return {
    perSecond: (MESSAGES * 1_000) / elapsed,
    cpuMicrosPerMessage: (used.user + used.system) / MESSAGES,
  };
}

function connect(urls: readonly string[]): HAConnection<LinkData, LinkData> {
  return attach(resumable(failoverTransport(urls, (url) => wsTransport(url, { connectTimeoutMs: 2_000 }))), {
    backoff: { initialDelayMs: 5, maxDelayMs: 50 },
    maxAttemptsPerFailure: 1_000,
    minUptimeMs: 0,
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-bench-stores-'));
  if (process.env.LIFELINE_BENCH_STORES === 'cpu') {
    try {
      await storeCpu(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return;
  }
  const redis = await startRedis(dir);
  if (process.env.LIFELINE_BENCH_STORES === 'wait') {
    // Only section 3 (`LIFELINE_BENCH_STORES=wait`): the WAIT cost, without the minute of sections 1-2.
    try {
      await waitCost(dir, redis);
    } finally {
      redis.process.kill('SIGKILL');
      await once(redis.process, 'exit');
      await rm(dir, { recursive: true, force: true });
    }
    return;
  }
  const children: Child[] = [];
  const connections: HAConnection<LinkData, LinkData>[] = [];
  try {
    const specs = [
      { name: 'MemorySessionStore', spec: 'memory:' },
      { name: 'SqliteSessionStore', spec: `sqlite:${join(dir, 'throughput.db')}` },
      { name: 'RedisSessionStore', spec: `redis:${redis.url}` },
    ];
    const paths = [];
    for (const { name, spec } of specs) {
      const child = await startServer(spec);
      children.push(child);
      const conn = connect([`ws://127.0.0.1:${child.port}`]);
      connections.push(conn);
      await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
      paths.push({ name, conn, up: [] as Run[], down: [] as Run[] });
    }
    const payload = new Uint8Array(SIZE).fill(7);
    const upload = (conn: HAConnection<LinkData, LinkData>) => async () => {
      const done = firstValueFrom(conn.messages$.pipe(filter((message) => message === 'done')));
      const run = await measure(async () => {
        void conn.send(`start:${MESSAGES}`);
        for (let i = 0; i < MESSAGES; i++) void conn.send(payload);
        await done;
      });
      await conn.send('sync');
      return run;
    };
    const download = (conn: HAConnection<LinkData, LinkData>) => async () => {
      let received = 0;
      const done = new Promise<void>((resolve) => {
        const subscription = conn.messages$.subscribe((message) => {
          if (message === 'done') {
            subscription.unsubscribe();
            resolve();
          } else received++;
        });
      });
      const run = await measure(async () => {
        void conn.send(`up:${MESSAGES}`);
        await done;
      });
      if (received !== MESSAGES) throw new Error(`received ${received} of ${MESSAGES}`);
      return run;
    };
    for (const path of paths) {
      await upload(path.conn)();
      await download(path.conn)();
    }
    let rounds = 0;
    for (; rounds < ROUNDS && Date.now() < DEADLINE - 35_000; rounds++) {
      for (const path of [...paths, ...[...paths].reverse()]) {
        path.up.push(await upload(path.conn)());
        path.down.push(await download(path.conn)());
      }
    }
    for (const conn of connections.splice(0)) conn.close();
    await Promise.all(children.splice(0).map(kill));

    const base = paths[0]!;
    console.log(
      `### Throughput through the resume server, ${SIZE} B messages, ${MESSAGES} per run, ${rounds * 2} runs each (A B C C B A), medians\n`,
    );
    console.log('| store | direction | messages/s | client CPU µs/message | ratio to memory |');
    console.log('| --- | --- | ---: | ---: | ---: |');
    for (const direction of ['up', 'down'] as const) {
      const baseRate = median(base[direction].map((run) => run.perSecond));
      for (const path of paths) {
        const rate = median(path[direction].map((run) => run.perSecond));
        const cpu = median(path[direction].map((run) => run.cpuMicrosPerMessage));
        const label = direction === 'up' ? 'client -> server' : 'server -> client';
        console.log(
          `| ${path.name} | ${label} | ${fmt(rate)} | ${cpu.toFixed(2)} | ${(rate / baseRate).toFixed(2)}x |`,
        );
      }
    }
    console.log('');
    for (const path of paths) {
      console.log(
        `- ${path.name}, every run: up ${path.up.map((run) => fmt(run.perSecond)).join(', ')}; down ${path.down.map((run) => fmt(run.perSecond)).join(', ')} messages/s`,
      );
    }

    console.log(`\n### Recovery after SIGKILL: kill to the first message from the next server\n`);
    console.log('| store | setup | crashes | median | p99 | max |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: |');
    const sqlite = await crashes([`sqlite:${join(dir, 'crash.db')}`]);
    console.log(
      `| SqliteSessionStore | one host, the server process restarted | ${sqlite.length} | ${stats(sqlite)} |`,
    );
    const fleet = await crashes([`redis:${redis.url}`, `redis:${redis.url}`]);
    console.log(
      `| RedisSessionStore | two replicas, the client fails over | ${fleet.length} | ${stats(fleet)} |`,
    );
    await waitCost(dir, redis);
  } finally {
    for (const conn of connections) conn.close();
    await Promise.all(children.map(kill));
    redis.process.kill('SIGKILL');
    await once(redis.process, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
}

/** Kill-to-first-message samples: with one spec the killed server is restarted on its port; with two, the client fails over. */
async function crashes(specs: readonly string[]): Promise<number[]> {
  const servers = await Promise.all(specs.map((spec) => startServer(spec)));
  const urls = servers.map((server) => `ws://127.0.0.1:${server.port}`);
  const transport = failoverTransport(urls, (url) => wsTransport(url, { connectTimeoutMs: 2_000 }));
  const conn = attach(resumable(transport), {
    backoff: { initialDelayMs: 5, maxDelayMs: 50 },
    maxAttemptsPerFailure: 1_000,
    minUptimeMs: 0,
  });
  const samples: number[] = [];
  // Each tick names the process that sent it, so "the next server" is told apart from bytes the
  // killed one wrote before it died.
  let waiter: { from: number; resolve: () => void } | undefined;
  conn.messages$.subscribe((message) => {
    const pid = Number(String(message).slice('tick:'.length));
    if (waiter && pid !== waiter.from) {
      const { resolve } = waiter;
      waiter = undefined;
      resolve();
    }
  });
  const tickFromOtherThan = (from: number) =>
    new Promise<void>((resolve) => {
      waiter = { from, resolve };
    });
  try {
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    await conn.send('stream');
    await tickFromOtherThan(-1);
    for (let i = 0; i < CRASHES && Date.now() < DEADLINE; i++) {
      const victim = specs.length === 1 ? 0 : urls.indexOf(String(transport.lastGood));
      const dead = servers[victim]!;
      const next = tickFromOtherThan(dead.process.pid!);
      const start = performance.now();
      await kill(dead);
      const restart = startServer(specs[victim]!, dead.port).then((server) => {
        servers[victim] = server;
      });
      await next;
      samples.push(performance.now() - start);
      await restart;
    }
  } finally {
    conn.close();
    await Promise.all(servers.map(kill));
  }
  return samples;
}

/** Section 3: RedisSessionStore writes with and without `waitForReplicas`, against a primary with one replica. */
async function waitCost(dir: string, primary: { url: string; port: number }): Promise<void> {
  const replicaDir = join(dir, 'replica');
  await mkdir(replicaDir);
  const replica = await startRedis(replicaDir, ['--replicaof', '127.0.0.1', String(primary.port)]);
  const admin = new Redis(primary.url);
  try {
    // Bounded poll: the replica's initial sync has no event to wait on from here.
    for (let i = 0; i < 200 && !/slave0:.*state=online/.test(await admin.info('replication')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const payload = new Uint8Array(SIZE).fill(9);
    const message = (seq: number) => ({ seq, kind: 'binary' as const, payload });
    const rows: string[] = [];
    for (const wait of [undefined, { replicas: 1, timeoutMs: 1_000 }]) {
      const client = new Redis(primary.url);
      const store = new RedisSessionStore({
        redis: client,
        keyPrefix: `wait${wait ? 1 : 0}:`,
        waitForReplicas: wait,
      });
      const session = (id: string) => ({
        id,
        tokenHash: new Uint8Array(32),
        retiredTokenHash: null,
        tokenConfirmed: true,
        createdAt: Date.now(),
        expiresAt: null,
        lastSent: 0,
        peerAcked: 0,
        received: 0,
        replay: [],
        epoch: 1,
      });
      // One write at a time: the latency of an append (what one session's next message waits).
      await store.save(session('sequential'));
      const latencies: number[] = [];
      for (let seq = 1; seq <= SEQUENTIAL_WRITES; seq++) {
        const begin = performance.now();
        await store.append('sequential', [message(seq)], 1);
        latencies.push(performance.now() - begin);
        // The replay log stays short, as acknowledgements keep it.
        if (seq % 100 === 0) await store.acknowledge('sequential', { peerAcked: seq }, 1);
      }
      // 64 sessions at once, each appending in sequence: the throughput of a busy server.
      const ids = Array.from({ length: 64 }, (_, i) => `concurrent${i}`);
      await Promise.all(ids.map((id) => store.save(session(id))));
      const begin = performance.now();
      await Promise.all(
        ids.map(async (id) => {
          for (let seq = 1; seq <= CONCURRENT_WRITES; seq++) await store.append(id, [message(seq)], 1);
        }),
      );
      const perSecond = (ids.length * CONCURRENT_WRITES * 1_000) / (performance.now() - begin);
      await store.close();
      client.disconnect();
      const sorted = [...latencies].sort((a, b) => a - b);
      const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
      rows.push(
        `| ${wait ? 'waitForReplicas { replicas: 1 }' : 'no WAIT (default)'} | ${(at(0.5) * 1_000).toFixed(0)} µs | ${(at(0.99) * 1_000).toFixed(0)} µs | ${fmt(perSecond)} |`,
      );
    }
    console.log(
      `\n### RedisSessionStore writes with WAIT: a primary and one replica on loopback, ${SIZE} B appends\n`,
    );
    console.log(`| setting | one write at a time: median | p99 | 64 sessions at once: appends/s |`);
    console.log('| --- | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
  } finally {
    admin.disconnect();
    replica.process.kill('SIGKILL');
    await once(replica.process, 'exit');
  }
}

/** Section 4: the store's own CPU per message, batches of `batch` appends plus one acknowledgement. */
async function storeCpu(dir: string): Promise<void> {
  const payload = new Uint8Array(SIZE).fill(42);
  const rows: string[] = [];
  for (const batch of [1, 32, 400]) {
    const total = batch === 1 ? 2_000 : MESSAGES;
    const stores = [
      { name: 'MemorySessionStore', store: new MemorySessionStore() as SessionStore, cpu: [] as number[] },
      {
        name: 'SqliteSessionStore',
        store: new SqliteSessionStore({ path: join(dir, `cpu-${batch}.db`) }) as SessionStore,
        cpu: [] as number[],
      },
    ];
    for (const { store } of stores) {
      await store.save({
        id: 'cpu',
        tokenHash: new Uint8Array(32),
        retiredTokenHash: null,
        tokenConfirmed: true,
        createdAt: Date.now(),
        expiresAt: null,
        lastSent: 0,
        peerAcked: 0,
        received: 0,
        replay: [],
        epoch: 1,
      });
    }
    const seqs = stores.map(() => 0);
    const run = async (index: number) => {
      const { store } = stores[index]!;
      const before = process.cpuUsage();
      for (let done = 0; done < total; done += batch) {
        const messages = [];
        for (let i = 0; i < batch; i++)
          messages.push({ seq: ++seqs[index]!, kind: 'binary' as const, payload });
        await Promise.all([
          store.append('cpu', messages, 1),
          store.acknowledge('cpu', { peerAcked: seqs[index]! - batch, received: 1 }, 1),
        ]);
      }
      const used = process.cpuUsage(before);
      return (used.user + used.system) / total;
    };
    for (let index = 0; index < stores.length; index++) await run(index); // warm-up
    for (let round = 0; round < 4; round++) {
      for (const index of round % 2 ? [1, 0] : [0, 1]) stores[index]!.cpu.push(await run(index));
    }
    for (const { store } of stores) await store.close?.();
    const [memory, sqlite] = stores.map((entry) => median(entry.cpu)) as [number, number];
    rows.push(
      `| ${batch} | ${memory.toFixed(2)} µs | ${sqlite.toFixed(2)} µs (${range(stores[1]!.cpu)}) | ${(sqlite - memory).toFixed(2)} µs |`,
    );
  }
  console.log(
    `\n### The store alone: CPU per ${SIZE} B message, a batch appended and the one before acknowledged per macrotask, 4 runs each (medians)\n`,
  );
  console.log("| messages per batch | MemorySessionStore | SqliteSessionStore (range) | SQLite's extra |");
  console.log('| ---: | ---: | ---: | ---: |');
  for (const row of rows) console.log(row);
}

function range(values: number[]): string {
  return `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
}

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return `${at(0.5).toFixed(0)} ms | ${at(0.99).toFixed(0)} ms | ${sorted[sorted.length - 1]!.toFixed(0)} ms`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)]!;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
