// The fleet test, bounded and loopback-only: 3 resume server replicas (child processes) behind a
// small TCP load balancer (test/support/tcp-balancer.ts), one Redis store, N resumable sessions
// from client child processes, each streaming slowly both ways.
//
// Case (a), at the end of the file: a rolling restart of all 3 replicas with graceful handoff
// (SIGTERM -> server.close() -> GOAWAY), each replaced by a new process on its port.
//
// Case (b): one replica SIGKILLed. Its ~N/3 sessions resume on the survivors. Measured: the time
// from the kill until all of them resumed, the peak connection attempts per second at the
// survivors (the clients' default backoff with jitter spreads them), the server memory per
// session; counted: 0 lost, 0 duplicated, 0 out of order, both ways, on every session.
//
// N: LIFELINE_FLEET_SESSIONS (default 300, a couple of minutes on a loaded 2-core machine; larger
// runs are opt-in, e.g. LIFELINE_FLEET_SESSIONS=2000 LIFELINE_FLEET_DIST=1 after `pnpm build`;
// docs/durable-sessions.md has the figures and where a 2-core machine stops).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, test } from 'vitest';
import { ProcessedLedger, percentiles } from './support/durable-harness.js';
import { RedisServer } from './support/redis-server.js';
import { peakAttemptsPerSecond } from './support/tcp-balancer.js';

const SESSIONS = Number(process.env.LIFELINE_FLEET_SESSIONS ?? 300);
/** Milliseconds between two messages of a session, each way. */
const INTERVAL = Number(process.env.LIFELINE_FLEET_INTERVAL_MS ?? 2_000);
const CLIENT_PROCESSES = Math.min(4, Math.max(1, Math.ceil(SESSIONS / 500)));
/** Sessions opened per second, over all client processes. */
const RAMP = Number(process.env.LIFELINE_FLEET_RAMP ?? 500);
/** Bounds every phase: a run that cannot finish fails instead of hanging. */
const PHASE_MS = Number(process.env.LIFELINE_FLEET_PHASE_MS ?? 120_000 + SESSIONS * 60);

/**
 * Set (`LIFELINE_FLEET_DIST=1`, after `pnpm build`): the child processes import the built packages
 * instead of the sources through tsx, whose name-keeping helper on every function costs about a
 * quarter more CPU per session opened (packages/node/bench/fleet-open.bench.ts). The large runs
 * use it.
 */
const DIST = process.env.LIFELINE_FLEET_DIST === '1';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const serverScript = fileURLToPath(new URL('./support/fleet-server-process.ts', import.meta.url));
const clientScript = fileURLToPath(new URL('./support/fleet-client-process.ts', import.meta.url));
const balancerScript = fileURLToPath(new URL('./support/fleet-balancer-process.ts', import.meta.url));
/**
 * Balancer processes: a balanced connection holds two descriptors and a process may hold 20,000
 * (`ulimit -n`, a hard limit here), so each balancer takes at most 4,000 sessions. With one process
 * at N = 10,000, the last 19 sessions never connected (EMFILE at the balancer).
 */
const BALANCERS = Math.max(1, Math.ceil(SESSIONS / 4_000));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

