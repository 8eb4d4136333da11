import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, encodeHello } from '@lifeline/core/internal';
import {
  createResumeServer,
  RedisSessionStore,
  type SessionStore,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { Redis } from 'ioredis';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { RedisServer } from './support/redis-server.js';
import { waiter } from './support/resume-tally.js';

const SESSIONS = 10_000;
const CONCURRENCY = 200;
const TTL_MS = 60_000;

/** Opens a session over framed TCP (HELLO, WELCOME) and drops the link, so the session detaches. */
async function openAndDrop(port: number): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    socket.write(encodeFrame(encodeHello(undefined, 0)));
    await once(socket, 'data');
  } finally {
    socket.destroy();
  }
}

async function soak(store: SessionStore, count: () => Promise<number>) {
  // The server's clock jumps past the time-to-live once every session exists, so the peak is
  // counted and neither Redis's own key expiry nor the creation time decides what is left.
  let offset = 0;
  const now = () => Date.now() + offset;
  const server = createResumeServer({ store, sessionTtlMs: TTL_MS, maxSessions: SESSIONS * 2, now });
  cleanups.push(() => server.close());
  let expired = 0;
  let detached = 0;
  const wait = waiter();
  const poke = wait.poke;
  server.sessions$.subscribe((session) => {
    session.events$.subscribe((event) => {
      if (event.type === 'expire') expired++;
      if (event.type === 'detach') detached++;
      poke();
    });
  });
  const { port } = await server.listen({ transport: 'tcp' });
  const before = await count();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < SESSIONS) {
        next++;
        await openAndDrop(port);
      }
    }),
  );
  // The server sees each link close a little after the client dropped it.
  await wait.until(() => detached === SESSIONS, 30_000, `${SESSIONS} sessions to detach`);
  const during = await count();
  offset = TTL_MS + 1_000;
  await wait.until(
    () => expired === SESSIONS,
    60_000,
    `${SESSIONS} sessions to expire`,
    () => ({
      expired,
      detached,
      live: server.sessions.size,
    }),
  );
  // Whatever the sweep still has in flight is ordered before this call, then nothing is left.
  await store.expire(now());
  const after = await count();
  return { before, during, after, detached, expired, stats: server.stats };
}

test('SQLite: 10,000 sessions opened, detached and expired through the server; the database is empty again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-expiry-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new SqliteSessionStore({ path: join(dir, 'sessions.db') });
  cleanups.push(() => store.close());
  const result = await soak(store, async () => (await store.count()).sessions);
  console.log(
    `[durable expiry, SQLite] rows before/during/after: ${result.before}/${result.during}/${result.after}`,
  );
  expect(result).toMatchObject({
    before: 0,
    during: SESSIONS,
    after: 0,
    detached: SESSIONS,
    expired: SESSIONS,
  });
  expect(result.stats).toMatchObject({ newSessions: SESSIONS, expired: SESSIONS });
}, 120_000);

test('Redis: 10,000 sessions opened, detached and expired through the server; no key is left', async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const client = new Redis(redis.url);
  cleanups.push(async () => void (await client.quit()));
  const store = new RedisSessionStore({ redis: client });
  const result = await soak(store, () => client.dbsize());
  console.log(
    `[durable expiry, Redis] keys before/during/after: ${result.before}/${result.during}/${result.after}`,
  );
  // A hash per session (its replay list is empty, and Redis keeps no empty list) and the deadline index; none after.
  expect(result).toMatchObject({
    before: 0,
    during: SESSIONS + 1,
    after: 0,
    detached: SESSIONS,
    expired: SESSIONS,
  });
}, 120_000);
