// Issue 9's scenario at DEFAULT options: a server process SIGKILLed every 2 s and restarted within
// about half a second, at least 8 times, while a client streams 500 messages a second each way
// through HAWebSocket. Everything is counted: every message the client tried to send is either
// processed by a server process (its own synchronous log says so), refused loudly (send() threw,
// sendAsync() rejected, or a `dropped` event named it), or, without the resume protocol, lost in
// flight at a kill (written to a link the kill cut, after the last message that server processed).
// Anything else is a silent drop. Every server process must receive at least one message.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionState } from '@lifeline/core';
import type { HAWebSocketInstance } from '@lifeline/core/internal';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { DurableServer, percentiles, readServerLog } from './support/durable-harness.js';
import { NumberedStream, waiter as sharedWaiter } from './support/resume-tally.js';
import { ChildStreamServer, readStreamServerLog } from './support/ws-servers.js';

/** Messages per second, each way. */
const RATE = 500;
const KILLS = 8;
/** A kill every LIFE_MS: each process lives LIFE_MS - RESTART_DELAY_MS from listening. */
const LIFE_MS = 2_000;
/**
 * From a kill to telling the next server process (loaded ahead, waiting) to listen: the server is
 * back within about half a second, whatever the machine's load does to process start-up.
 */
const RESTART_DELAY_MS = 300;

/** Epoch milliseconds from the monotonic clock: comparable with the server processes' logs. */
const now = () => performance.timeOrigin + performance.now();

const errorCode = (error: unknown) =>
  String((error as { code?: unknown }).code ?? (error as { name?: unknown }).name ?? 'unknown');

/**
 * Sends `c1, c2, ...` at RATE, paced by the clock, in whatever state the socket is: odd numbers
 * through send() (the WebSocket contract: throws when it cannot take the message), even ones
 * through sendAsync(). A number is taken only when the call did not throw, so the numbers sent
 * have no gaps; a refused number is in `rejected` or `dropped`.
 */
class PacedSender {
  /** c1..c{accepted} were taken by the socket. */
  accepted = 0;
  tried = 0;
  threw = 0;
  resolved = 0;
  /** Numbers whose sendAsync() resolved: written (plain), acknowledged by the server (resume). */
  readonly acknowledged = new Set<number>();
  readonly rejected = new Set<number>();
  readonly dropped = new Set<number>();
  droppedUnnamed = 0;
  readonly codes: Record<string, number> = {};
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly socket: HAWebSocketInstance,
    private readonly poke: () => void,
  ) {
    // A drop-oldest queue names each message it drops (the event's shape is the engine's: take
    // the data from `data` or `detail`).
    socket.addEventListener('dropped', (event) => {
      const carried = event as Event & { data?: unknown; detail?: unknown };
      const detail = carried.detail as { data?: unknown } | undefined;
      const data = carried.data ?? detail?.data ?? detail;
      const n = Number(String(data).slice(1));
      if (Number.isInteger(n) && n > 0) this.dropped.add(n);
      else this.droppedUnnamed++;
    });
  }

  start(): void {
    const started = performance.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - started) * RATE) / 1_000);
      // Bounded: at most one second's worth per tick, however late the timer fired.
      for (let i = 0; this.tried < due && i < RATE; i++) this.send();
    }, 5);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Tries the next number; returns it if the socket took it. `viaAsync` forces sendAsync(). */
  send(viaAsync = false): number | undefined {
    this.tried++;
    const n = this.accepted + 1;
    try {
      if (viaAsync || n % 2 === 0) {
        this.socket.sendAsync(`c${n}`).then(
          () => {
            this.resolved++;
            this.acknowledged.add(n);
            this.poke();
          },
          (error: unknown) => {
            this.rejected.add(n);
            this.count(error);
            this.poke();
          },
        );
      } else {
        this.socket.send(`c${n}`);
      }
      this.accepted = n;
      return n;
    } catch (error) {
      this.threw++;
      this.count(error);
      return undefined;
    }
  }

  refused(n: number): boolean {
    return this.rejected.has(n) || this.dropped.has(n);
  }

  counts() {
    return {
      tried: this.tried,
      accepted: this.accepted,
      sendThrew: this.threw,
      sendAsyncRejected: this.rejected.size,
      droppedEvents: this.dropped.size + this.droppedUnnamed,
      errorCodes: this.codes,
    };
  }

  private count(error: unknown): void {
    const code = errorCode(error);
    this.codes[code] = (this.codes[code] ?? 0) + 1;
  }
}