function spawnTs(script: string, args: readonly string[], execArgs: readonly string[] = []): ChildProcess {
  const child = spawn(
    process.execPath,
    [...execArgs, ...(DIST ? [] : ['--conditions=@lifeline/source']), '--import', 'tsx', script, ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  return child;
}

/** The next IPC message of `type` from `child`; rejects if it exits first or after `timeoutMs`. */
function next<T>(child: ChildProcess, type: string, timeoutMs = PHASE_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      done();
      resolve(message as T);
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`process exited (${code ?? signal}) before ${type}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${type} within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

interface ServerStats {
  rss: number;
  heapUsed: number;
  sessions: number;
  attached: number;
  stats: { newSessions: number; resumes: number; takeovers: number };
}

interface SessionReport {
  id: string;
  sent: number;
  acknowledged: number;
  rejected: number;
  down: { sent: number; received: number; lost: number; duplicated: number; outOfOrder: number };
  lost: string[];
  news: number;
  resumes: number;
}

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);
const kib = (bytes: number) => (bytes / 1_024).toFixed(1);

interface ClientMemory {
  rss: number;
  heapUsed: number;
  sessions: number;
}

/** The balancer processes (see {@link BALANCERS}): their URLs, and their counts summed. */
async function startBalancers(backends: readonly number[]) {
  const children = await Promise.all(
    Array.from({ length: BALANCERS }, async () => {
      const child = spawnTs(balancerScript, [backends.join(',')]);
      const { url } = await next<{ url: string }>(child, 'listening', 60_000);
      return { child, url };
    }),
  );
  const counts = () =>
    Promise.all(
      children.map(({ child }) => {
        const answer = next<{ attempts: [number, [number, number][]][]; unrouted: number }>(
          child,
          'attempts',
          30_000,
        );
        child.send({ type: 'attempts' });
        return answer;
      }),
    );
  return {
    urls: children.map((child) => child.url),
    /** The highest per-second sum of attempts at `ports` from `since` (epoch ms), over all balancers. */
    async peakAttemptsPerSecond(ports: readonly number[], since: number): Promise<number> {
      const all = await counts();
      const maps = all.map(
        ({ attempts }) => new Map(attempts.map(([second, perPort]) => [second, new Map(perPort)])),
      );
      return peakAttemptsPerSecond(maps, ports, since);
    },
    /** Connections no balancer could route (every backend refused). */
    async unrouted(): Promise<number> {
      return (await counts()).reduce((sum, { unrouted }) => sum + unrouted, 0);
    },
  };
}

/**
 * What both cases share: Redis, 3 replicas (child processes, --expose-gc for the memory figures),
 * the balancer, the client processes with their IPC listeners, all sessions open and streaming
 * both ways (2 messages each), and the per-session memory of servers and clients at that point.
 */
async function startFleet() {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-fleet-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const log = join(dir, 'server.log');
  const start = Date.now();

  const startReplica = async (port = 0) => {
    const child = spawnTs(
      serverScript,
      [redis.url, String(INTERVAL), String(start), log, String(port)],
      ['--expose-gc'],
    );
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    child.stdout!.resume();
    return { child, port: (JSON.parse(line) as { port: number }).port };
  };
  const stats = (child: ChildProcess) => {
    const answer = next<ServerStats>(child, 'stats');
    child.send({ type: 'stats' });
    return answer;
  };
  const replicas = await Promise.all([0, 1, 2].map(() => startReplica()));
  const idle = await Promise.all(replicas.map((replica) => stats(replica.child)));
  const balancer = await startBalancers(replicas.map((replica) => replica.port));

  // Clients: N sessions over a few processes.
  const opened = performance.now();
  const clients = Array.from({ length: CLIENT_PROCESSES }, (_, i) => {
    const count = Math.floor(SESSIONS / CLIENT_PROCESSES) + (i < SESSIONS % CLIENT_PROCESSES ? 1 : 0);
    return spawnTs(
      clientScript,
      [
        balancer.urls[i % balancer.urls.length]!,
        String(count),
        String(INTERVAL),
        String(start),
        String(RAMP / CLIENT_PROCESSES),
      ],
      ['--expose-gc'],
    );
  });
  const resumedAt: number[] = [];
  /** Per resume: from that session's link-down to the resume, ms. */
  const downToResume: number[] = [];
  const downAt: number[] = [];
  for (const client of clients) {
    client.on('message', (message: { type: string; at?: number; downAt?: number }) => {
      if (message.type === 'resumed') {
        resumedAt.push(message.at!);
        downToResume.push(message.at! - (message.downAt ?? Number.NaN));
      }
      if (message.type === 'down') downAt.push(message.at!);
    });
  }
  const status = () =>
    Promise.all(
      clients.map((client) => {
        // An exited client cannot answer (and a send to it would throw on the process).
        if (!client.connected) return `exited (${client.exitCode ?? client.signalCode})`;
        const answer = next(client, 'status', 30_000);
        client.send({ type: 'status' });
        return answer;
      }),
    ).catch((error) => String(error));
  await Promise.all(clients.map((client) => next(client, 'opened'))).catch(async (error) => {
    throw new Error(`${(error as Error).message}; clients ${JSON.stringify(await status())}`);
  });
  const openMs = performance.now() - opened;
  /** Resolves once every session moved `each` more messages both ways. */
  const progress = (each: number) =>
    Promise.all(
      clients.map((client) => {
        const answer = next(client, 'progressed');
        client.send({ type: 'progress', each, timeoutMs: PHASE_MS });
        return answer;
      }),
    );
  await progress(2);
  const loaded = await Promise.all(replicas.map((replica) => stats(replica.child)));
  expect(loaded.reduce((sum, server) => sum + server.attached, 0)).toBe(SESSIONS);
  const clientMemory = await Promise.all(
    clients.map((client) => {
      const answer = next<ClientMemory>(client, 'memory');
      client.send({ type: 'memory' });
      return answer;
    }),
  );
  const perSession = (field: 'rss' | 'heapUsed') =>
    loaded
      .map((server, i) => kib((server[field] - idle[i]![field]) / Math.max(1, server.sessions)))
      .join(' / ');
  const memory = `memory per session after opening (loaded - idle, after a GC): servers (per replica) RSS ${perSession('rss')} KiB, heap ${perSession('heapUsed')} KiB; clients (per process, whole process / its sessions) RSS ${clientMemory.map((c) => kib(c.rss / c.sessions)).join(' / ')} KiB, heap ${clientMemory.map((c) => kib(c.heapUsed / c.sessions)).join(' / ')} KiB`;

  /** Stops the senders, waits for every session to drain, and counts both ways. */
  const finish = async () => {
    const target = Math.floor((Date.now() - start) / INTERVAL);
    const reports = await Promise.all(
      clients.map((client) => {
        const answer = next<{ sessions: SessionReport[] }>(client, 'report');
        client.send({ type: 'stop', target, timeoutMs: PHASE_MS });
        return answer;
      }),
    );
    return countSessions(reports, log);
  };
  const close = async () => {
    for (const client of clients) client.send({ type: 'close' });
    await Promise.all(clients.map((client) => once(client, 'exit')));
  };
  /** Resolves once `count` resumes were reported after index `from` of `resumedAt`; bounded. */
  const resumes = (from: number, count: number, detail: () => Promise<unknown> = async () => '') =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (resumedAt.length - from < count) return;
        clearTimeout(timer);
        for (const client of clients) client.off('message', check);
        resolve();
      };
      const timer = setTimeout(async () => {
        for (const client of clients) client.off('message', check);
        reject(
          new Error(
            `${resumedAt.length - from} of ${count} sessions resumed; clients ${JSON.stringify(await status())} ${JSON.stringify(await detail())}`,
          ),
        );
      }, PHASE_MS);
      for (const client of clients) client.on('message', check);
      check();
    });
  const opening = `${SESSIONS} sessions, 3 replicas, ${CLIENT_PROCESSES} client processes, a message every ${INTERVAL} ms each way per session; all open in ${(openMs / 1_000).toFixed(1)} s (${(SESSIONS / (openMs / 1_000)).toFixed(0)} sessions/s, ramp ${RAMP}/s)`;
  return {
    replicas,
    startReplica,
    stats,
    loaded,
    balancer,
    resumedAt,
    downAt,
    downToResume,
    progress,
    resumes,
    finish,
    close,
    opening,
    memory,
  };
}

/** Asserts the counts every case must show: nothing lost, duplicated or reordered, both ways. */
function expectExact(totals: Awaited<ReturnType<typeof countSessions>>): void {
  expect(totals.sessions).toBe(SESSIONS);
  expect(totals.sessionsLost).toBe(0);
  expect(totals.newSessionsAfterStart).toBe(0);
  expect(totals.up).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, rejected: 0 });
  expect(totals.up.processed).toBe(totals.up.sent);
  expect(totals.down).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
}

test(
  `fleet (b): ${SESSIONS} sessions on 3 replicas behind a load balancer, one replica SIGKILLed: its sessions resume on the survivors, 0 lost, 0 duplicated`,
  async () => {
    const wall = performance.now();
    const fleet = await startFleet();
    const { replicas, balancer, resumedAt, downAt } = fleet;

    // Case (b): SIGKILL one replica.
    const victim = replicas[0]!;
    const onVictim = fleet.loaded[0]!.attached;
    const killedAt = performance.timeOrigin + performance.now();
    const fromResumed = resumedAt.length;
    const exited = once(victim.child, 'exit');
    victim.child.kill('SIGKILL');
    await exited;
    // Every session of the victim resumed on a survivor (each client reports its resumes).
    await fleet.resumes(fromResumed, onVictim, () =>
      Promise.all(replicas.slice(1).map((replica) => fleet.stats(replica.child))).catch(String),
    );
    const resumeTimes = resumedAt.slice(fromResumed).map((at) => at - killedAt);
    const allResumedMs = Math.max(...resumeTimes);
    const survivors = replicas.slice(1).map((replica) => replica.port);
    const peakAttempts = await balancer.peakAttemptsPerSecond(survivors, killedAt);
    const unrouted = await balancer.unrouted();
    await fleet.progress(2);
    const after = await Promise.all(replicas.slice(1).map((replica) => fleet.stats(replica.child)));

    const totals = await fleet.finish();
    const latency = percentiles(resumeTimes);
    // How long the clients took to notice: the kill to each link-down.
    const noticed = percentiles(downAt.filter((at) => at >= killedAt).map((at) => at - killedAt));
    console.log(
      [
        `[fleet (b)] ${fleet.opening}`,
        `  SIGKILL of one replica holding ${onVictim} sessions: all resumed on the survivors ${allResumedMs.toFixed(0)} ms after the kill (per session: median ${latency.median.toFixed(0)} ms, p99 ${latency.p99.toFixed(0)} ms; link-down noticed: median ${noticed.median.toFixed(0)} ms, p99 ${noticed.p99.toFixed(0)} ms); peak ${peakAttempts} connection attempts/s at the survivors; ${unrouted} unrouted`,
        `  counts: ${JSON.stringify(totals)}`,
        `  ${fleet.memory}`,
        `  survivors after taking over: ${after.map((server) => `${server.attached} sessions, RSS ${mb(server.rss)} MiB, heap ${mb(server.heapUsed)} MiB`).join('; ')}`,
        `  wall time ${((performance.now() - wall) / 1_000).toFixed(0)} s`,
      ].join('\n'),
    );

    expectExact(totals);
    expect(resumeTimes.length).toBeGreaterThanOrEqual(onVictim);
    expect(after.reduce((sum, server) => sum + server.attached, 0)).toBe(SESSIONS);
    await fleet.close();
  },
  900_000 + SESSIONS * 200,
);

/** Counts every session both ways: the clients' reports against the servers' processed log. */
async function countSessions(reports: readonly { sessions: SessionReport[] }[], log: string) {
  const sessions = reports.flatMap((report) => report.sessions);
  const ledgers = new Map(sessions.map((session) => [session.id, new ProcessedLedger('c')]));
  for (const line of (await readFile(log, 'utf8')).split('\n')) {
    if (line === '') continue;
    const record = JSON.parse(line) as { s: string; d: string; r?: 1 };
    ledgers.get(record.s)?.add(record.d, record.r === 1);
  }
  const totals = {
    sessions: sessions.length,
    up: { sent: 0, processed: 0, lost: 0, duplicated: 0, outOfOrder: 0, redelivered: 0, rejected: 0 },
    down: { sent: 0, received: 0, lost: 0, duplicated: 0, outOfOrder: 0 },
    sessionsLost: 0,
    newSessionsAfterStart: 0,
    neverResumed: 0,
  };
  for (const session of sessions) {
    const up = ledgers.get(session.id)!.tally(session.sent);
    totals.up.sent += up.sent;
    totals.up.processed += up.processed;
    totals.up.lost += up.lost;
    totals.up.duplicated += up.duplicated;
    totals.up.outOfOrder += up.outOfOrder;
    totals.up.redelivered += up.redelivered;
    totals.up.rejected += session.rejected;
    for (const key of ['sent', 'received', 'lost', 'duplicated', 'outOfOrder'] as const)
      totals.down[key] += session.down[key];
    totals.sessionsLost += session.lost.length;
    totals.newSessionsAfterStart += session.news - 1;
    if (session.resumes === 0) totals.neverResumed++;
  }
  return totals;
}

// Case (a): a rolling restart with graceful handoff, as a deploy does it. For each replica in
// turn: SIGTERM (the replica stops listening, `server.close()` sends GOAWAY to every attached
// client, drains, stores the detaches, exits 0); its clients reconnect at once through the
// balancer (which skips the port that now refuses) and resume on the other replicas; once all of
// them resumed, a new replica process starts on the same port, and the next one goes. Every
// session was on one of the 3 original replicas, so every session resumes at least once.
// Measured: the handoff time per session, from the SIGTERM to its resume on another replica.
test(
  `fleet (a): ${SESSIONS} sessions on 3 replicas behind a load balancer, rolling restart of all 3 with graceful handoff: every session resumed, 0 lost, 0 duplicated`,
  async () => {
    const wall = performance.now();
    const fleet = await startFleet();
    const { replicas, balancer, resumedAt, downAt, downToResume } = fleet;

    const handoffs: number[] = [];
    const noticed: number[] = [];
    const rounds: string[] = [];
    const rollStarted = performance.now();
    for (let i = 0; i < replicas.length; i++) {
      const old = replicas[i]!;
      const { attached } = await fleet.stats(old.child);
      const fromResumed = resumedAt.length;
      const fromDown = downAt.length;
      const termAt = performance.timeOrigin + performance.now();
      // Timed when the exit arrives, not when the loop below gets to it (after the resumes).
      const exited = (once(old.child, 'exit') as Promise<[number | null, string | null]>).then(
        ([code, signal]) => ({ code, signal, ms: performance.timeOrigin + performance.now() - termAt }),
      );
      old.child.kill('SIGTERM');
      await fleet.resumes(fromResumed, attached);
      const times = resumedAt.slice(fromResumed).map((at) => at - termAt);
      handoffs.push(...times);
      const downs = downAt.slice(fromDown).map((at) => at - termAt);
      noticed.push(...downs);
      const reconnects = percentiles(downToResume.slice(fromResumed));
      const { code, signal, ms: exitedMs } = await exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      replicas[i] = await fleet.startReplica(old.port);
      expect(replicas[i]!.port).toBe(old.port);
      const round = percentiles(times);
      rounds.push(
        `replica ${i + 1}: ${attached} sessions, all resumed ${round.max.toFixed(0)} ms after the SIGTERM (median ${round.median.toFixed(0)} ms, p99 ${round.p99.toFixed(0)} ms; link-down at median ${percentiles(downs).median.toFixed(0)} ms, last ${percentiles(downs).max.toFixed(0)} ms; link-down to resume median ${reconnects.median.toFixed(0)} ms, p99 ${reconnects.p99.toFixed(0)} ms), old process exited 0 after ${exitedMs.toFixed(0)} ms`,
      );
      // Streaming both ways on every session again before the next replica goes.
      await fleet.progress(1);
    }
    const rollMs = performance.now() - rollStarted;
    const unrouted = await balancer.unrouted();
    await fleet.progress(2);
    const after = await Promise.all(replicas.map((replica) => fleet.stats(replica.child)));

    const totals = await fleet.finish();
    const handoff = percentiles(handoffs);
    const goAway = percentiles(noticed);
    console.log(
      [
        `[fleet (a)] ${fleet.opening}`,
        `  rolling restart with graceful handoff (SIGTERM -> close() -> GOAWAY), ${(rollMs / 1_000).toFixed(1)} s for all 3: ${handoffs.length} handoffs, SIGTERM to resume on another replica per session: median ${handoff.median.toFixed(0)} ms, p99 ${handoff.p99.toFixed(0)} ms, max ${handoff.max.toFixed(0)} ms; SIGTERM to link-down (GOAWAY) median ${goAway.median.toFixed(0)} ms, p99 ${goAway.p99.toFixed(0)} ms; ${unrouted} unrouted`,
        ...rounds.map((round) => `  ${round}`),
        `  counts: ${JSON.stringify(totals)}`,
        `  ${fleet.memory}`,
        `  after: ${after.map((server) => `${server.attached} sessions attached, RSS ${mb(server.rss)} MiB, heap ${mb(server.heapUsed)} MiB`).join('; ')}`,
        `  wall time ${((performance.now() - wall) / 1_000).toFixed(0)} s`,
      ].join('\n'),
    );

    expectExact(totals);
    expect(totals.neverResumed).toBe(0);
    expect(after.reduce((sum, server) => sum + server.attached, 0)).toBe(SESSIONS);
    await fleet.close();
  },
  900_000 + SESSIONS * 200,
);
