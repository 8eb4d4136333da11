// Admission control of the resume server (docs/durable-sessions.md, "At scale"): when the session
// store falls behind, new handshakes are refused with 1013 instead of queueing store writes until
// the store's operation timeout drops the sessions already attached (the fleet test's collapse at
// 3,000 sessions: close 1011 "session store failed" on healthy links, whose resumes added more
// writes). The store here is a real MemorySessionStore behind a FIFO with a service time and an
// operation timeout, as a saturated Redis behaves: one operation at a time, and one that waited
// longer than the timeout fails with a SessionStoreError without running.
import { attach, type HAConnection, type LinkData, SessionStoreError } from '@lifeline/core';
import { bytesToHex, encodeHello, resumable } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import {
  createResumeServer,
  MemorySessionStore,
  type ResumeServerEvent,
  type SessionStore,
} from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { RawResumeClient } from './support/raw-resume-client.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

/** A store that serves one operation at a time, `serviceMs` each, and fails those that waited past `timeoutMs`. */
class SaturatedStore implements SessionStore {
  private readonly queue: { queuedAt: number; run: () => Promise<void>; fail: (error: unknown) => void }[] =
    [];
  private busy = false;
  timedOut = 0;
  maxQueue = 0;

  constructor(
    private readonly inner: MemorySessionStore,
    private readonly serviceMs: number,
    private readonly timeoutMs: number,
  ) {}

  load = (id: string) => this.op('load', () => this.inner.load(id));
  save = (session: Parameters<SessionStore['save']>[0]) => this.op('save', () => this.inner.save(session));
  update = (id: string, metadata: Parameters<SessionStore['update']>[1], epoch?: number) =>
    this.op('update', () => this.inner.update(id, metadata, epoch));
  append = (id: string, messages: Parameters<SessionStore['append']>[1], epoch?: number) =>
    this.op('append', () => this.inner.append(id, messages, epoch));
  acknowledge = (id: string, watermarks: Parameters<SessionStore['acknowledge']>[1], epoch?: number) =>
    this.op('acknowledge', () => this.inner.acknowledge(id, watermarks, epoch));
  expire = (now: number) => this.op('expire', () => this.inner.expire(now));
  delete = (id: string, epoch?: number) => this.op('delete', () => this.inner.delete(id, epoch));
  claim = (id: string, knownEpoch?: number) => this.op('claim', () => this.inner.claim(id, knownEpoch));

  private op<T>(name: string, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        queuedAt: performance.now(),
        run: () => run().then(resolve, reject),
        fail: reject,
      });
      this.maxQueue = Math.max(this.maxQueue, this.queue.length);
      this.pump();
    }).catch((error: unknown) => {
      throw error instanceof SessionStoreError
        ? error
        : new SessionStoreError(name, undefined, String(error));
    });
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const startedAt = performance.now();
    setTimeout(() => void this.serve(startedAt), this.serviceMs);
  }

  /**
   * Serves the operations due since `startedAt`: one per `serviceMs` of real time, so the store's
   * throughput does not depend on how late a loaded machine fires the timer (a late timer serves
   * the operations it owes in one go, as a store working meanwhile would have).
   */
  private async serve(startedAt: number): Promise<void> {
    let budget = Math.max(1, Math.floor((performance.now() - startedAt) / this.serviceMs));
    while (budget > 0) {
      const next = this.queue.shift();
      if (!next) break;
      if (performance.now() - next.queuedAt > this.timeoutMs) {
        this.timedOut++;
        next.fail(
          new SessionStoreError('store', undefined, `timed out after ${this.timeoutMs} ms in the queue`),
        );
        continue;
      }
      budget--;
      await next.run();
    }
    this.busy = false;
    this.pump();
  }
}

const ATTACHED = 5;
const BURST = 500;

