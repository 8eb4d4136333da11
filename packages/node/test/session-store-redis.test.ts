import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SessionStoreError } from '@lifeline/core';
import { RedisSessionStore } from '@lifeline/node/server';
import { Redis } from 'ioredis';
import { afterEach, expect, test } from 'vitest';
import { RedisServer } from './support/redis-server.js';
import { runScript } from './support/run-script.js';
import { record, sessionId, text } from './support/session-store-contract.js';

const servers: RedisServer[] = [];
const clients: Redis[] = [];
const stores: RedisSessionStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function redis(options: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const server = await RedisServer.start(options);
  servers.push(server);
  return server;
}

function client(server: RedisServer): Redis {
  // Reconnect quickly: the tests restart Redis and wait for the client to come back.
  const redisClient = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: null });
  redisClient.on('error', () => {});
  clients.push(redisClient);
  return redisClient;
}

function store(redisClient: Redis, operationTimeoutMs = 300): RedisSessionStore {
  const created = new RedisSessionStore({ redis: redisClient, operationTimeoutMs });
  stores.push(created);
  return created;
}

/** Replay seqs are contiguous after peerAcked, up to lastSent: the shape every write keeps. */
async function expectConsistent(sessions: RedisSessionStore, id: string) {
  const loaded = (await sessions.load(id))!;
  expect(loaded.replay.map((message) => message.seq)).toEqual(
    Array.from({ length: loaded.lastSent - loaded.peerAcked }, (_, i) => loaded.peerAcked + 1 + i),
  );
  return loaded;
}

test('Redis restarted: operations reject with SessionStoreError while it is down and succeed after, no session corrupted', async () => {
  const server = await redis({ appendonly: true });
  const redisClient = client(server);
  const sessions = store(redisClient);
  const id = sessionId();
  await sessions.save(record(id, { epoch: 1 }));
  await sessions.append(id, [text(1), text(2), text(3)], 1);
  await sessions.acknowledge(id, { peerAcked: 1, received: 4 }, 1);

  await server.kill();
  const during = await Promise.allSettled([
    sessions.append(id, [text(4)], 1),
    sessions.acknowledge(id, { peerAcked: 2 }, 1),
    sessions.load(id),
  ]);
  for (const outcome of during) {
    expect(outcome.status).toBe('rejected');
    expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionStoreError);
    expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_STORE', sessionId: id });
  }

  // Not events.once: it would reject on the client's connection errors while Redis is down.
  const ready = new Promise<void>((resolve) => redisClient.once('ready', () => resolve()));
  await server.restart();
  await ready;
  // The writes that timed out may still run now, in order, and they are idempotent.
  await sessions.append(id, [text(4), text(5)], 1);
  await sessions.acknowledge(id, { peerAcked: 2, received: 5 }, 1);
  const loaded = await expectConsistent(sessions, id);
  expect(loaded).toMatchObject({ lastSent: 5, peerAcked: 2, received: 5, epoch: 1 });
});

test('Redis unreachable for a moment (frozen): operations time out with SessionStoreError, then run in order; the session stays consistent', async () => {
  const server = await redis();
  const sessions = store(client(server));
  const id = sessionId();
  await sessions.save(record(id, { epoch: 1 }));
  await sessions.append(id, [text(1)], 1);

  server.pause();
  const frozen = await Promise.allSettled([
    sessions.append(id, [text(2), text(3)], 1),
    sessions.acknowledge(id, { peerAcked: 2, received: 1 }, 1),
    sessions.claim(id, 1),
  ]);
  expect(frozen.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
  for (const outcome of frozen)
    expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionStoreError);
  server.resume();

  await sessions.append(id, [text(2), text(3), text(4)], 1);
  const loaded = await expectConsistent(sessions, id);
  expect(loaded).toMatchObject({ lastSent: 4, peerAcked: 2, received: 1, epoch: 1 });
});

test('a store made from a URL while Redis is down rejects with SessionStoreError, and works once Redis is up', async () => {
  const server = await redis();
  await server.kill();
  const sessions = new RedisSessionStore({ redis: server.url, operationTimeoutMs: 300 });
  stores.push(sessions);
  const id = sessionId();
  await expect(sessions.save(record(id))).rejects.toBeInstanceOf(SessionStoreError);
  await server.restart();
  // ioredis reconnects under its own backoff: the store's next operations succeed once it has.
  let saved = false;
  for (let attempt = 0; attempt < 100 && !saved; attempt++) {
    saved = await sessions.save(record(id)).then(
      () => true,
      (error) => {
        expect(error).toBeInstanceOf(SessionStoreError);
        return false;
      },
    );
  }
  expect(saved).toBe(true);
  expect(await sessions.load(id)).toMatchObject({ id, lastSent: 0 });
});

test('a store made from a URL whose Redis never answers closes within its operation timeout and lets the process exit', async () => {
  // A port that refuses: listened on, then closed.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const script = fileURLToPath(new URL('./support/redis-down-process.ts', import.meta.url));
  const { code, output } = await runScript(script, { args: [String(port)], timeoutMs: 60_000 });
  // Exited by itself (not the SIGKILL timer), after printing what the store did.
  expect(code, output).toBe(0);
  const result = JSON.parse(output.trim().split('\n').at(-1)!) as {
    load: { name: string; message: string };
    closedInMs: number;
  };
  expect(result.load).toEqual({
    name: 'SessionStoreError',
    message: 'session store load failed for session x: no answer from Redis within 1000 ms',
  });
  expect(result.closedInMs).toBeLessThan(1_000 + 5_000);
}, 90_000);