/** Follows the socket's state: when each link went down (with what was taken by then) and came up. */
class StateLog {
  readonly downs: { t: number; accepted: number }[] = [];
  readonly opens: number[] = [];
  closed: ConnectionState | undefined;
  private previous: ConnectionState['status'] = 'connecting';

  constructor(socket: HAWebSocketInstance, sender: () => PacedSender | undefined, poke: () => void) {
    socket.state$.subscribe((state) => {
      const wasUp = this.previous === 'open' || this.previous === 'suspended';
      if (state.status === 'recovering' && wasUp) {
        this.downs.push({ t: now(), accepted: sender()?.accepted ?? 0 });
      }
      if ((state.status === 'open' || state.status === 'suspended') && !wasUp) this.opens.push(now());
      if (state.status === 'closed') this.closed = state;
      this.previous = state.status;
      poke();
    });
  }

  /** How the connection ended, if it did: its reason and the error's code. */
  gaveUp(): string {
    const closed = this.closed;
    if (closed?.status !== 'closed') return 'no';
    return closed.error === undefined ? closed.reason : `${closed.reason}: ${errorCode(closed.error)}`;
  }

  /** From each restarted server listening to the client's next open, before the next kill. */
  reopenLatencies(listenedAt: readonly number[], killedAt: readonly number[]) {
    const latencies: number[] = [];
    let missed = 0;
    for (let k = 1; k < listenedAt.length; k++) {
      const until = killedAt[k] ?? Number.POSITIVE_INFINITY;
      const open = this.opens.find((t) => t >= listenedAt[k]! && t < until);
      if (open === undefined) missed++;
      else latencies.push(open - listenedAt[k]!);
    }
    const stats = latencies.length ? percentiles(latencies) : undefined;
    return { reopened: latencies.length, notReopened: missed, medianMs: stats && Math.round(stats.median) };
  }
}

/**
 * What the server processes did with the client's messages, from their logs in order: a number
 * processed again by a later process (sent before a kill, its acknowledgement lost with it) is
 * `redelivered`; processed twice by the same process, `duplicated`; below the highest number that
 * process had already processed, `outOfOrder` (a number missing altogether is `lost`, not
 * reordered). `lost`: taken by the socket, not refused, never processed.
 */
function tallyProcessed(records: readonly { n: number; p: number }[], sender: PacedSender) {
  const by = new Map<number, Set<number>>();
  const highest = new Map<number, number>();
  let duplicated = 0;
  let outOfOrder = 0;
  let redelivered = 0;
  for (const { n, p } of records) {
    const processes = by.get(n) ?? new Set<number>();
    if (processes.has(p)) duplicated++;
    else {
      if (processes.size > 0) redelivered++;
      if (n < (highest.get(p) ?? 0)) outOfOrder++;
    }
    processes.add(p);
    by.set(n, processes);
    highest.set(p, Math.max(n, highest.get(p) ?? 0));
  }
  const lost: number[] = [];
  let refusedButProcessed = 0;
  for (let n = 1; n <= sender.accepted; n++) {
    if (!by.has(n) && !sender.refused(n)) lost.push(n);
    if (by.has(n) && sender.refused(n)) refusedButProcessed++;
  }
  return {
    processed: by.size,
    lost,
    duplicated,
    outOfOrder,
    redelivered,
    refusedButProcessed,
    pids: new Set(records.map((record) => record.p)),
  };
}

/** The shared waiter, whose `until` says instead of throwing: the timeout's message, or `undefined`. */
function waiter() {
  const wait = sharedWaiter();
  return {
    poke: wait.poke,
    until: (check: () => boolean, timeoutMs: number, what: string): Promise<string | undefined> =>
      wait.until(check, timeoutMs, what).then(
        () => undefined,
        (error: Error) => error.message,
      ),
  };
}

/** The kill schedule: resolves at `at` (epoch ms from {@link now}). Not a wait for an outcome. */
const scheduled = (at: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, at - now())));

