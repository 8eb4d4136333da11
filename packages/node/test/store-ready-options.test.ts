// Issue 16 review (break16): a store that cannot open must make listen() fail with its error (the
// Redis store had no ready(), so a server on an unreachable Redis started and refused every
// client); a `store` that is not a SessionStore must fail at construction, and a store failing in
// the expiry sweep must reach the server's store-error path, never crash the process; the stores'
// options are checked at construction with typed errors.
import { once } from 'node:events';
import { createServer } from 'node:net';
import { InvalidOptionError, SessionStoreError } from '@lifeline/core';
import { waitFor } from '@lifeline/core/testing';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import {
  createResumeServer,
  MemorySessionStore,
  RedisSessionStore,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { Redis } from 'ioredis';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { RedisServer } from './support/redis-server.js';

/** A loopback port nothing listens on (connections are refused). */
async function refusedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

test('RedisSessionStore (URL) on a port nobody listens on: ready() and listen() reject with SessionStoreError', async () => {
  const store = new RedisSessionStore({ redis: `redis://127.0.0.1:${await refusedPort()}` });
  cleanups.push(() => store.close());
  const server = createResumeServer({ store });
  cleanups.push(() => server.close());
  const outcome = await server.listen({ port: 0 }).then(
    () => 'listening',
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(SessionStoreError);
  expect((outcome as SessionStoreError).message).toContain('no answer from Redis within 5000 ms');
}, 60_000);

test('RedisSessionStore (client handed in) on an unreachable Redis: listen() rejects within operationTimeoutMs', async () => {
  const client = new Redis(`redis://127.0.0.1:${await refusedPort()}`, { lazyConnect: false });
  client.on('error', () => {});
  cleanups.push(() => client.disconnect());
  const store = new RedisSessionStore({ redis: client, operationTimeoutMs: 500 });
  cleanups.push(() => store.close());
  const server = createResumeServer({ store });
  cleanups.push(() => server.close());
  await expect(server.listen({ port: 0 })).rejects.toBeInstanceOf(SessionStoreError);
}, 60_000);

test('RedisSessionStore on a live Redis: ready() resolves and listen() succeeds', async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const store = new RedisSessionStore({ redis: redis.url });
  cleanups.push(() => store.close());
  await store.ready();
  const server = createResumeServer({ store });
  cleanups.push(() => server.close());
  const { url } = await server.listen({ port: 0 });
  expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
}, 60_000);

test.each([
  ['{}', {}, 'load'],
  ['no expire()', { ...methodsOf(new MemorySessionStore()), expire: undefined }, 'expire'],
  ['ready not a function', { ...methodsOf(new MemorySessionStore()), ready: 1 }, 'ready'],
  ['a string', 'redis://x', 'string'],
])('createResumeServer({ store: %s }): InvalidOptionError naming what is missing', (_name, store, named) => {
  let thrown: unknown;
  try {
    const server = createResumeServer({ store: store as never });
    cleanups.push(() => server.close());
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(InvalidOptionError);
  expect((thrown as Error).message).toContain(named);
});

test('a store whose expire() throws: the sweep reports a link-error, the process lives on', async () => {
  const memory = new MemorySessionStore();
  const failure = new Error('expire blew up');
  let calls = 0;
  const store = Object.assign(methodsOf(memory), {
    expire: () => {
      calls++;
      throw failure;
    },
  });
  const server = createResumeServer({ store, handshakeTimeoutMs: 100 });
  cleanups.push(() => server.close());
  const errors: unknown[] = [];
  const subscription = server.events$.subscribe((event) => {
    if (event.type === 'link-error') errors.push(event.error);
  });
  cleanups.push(() => subscription.unsubscribe());
  // Two sweeps: the first did not take the timer (or the process) down.
  await waitFor(() => errors.length >= 2, { timeoutMs: 20_000, what: 'two sweep failures' });
  expect(errors.every((error) => error === failure)).toBe(true);
  expect(calls).toBeGreaterThanOrEqual(2);
}, 30_000);

const MAX_TIMER_MS = 2 ** 31 - 1;

test.each([
  ['no options', undefined],
  ['redis 42', { redis: 42 }],
  ['redis {}', { redis: {} }],
  ['redis http URL', { redis: 'http://127.0.0.1:6379' }],
  ['operationTimeoutMs 1e12', { redis: 'redis://127.0.0.1:1', operationTimeoutMs: 1e12 }],
  ['operationTimeoutMs 2^31', { redis: 'redis://127.0.0.1:1', operationTimeoutMs: MAX_TIMER_MS + 1 }],
  ['operationTimeoutMs NaN', { redis: 'redis://127.0.0.1:1', operationTimeoutMs: Number.NaN }],
  ['operationTimeoutMs "5"', { redis: 'redis://127.0.0.1:1', operationTimeoutMs: '5' }],
  ['idleTtlMs Infinity', { redis: 'redis://127.0.0.1:1', idleTtlMs: Number.POSITIVE_INFINITY }],
  ['expireBatch 1.5', { redis: 'redis://127.0.0.1:1', expireBatch: 1.5 }],
  ['keyPrefix 7', { redis: 'redis://127.0.0.1:1', keyPrefix: 7 }],
  [
    'waitForReplicas.timeoutMs NaN',
    { redis: 'redis://127.0.0.1:1', waitForReplicas: { replicas: 1, timeoutMs: Number.NaN } },
  ],
])('new RedisSessionStore(%s): InvalidOptionError', (_name, options) => {
  expect(() => new RedisSessionStore(options as never)).toThrow(InvalidOptionError);
});

test('RedisSessionStore accepts operationTimeoutMs 2^31 - 1', async () => {
  const store = new RedisSessionStore({ redis: 'redis://127.0.0.1:1', operationTimeoutMs: MAX_TIMER_MS });
  await store.close();
});

test.each([
  ['idleTtlMs Infinity', { idleTtlMs: Number.POSITIVE_INFINITY }],
  ['idleTtlMs NaN', { idleTtlMs: Number.NaN }],
  ['idleTtlMs "1000"', { idleTtlMs: '1000' }],
  ['path 42', { path: 42 }],
  ['path ""', { path: '' }],
  ['open "x"', { open: 'x' }],
  ['defer 1', { defer: 1 }],
])('new SqliteSessionStore(%s): InvalidOptionError', (_name, options) => {
  expect(() => new SqliteSessionStore(options as never)).toThrow(InvalidOptionError);
});

test.each([
  ['no path', [undefined]],
  ['path ""', ['']],
  ['path 42', [42]],
  ['lockPath 1', ['/tmp/x.json', { lockPath: 1 }]],
])('new FileClientSessionStore(%s): InvalidOptionError', (_name, args) => {
  expect(() => new FileClientSessionStore(...(args as [string]))).toThrow(InvalidOptionError);
});

/** A plain object with a store's methods (bound), so a test can take some away. */
function methodsOf(store: MemorySessionStore): Record<string, unknown> & MemorySessionStore {
  const out: Record<string, unknown> = {};
  for (const name of [
    'load',
    'save',
    'update',
    'append',
    'acknowledge',
    'expire',
    'delete',
    'claim',
    'close',
  ]) {
    const method = (store as unknown as Record<string, unknown>)[name];
    if (typeof method === 'function') out[name] = method.bind(store);
  }
  return out as Record<string, unknown> & MemorySessionStore;
}