test('a burst of handshakes against a store that falls behind: shed with 1013 and retried, the attached sessions never dropped, nothing lost or duplicated', async () => {
  const store = new SaturatedStore(new MemorySessionStore(), 2, 1_000);
  // Tuned to this store (at most 500 operations per second, 1 s timeout), as the defaults are to Redis.
  const server = createResumeServer({ store, maxPendingStoreOps: 64, maxStoreLagMs: 250 });
  cleanups.push(() => server.close());
  const wait = waiter();
  let storeDrops = 0;
  const serverSide = new Map<string, NumberedStream>();
  server.sessions$.subscribe((session) => {
    session.events$.subscribe((event) => {
      if (event.type === 'close' && event.by === 'store') {
        storeDrops++;
        wait.poke();
      }
    });
    session.messages$.subscribe((message) => {
      const text = String(message.data);
      const prefix = `${text.split(':')[0]}:`;
      let stream = serverSide.get(prefix);
      if (!stream) {
        stream = new NumberedStream(prefix);
        serverSide.set(prefix, stream);
      }
      stream.add(text);
      session.send(text);
    });
  });
  const serverEvents: ResumeServerEvent[] = [];
  server.events$.subscribe((event) => serverEvents.push(event));
  const { url } = await server.listen();

  const open = (name: string) => {
    const conn: HAConnection<LinkData, LinkData> = attach(
      resumable(wsTransport(url, { connectTimeoutMs: 10_000 }), { maxWaitingMessages: 10_000 }),
      { backoff: { initialDelayMs: 50, maxDelayMs: 1_000 }, maxAttemptsPerFailure: 10_000, minUptimeMs: 0 },
    );
    cleanups.push(async () => conn.close());
    const echoes = new NumberedStream(`${name}:`);
    conn.messages$.subscribe((message) => {
      echoes.add(message);
      wait.poke();
    });
    let sent = 0;
    const send = () => void conn.send(`${name}:${++sent}`).catch(() => {});
    return { conn, echoes, send, sent: () => sent };
  };

  const attached = Array.from({ length: ATTACHED }, (_, i) => open(`a${i}`));
  for (const client of attached) client.send();
  await wait.until(
    () => attached.every((client) => client.echoes.received >= 1),
    60_000,
    'the first sessions attached',
  );
  // The attached sessions stream all along, one message each way per session every 200 ms: a
  // fifth or so of what the store serves.
  const pacer = setInterval(() => {
    for (const client of attached) client.send();
  }, 200);
  cleanups.push(() => clearInterval(pacer));

  // All at once, in batches of 25 a macrotask: opening 500 clients in one go would stall this
  // process (clients and server share it) past the store's timeout by itself.
  const burst: ReturnType<typeof open>[] = [];
  while (burst.length < BURST) {
    for (let i = 0; i < 25; i++) burst.push(open(`b${burst.length}`));
    for (const client of burst.slice(-25)) client.send();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const state = () => ({
    echoed: burst.filter((client) => client.echoes.received >= 1).length,
    storeDrops,
    stats: server.stats,
    timedOut: store.timedOut,
    maxQueue: store.maxQueue,
  });
  await wait.until(
    () => storeDrops > 0 || burst.every((client) => client.echoes.received >= 1),
    120_000,
    'every client of the burst attached and echoed',
    state,
  );
  clearInterval(pacer);
  await wait.until(
    () => storeDrops > 0 || attached.every((client) => client.echoes.received >= client.sent()),
    60_000,
    'every message of the attached sessions echoed',
    state,
  );
  console.log(`[admission] ${JSON.stringify(state())}`);

  // 0 sessions dropped for a store that fell behind: no write timed out.
  expect(storeDrops).toBe(0);
  expect(store.timedOut).toBe(0);
  expect(serverEvents.filter((event) => event.type === 'link-error')).toEqual([]);
  // Shed, reported, and every shed client came back.
  const shed = serverEvents.filter((event) => event.type === 'shed');
  expect(server.stats.shed).toBeGreaterThan(0);
  expect(shed).toHaveLength(server.stats.shed);
  expect(server.stats.newSessions).toBe(ATTACHED + BURST);
  expect(server.sessions.size).toBe(ATTACHED + BURST);
  for (const client of [...attached, ...burst]) {
    const sent = client.sent();
    expect(client.echoes.tally(sent)).toEqual({
      sent,
      received: sent,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
  }
  for (const [prefix, stream] of serverSide) {
    const client = [...attached, ...burst].find((c) => c.echoes.prefix === prefix)!;
    expect(stream.tally(client.sent())).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  }
  expect(serverSide.size).toBe(ATTACHED + BURST);
}, 240_000);

test('admission options: defaults, and a bound below 1 refused', () => {
  const server = createResumeServer();
  cleanups.push(() => server.close());
  expect(server.maxPendingStoreOps).toBe(1_000);
  expect(server.maxStoreLagMs).toBe(1_000);
  expect(() => createResumeServer({ maxPendingStoreOps: 0 })).toThrow(/maxPendingStoreOps/);
  expect(() => createResumeServer({ maxStoreLagMs: 0 })).toThrow(/maxStoreLagMs/);
});

/** A real MemorySessionStore whose operations wait while the gate is closed. */
class GatedStore extends MemorySessionStore {
  waiting = 0;
  savesWaiting = 0;
  private gate: Promise<void> | undefined;
  private opener = () => {};

  hold(): void {
    this.gate ??= new Promise((resolve) => {
      this.opener = resolve;
    });
  }

  release(): void {
    this.gate = undefined;
    this.opener();
  }

  private async pass(): Promise<void> {
    if (!this.gate) return;
    this.waiting++;
    await this.gate;
    this.waiting--;
  }

  override async save(...args: Parameters<MemorySessionStore['save']>) {
    this.savesWaiting++;
    await this.pass();
    this.savesWaiting--;
    return super.save(...args);
  }

  override async acknowledge(...args: Parameters<MemorySessionStore['acknowledge']>) {
    await this.pass();
    return super.acknowledge(...args);
  }

  override async append(...args: Parameters<MemorySessionStore['append']>) {
    await this.pass();
    return super.append(...args);
  }
}

test('over maxPendingStoreOps a HELLO is closed with 1013 and reported; the writes of the attached session wait, never refused; after the store catches up the handshake succeeds', async () => {
  const store = new GatedStore();
  const server = createResumeServer({ store, maxPendingStoreOps: 8 });
  cleanups.push(() => server.close());
  const events: ResumeServerEvent[] = [];
  server.events$.subscribe((event) => events.push(event));
  const { url } = await server.listen();
  const wait = waiter();
  const conn = attach(resumable(wsTransport(url)), { backoff: { initialDelayMs: 10, maxDelayMs: 100 } });
  cleanups.push(async () => conn.close());
  const echoes = new NumberedStream('m');
  server.sessions$.subscribe((session) =>
    session.messages$.subscribe((message) => session.send(String(message.data))),
  );
  conn.messages$.subscribe((message) => {
    echoes.add(message);
    wait.poke();
  });
  await conn.send('m1');
  await wait.until(() => echoes.received === 1, 30_000, 'the first echo');

  // A session whose client will come back for a resume while the store is behind.
  const first = await RawResumeClient.connect(url);
  first.send(encodeHello(undefined, 0));
  const welcome = await first.next('welcome');
  await first.close();
  await waitFor(() => server.sessions.get(bytesToHex(welcome!.id))?.connected === false, {
    timeoutMs: 30_000,
    what: 'the session detached',
  });

  store.hold();
  // The attached session's writes queue at the gate (they count toward the bound, and wait).
  void conn.send('m2').catch(() => {});
  const clients = await Promise.all(Array.from({ length: 4 }, () => RawResumeClient.connect(url)));
  cleanups.push(() => Promise.all(clients.map((client) => client.close())));
  for (const client of clients) client.send(encodeHello(undefined, 0));
  // 4 handshakes, each with its save waiting, and the attached session's writes: over 8 pending.
  await waitFor(() => store.savesWaiting === 4, {
    timeoutMs: 30_000,
    what: 'four saves at the gate',
    state: () => ({ waiting: store.waiting, stats: server.stats }),
  });
  const refused = await RawResumeClient.connect(url);
  cleanups.push(() => refused.close());
  refused.send(encodeHello(undefined, 0));
  expect(await refused.closed).toBe(1013);
  expect(server.stats.shed).toBe(1);
  expect(events).toEqual([
    {
      type: 'shed',
      sessionId: undefined,
      pendingStoreOps: 4 + store.waiting,
      storeLagMs: expect.any(Number),
    },
  ]);
  // A resume is refused the same way, and changes nothing: its token still opens the session.
  const resume = { id: welcome!.id, token: welcome!.token };
  const resumeRefused = await RawResumeClient.connect(url);
  cleanups.push(() => resumeRefused.close());
  resumeRefused.send(encodeHello(resume, 0));
  expect(await resumeRefused.closed).toBe(1013);
  expect(events[1]).toMatchObject({ type: 'shed', sessionId: bytesToHex(welcome!.id) });

  store.release();
  const answers = await Promise.all(clients.map((client) => client.nextOf(['welcome', 'reject'])));
  expect(answers.map((answer) => answer?.type)).toEqual(['welcome', 'welcome', 'welcome', 'welcome']);
  await wait.until(
    () => echoes.received === 2,
    30_000,
    'the echo of the message sent while the store was held',
  );
  expect(echoes.tally(2)).toEqual({ sent: 2, received: 2, lost: 0, duplicated: 0, outOfOrder: 0 });
  const again = await RawResumeClient.connect(url);
  cleanups.push(() => again.close());
  again.send(encodeHello(undefined, 0));
  expect((await again.nextOf(['welcome', 'reject']))?.type).toBe('welcome');
  const resumed = await RawResumeClient.connect(url);
  cleanups.push(() => resumed.close());
  resumed.send(encodeHello(resume, 0));
  expect(await resumed.nextOf(['welcome', 'reject'])).toMatchObject({ type: 'welcome', resumed: true });
  expect(server.stats).toMatchObject({ shed: 2, newSessions: 7, resumes: 1 });
  expect(events).toHaveLength(2);
}, 60_000);