test('default HAWebSocket (no resume) through 8 SIGKILLs every 2 s at 500 msg/s each way: no silent drop, loss only in flight at a kill, every server life reached', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-crash-loop-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'server.log');
  // Port 0 once; every restart comes back on the port the first process got.
  const server = new ChildStreamServer(1_000 / RATE, log);
  await server.start();
  cleanups.push(() => server.dispose());
  // Every next process loaded ahead, so each restart takes RESTART_DELAY_MS plus milliseconds,
  // and the kill schedule never waits for a process to load (that would lengthen server lives).
  await server.prepare(KILLS);
  const pids = [server.pid!];
  const listenedAt = [now()];
  const killedAt: number[] = [];

  const wait = waiter();
  const socket = new HAWebSocket(server.url);
  cleanups.push(async () => socket.close());
  const sender = new PacedSender(socket, wait.poke);
  const states = new StateLog(socket, () => sender, wait.poke);
  const echoes = new Set<number>();
  let ticks = 0;
  socket.addEventListener('message', (event) => {
    const text = String((event as MessageEvent).data);
    if (text.startsWith('echo:c')) echoes.add(Number(text.slice(6)));
    else if (text.startsWith('tick:')) ticks++;
    wait.poke();
  });
  const opened = await wait.until(() => states.opens.length > 0, 30_000, 'the first open');
  expect(opened).toBeUndefined();

  sender.start();
  cleanups.push(async () => sender.stop());
  for (let kill = 1; kill <= KILLS; kill++) {
    await scheduled(listenedAt.at(-1)! + LIFE_MS - RESTART_DELAY_MS);
    killedAt.push(now());
    await server.kill();
    await scheduled(killedAt.at(-1)! + RESTART_DELAY_MS);
    await server.start();
    pids.push(server.pid!);
    listenedAt.push(now());
  }
  // The last process lives on: one more message through it, then the count.
  await scheduled(listenedAt.at(-1)! + LIFE_MS);
  sender.stop();
  // Through sendAsync(), so a refusal of this one is seen too.
  const last = sender.send(true);
  const drained = await wait.until(
    () => last === undefined || echoes.has(last) || sender.refused(last) || states.closed !== undefined,
    60_000,
    'the echo of the last message',
  );

  const records = readStreamServerLog(log).map((record) => ({
    n: Number(record.d.slice(1)),
    p: record.p,
    t: record.t,
  }));
  const tally = tallyProcessed(records, sender);
  // In flight at a kill: taken before the client saw its link go down, after the last number any
  // server had processed by then (written to the dead link, or waiting in its socket buffers).
  const windows = states.downs.map(({ t, accepted }) => {
    let processedBefore = 0;
    for (const record of records) if (record.t <= t) processedBefore = Math.max(processedBefore, record.n);
    return { from: processedBefore + 1, to: accepted };
  });
  const inFlight = tally.lost.filter((n) => windows.some(({ from, to }) => n >= from && n <= to));
  const silent = tally.lost.length - inFlight.length;
  const livesMissed = pids.filter((pid) => !tally.pids.has(pid)).length;
  const counts = {
    kills: killedAt.length,
    ...sender.counts(),
    processed: tally.processed,
    refusedButProcessed: tally.refusedButProcessed,
    lostInFlight: inFlight.length,
    inFlightAtKills: windows.reduce((sum, { from, to }) => sum + Math.max(0, to - from + 1), 0),
    silentDrops: silent,
    duplicated: tally.duplicated,
    outOfOrder: tally.outOfOrder,
    serverLives: pids.length,
    livesMissed,
    echoes: echoes.size,
    serverEventsReceived: ticks,
    ...states.reopenLatencies(listenedAt, killedAt),
    outagesMs: killedAt.map((t, k) => Math.round(listenedAt[k + 1]! - t)),
    gaveUp: states.gaveUp(),
    drained: drained ?? 'yes',
  };
  console.log(`[crash loop, defaults, plain] ${JSON.stringify(counts)}`);

  expect(counts.kills).toBeGreaterThanOrEqual(8);
  expect(counts).toMatchObject({ silentDrops: 0, livesMissed: 0, duplicated: 0, outOfOrder: 0 });
  expect(states.closed).toBeUndefined();
  expect(drained).toBeUndefined();
  expect(tally.processed).toBeGreaterThan(KILLS * RATE);
}, 300_000);

