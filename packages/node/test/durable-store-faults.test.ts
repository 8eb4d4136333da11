import {
  attach,
  failoverTransport,
  type HAConnection,
  type LinkData,
  SessionStoreError,
  StaleOwnerError,
} from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import {
  createResumeServer,
  RedisSessionStore,
  type ResumeServerEvent,
  type ServerSession,
  type ServerSessionEvent,
} from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { wsTransport } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { durableClient, ProcessedLedger, pace } from './support/durable-harness.js';
import { RedisServer } from './support/redis-server.js';
import { type AppRecord, relayApp } from './support/relay-app.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

const RATE = 2_000;
const PER_PHASE = 300;

test('Redis frozen, then killed and restarted, under a stream both ways: typed store errors, the link recovers, nothing lost, duplicated or corrupted', async () => {
  const redis = await RedisServer.start({ appendonly: true });
  cleanups.push(() => redis.stop());
  const store = new RedisSessionStore({ redis: redis.url, operationTimeoutMs: 300 });
  const server = createResumeServer({ store, maxReplayMessages: 4_096 });
  cleanups.push(async () => {
    await server.close();
    await store.close();
  });
  const wait = waiter();
  const records: (AppRecord & { p: number })[] = [];
  let sessionObjects = 0;
  const start = Date.now();
  const due = () => Math.floor(((Date.now() - start) * RATE) / 1_000);
  // The application's record; `p` names the ServerSession object that delivered (a new one after each store error).
  relayApp(server, { total: 1e9, rate: RATE, start }, (line) => {
    if (line.t === 'session') sessionObjects++;
    records.push({ ...line, p: sessionObjects });
    wait.poke();
  });
  const serverEvents: ResumeServerEvent[] = [];
  server.events$.subscribe((event) => {
    serverEvents.push(event);
    wait.poke();
  });
  const { url } = await server.listen();

  const { conn, events } = durableClient(wsTransport(url, { connectTimeoutMs: 2_000 }), {
    backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    maxAttemptsPerFailure: 10_000,
  });
  cleanups.push(async () => conn.close());
  const received = new NumberedStream('u');
  conn.messages$.subscribe((message) => {
    received.add(message);
    wait.poke();
  });
  const traffic = pace(conn, due, wait.poke);
  cleanups.push(async () => traffic.stop());
  const state = () => ({ ...traffic.counts(), upstreamReceived: received.received, due: due() });
  const flowing = async (what: string) => {
    const [upstreamBefore, acknowledgedBefore] = [received.received, traffic.counts().acknowledged];
    await wait.until(
      () =>
        traffic.counts().acknowledged - acknowledgedBefore >= PER_PHASE &&
        received.received - upstreamBefore >= PER_PHASE,
      60_000,
      what,
      state,
    );
  };
  const storeClosures = () => records.filter((record) => record.t === 'store').length;
  const failedHandshakes = () =>
    serverEvents.filter(
      // A link that failed in its handshake has no session id yet.
      (event) =>
        event.type === 'link-error' &&
        event.sessionId === undefined &&
        event.error instanceof SessionStoreError,
    ).length;

  await flowing('traffic before the faults');

  // Frozen: every store operation times out. The session drops its copy (typed error), and the
  // client's resumes fail in the handshake until Redis answers again.
  const [closuresBefore, handshakesBefore] = [storeClosures(), failedHandshakes()];
  redis.pause();
  await wait.until(
    () => storeClosures() > closuresBefore && failedHandshakes() > handshakesBefore,
    30_000,
    'a store error in the session and in a handshake while Redis is frozen',
    state,
  );
  redis.resume();
  await flowing('traffic after Redis thawed');

  // Killed: the same, then Redis comes back with its append-only file.
  const closuresBeforeKill = storeClosures();
  await redis.kill();
  await wait.until(
    () => storeClosures() > closuresBeforeKill,
    30_000,
    'a store error while Redis is down',
    state,
  );
  await redis.restart();
  await flowing('traffic after Redis restarted');

  traffic.stop();
  const upstreamTarget = due();
  await wait.until(
    () => traffic.counts().acknowledged === traffic.counts().sent && received.received >= upstreamTarget,
    60_000,
    'every message each way',
    state,
  );
  const ledger = new ProcessedLedger('c');
  for (const record of records) if (record.t === 'in') ledger.add(record.d, record.r === 1);
  const { sent, rejected } = traffic.counts();
  const clientToServer = ledger.tally(sent);
  const serverToClient = received.tally(upstreamTarget);
  const storeCodes = records.flatMap((record) => (record.t === 'store' ? [record.code] : []));
  console.log(
    `[durable store faults] Redis frozen and restarted: client->server ${JSON.stringify(clientToServer)}; server->client ${JSON.stringify(serverToClient)}; sessions dropped on store errors: ${storeCodes.length}; handshakes failed on store errors: ${failedHandshakes()}`,
  );
  expect(clientToServer).toMatchObject({ sent, processed: sent, lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(serverToClient).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(rejected).toBe(0);
  expect(new Set(storeCodes)).toEqual(new Set(['ERR_STORE']));
  expect(events.filter((event) => event.type === 'lost')).toEqual([]);
  expect(events.filter((event) => event.type === 'new')).toHaveLength(1);
  // Never corrupted: the stored replay log is exactly the unacknowledged tail.
  const id = events[0]!.sessionId;
  const stored = (await store.load(id))!;
  expect(stored.replay.map((message) => message.seq)).toEqual(
    Array.from({ length: stored.lastSent - stored.peerAcked }, (_, i) => stored.peerAcked + 1 + i),
  );
  expect(stored.received).toBe(sent);
}, 150_000);

test("a stale replica's write is refused by the fence: its copy of the session closes, the client on the new owner never sees it", async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const stores = [new RedisSessionStore({ redis: redis.url }), new RedisSessionStore({ redis: redis.url })];
  const [a, b] = stores.map((store) => createResumeServer({ store }));
  cleanups.push(async () => {
    await Promise.all([a!.close(), b!.close()]);
    await Promise.all(stores.map((store) => store.close()));
  });
  const wait = waiter();
  const sessions: {
    server: 'a' | 'b';
    session: ServerSession;
    messages: string[];
    events: ServerSessionEvent[];
  }[] = [];
  for (const [name, server] of [
    ['a', a!],
    ['b', b!],
  ] as const) {
    server.sessions$.subscribe((session) => {
      const entry = { server: name, session, messages: [] as string[], events: [] as ServerSessionEvent[] };
      sessions.push(entry);
      session.messages$.subscribe(({ data }) => {
        entry.messages.push(String(data));
        wait.poke();
      });
      session.events$.subscribe((event) => {
        entry.events.push(event);
        wait.poke();
      });
      wait.poke();
    });
  }
  const [addressA, addressB] = await Promise.all([a!.listen(), b!.listen()]);
  // Replica A is reached through a proxy that can black-hole the link: A keeps believing its client is there.
  const proxy = await FaultProxy.start({ target: { port: addressA.port } });
  cleanups.push(() => proxy.close());
  const urls = [`ws://127.0.0.1:${proxy.port}`, addressB.url];
  const transport = resumable(
    failoverTransport(urls, (url) => wsTransport(url, { connectTimeoutMs: 1_000 })),
  );
  const events: SessionEvent[] = [];
  transport.session$.subscribe((event) => {
    events.push(event);
    wait.poke();
  });
  const conn: HAConnection<LinkData, LinkData> = attach(transport, {
    backoff: { initialDelayMs: 10, maxDelayMs: 50 },
    heartbeat: { intervalMs: 100, timeoutMs: 400 },
    maxAttemptsPerFailure: 100,
    minUptimeMs: 0,
  });
  cleanups.push(async () => conn.close());
  const received: string[] = [];
  conn.messages$.subscribe((message) => {
    received.push(String(message));
    wait.poke();
  });

  await conn.send('to A');
  const onA = sessions.find((entry) => entry.server === 'a')!;
  expect(onA.messages).toEqual(['to A']);

  proxy.refuseNewConnections();
  // A partition: the client drops its dead link at once (terminate), and A must not see that close.
  proxy.blackhole({ closes: 'hold' });
  await wait.until(
    () => events.some((event) => event.type === 'resumed') && sessions.some((entry) => entry.server === 'b'),
    10_000,
    'the client to resume on replica B',
  );
  await conn.send('to B');
  const onB = sessions.find((entry) => entry.server === 'b')!;
  expect(onB.messages).toEqual(['to B']);
  // A never noticed: its copy still believes the client is attached.
  expect(onA.session.connected).toBe(true);
  expect(onA.session.closed).toBe(false);

  const stale = onA.session.send('stale write from A');
  await expect(stale).rejects.toMatchObject({ code: 'ERR_SESSION_LOST', reason: 'store-failed' });
  await wait.until(() => onA.session.closed, 5_000, "A's copy to close");
  const closed = onA.events.find((event) => event.type === 'close');
  expect(closed).toMatchObject({ type: 'close', by: 'store' });
  const fenced = (closed as { error?: unknown }).error;
  expect(fenced).toBeInstanceOf(StaleOwnerError);
  expect(fenced).toMatchObject({ code: 'ERR_FENCED', epoch: 1, currentEpoch: 2 });

  // The owner is unaffected: its sends arrive, A's never does, and the stored log holds only B's.
  await onB.session.send('from B');
  await wait.until(() => received.includes('from B'), 5_000, "B's message at the client");
  expect(received).not.toContain('stale write from A');
  const record = (await stores[1]!.load(onB.session.id))!;
  expect(record.epoch).toBe(2);
  expect(record.replay.map((message) => new TextDecoder().decode(message.payload))).not.toContain(
    'stale write from A',
  );
  expect(onB.session.closed).toBe(false);
  expect(events.filter((event) => event.type === 'lost')).toEqual([]);
}, 60_000);