test('keys carry the session deadline as their TTL: detached = expiresAt, attached = the idle limit, refreshed by writes', async () => {
  const server = await redis();
  const redisClient = client(server);
  const sessions = new RedisSessionStore({ redis: redisClient, idleTtlMs: 3_600_000 });
  stores.push(sessions);
  const id = sessionId();
  await sessions.save(record(id));
  await sessions.append(id, [text(1)]);
  const attached = await redisClient.pttl(`lifeline:${id}:m`);
  expect(attached).toBeGreaterThan(3_500_000);
  expect(await redisClient.pttl(`lifeline:${id}:r`)).toBeGreaterThan(3_500_000);
  await sessions.update(id, { expiresAt: Date.now() + 60_000 });
  const detached = await redisClient.pttl(`lifeline:${id}:m`);
  expect(detached).toBeGreaterThan(50_000);
  expect(detached).toBeLessThanOrEqual(60_000);
  await sessions.update(id, { expiresAt: null });
  expect(await redisClient.pttl(`lifeline:${id}:m`)).toBeGreaterThan(3_500_000);
});

test('expired sessions are swept and storage stays bounded over a soak of 10,000 sessions', async () => {
  const server = await redis();
  const redisClient = client(server);
  const sessions = store(redisClient, 30_000);
  const keysBefore = await redisClient.dbsize();
  const now = Date.now();
  // Far enough ahead that Redis does not drop the keys by TTL before the sweep: expire() must do it.
  const deadline = now + 600_000;
  const ids = Array.from({ length: 10_000 }, () => sessionId());
  await Promise.all(ids.map((id) => sessions.save(record(id))));
  await Promise.all(ids.map((id) => sessions.append(id, [text(1), text(2)])));
  await Promise.all(ids.map((id, i) => sessions.update(id, { expiresAt: deadline + (i % 2) * 1_000 })));
  const keysDuring = await redisClient.dbsize();
  const first = await sessions.expire(deadline);
  const keysBetween = await redisClient.dbsize();
  const second = await sessions.expire(deadline + 1_000);
  const keysAfter = await redisClient.dbsize();
  expect(first).toHaveLength(5_000);
  expect(second).toHaveLength(5_000);
  expect(new Set([...first, ...second]).size).toBe(10_000);
  // Two keys per session, plus the deadline index while it holds anything.
  expect([keysBefore, keysDuring, keysBetween, keysAfter]).toEqual([0, 20_001, 10_001, 0]);
}, 60_000);

test('a session that went back under its live owner (a failover lost its last appends) refuses the next append with SessionStoreError instead of storing a gap', async () => {
  const server = await redis();
  const redisClient = client(server);
  const sessions = store(redisClient, 5_000);
  const id = sessionId();
  await sessions.save(record(id, { epoch: 1 }));
  await sessions.append(id, [text(1), text(2), text(3)], 1);
  // What a promoted replica that had only seen the first append holds: lastSent 1, one entry.
  await redisClient.hset(`lifeline:${id}:m`, 'ls', '1');
  await redisClient.ltrim(`lifeline:${id}:r`, 0, 0);
  await expect(sessions.append(id, [text(4)], 1)).rejects.toMatchObject({
    code: 'ERR_STORE',
    sessionId: id,
    message: expect.stringContaining('LIFELINE_GAP 1'),
  });
  // Nothing was written: a resume finds the session as the replica had it, and is told apart by
  // its watermarks (the client received 3 of a session whose server has sent 1).
  const loaded = await expectConsistent(sessions, id);
  expect(loaded).toMatchObject({ lastSent: 1 });
  // An append that continues what is stored still applies (a retry after a timeout re-sends seqs).
  await sessions.append(id, [text(1), text(2)], 1);
  expect(await expectConsistent(sessions, id)).toMatchObject({ lastSent: 2 });
});

test('an acknowledgement beyond the last stored message (the session went back under its live owner) is refused and changes nothing, so the stored session stays resumable-or-lost instead of refusing every later append', async () => {
  const server = await redis();
  const redisClient = client(server);
  const sessions = store(redisClient, 5_000);
  const id = sessionId();
  await sessions.save(record(id, { epoch: 1 }));
  await sessions.append(id, [text(1), text(2), text(3)], 1);
  // What a promoted replica that had only seen the first append holds: lastSent 1, one entry.
  await redisClient.hset(`lifeline:${id}:m`, 'ls', '1');
  await redisClient.ltrim(`lifeline:${id}:r`, 0, 0);
  // The live owner's client acknowledged 3 (sent before the failover).
  await expect(sessions.acknowledge(id, { peerAcked: 3, received: 2 }, 1)).rejects.toMatchObject({
    code: 'ERR_STORE',
    message: expect.stringContaining('LIFELINE_GAP 1'),
  });
  const loaded = await expectConsistent(sessions, id);
  expect(loaded).toMatchObject({ lastSent: 1, peerAcked: 0, received: 0 });
  // The next owner, restored from this, appends right after it.
  await sessions.append(id, [text(2)], 1);
  expect(await expectConsistent(sessions, id)).toMatchObject({ lastSent: 2 });
});