test('default HAWebSocket with resume: true, SQLite-backed resume server, 8 SIGKILLs every 2 s at 500 msg/s each way: zero lost, duplicated, reordered both ways, every server life reached', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-crash-loop-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = `sqlite:${join(dir, 'sessions.db')}`;
  const log = join(dir, 'server.log');
  // The server's own numbered events u1, u2... at RATE, due by the clock whether a server runs or not.
  const start = Date.now();
  const upstream = { total: 1e9, rate: RATE, start };
  const due = () => Math.floor(((Date.now() - start) * RATE) / 1_000);

  let server = await DurableServer.start({ store, upstream, log });
  cleanups.push(() => server.kill());
  const port = server.port;
  // Every next process loaded ahead, so each restart takes RESTART_DELAY_MS plus milliseconds,
  // and the kill schedule never waits for a process to load (that would lengthen server lives).
  const standbys = Array.from({ length: KILLS }, () => DurableServer.standby({ port, store, upstream, log }));
  cleanups.push(async () => {
    for (const standby of standbys) await standby.cancel();
  });
  await Promise.all(standbys.map((standby) => standby.ready));
  const pids = [server.pid];
  const listenedAt = [now()];
  const killedAt: number[] = [];

  const wait = waiter();
  const socket = new HAWebSocket(server.url, undefined, { resume: true });
  cleanups.push(async () => socket.close());
  const sender = new PacedSender(socket, wait.poke);
  const states = new StateLog(socket, () => sender, wait.poke);
  const upstreamReceived = new NumberedStream('u');
  socket.addEventListener('message', (event) => {
    upstreamReceived.add(String((event as MessageEvent).data));
    wait.poke();
  });
  const opened = await wait.until(() => states.opens.length > 0, 30_000, 'the first open');
  expect(opened).toBeUndefined();

  sender.start();
  cleanups.push(async () => sender.stop());
  for (let kill = 1; kill <= KILLS; kill++) {
    const next = standbys[kill - 1]!;
    await scheduled(listenedAt.at(-1)! + LIFE_MS - RESTART_DELAY_MS);
    killedAt.push(now());
    await server.kill();
    await scheduled(killedAt.at(-1)! + RESTART_DELAY_MS);
    server = await next.go();
    pids.push(server.pid);
    listenedAt.push(now());
  }
  await scheduled(listenedAt.at(-1)! + LIFE_MS);
  sender.stop();
  const upstreamTarget = due();
  // The last message's sendAsync resolves when the server acknowledged it, so all before it too.
  const last = sender.send(true);
  const drained = await wait.until(
    () =>
      states.closed !== undefined ||
      ((last === undefined || sender.acknowledged.has(last) || sender.refused(last)) &&
        upstreamReceived.received >= upstreamTarget),
    60_000,
    'the last message acknowledged and every server event due',
  );

  const records = readServerLog(log);
  const tally = tallyProcessed(
    records.flatMap((record) => (record.t === 'in' ? [{ n: Number(record.d.slice(1)), p: record.p }] : [])),
    sender,
  );
  const serverToClient = upstreamReceived.tally(upstreamTarget);
  const livesMissed = pids.filter((pid) => !tally.pids.has(pid)).length;
  const counts = {
    kills: killedAt.length,
    ...sender.counts(),
    processed: tally.processed,
    lost: tally.lost.length,
    duplicated: tally.duplicated,
    outOfOrder: tally.outOfOrder,
    redelivered: tally.redelivered,
    refusedButProcessed: tally.refusedButProcessed,
    serverToClient,
    serverLives: pids.length,
    livesMissed,
    ...states.reopenLatencies(listenedAt, killedAt),
    outagesMs: killedAt.map((t, k) => Math.round(listenedAt[k + 1]! - t)),
    storeErrors: records.filter((record) => record.t === 'store').length,
    gaveUp: states.gaveUp(),
    drained: drained ?? 'yes',
  };
  console.log(`[crash loop, defaults, resume + SQLite] ${JSON.stringify(counts)}`);

  expect(counts.kills).toBeGreaterThanOrEqual(8);
  expect(counts).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, livesMissed: 0, storeErrors: 0 });
  expect(serverToClient).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  // Every message was taken and kept: a resumed session has no reason to refuse one.
  expect(sender.counts()).toMatchObject({ sendThrew: 0, sendAsyncRejected: 0, droppedEvents: 0 });
  expect(states.closed).toBeUndefined();
  expect(drained).toBeUndefined();
  expect(tally.processed).toBeGreaterThan(KILLS * RATE);
}, 300_000);
