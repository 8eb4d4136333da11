import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySessionStore, RedisSessionStore, SqliteSessionStore } from '@lifeline/node/server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisServer } from './support/redis-server.js';
import { describeSessionStoreContract } from './support/session-store-contract.js';

describeSessionStoreContract('MemorySessionStore', { fencing: true, closable: false }, async () => {
  const store = new MemorySessionStore();
  return { store, peer: async () => store, cleanup: async () => {} };
});

describeSessionStoreContract('SqliteSessionStore', { fencing: true, closable: true }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-sqlite-'));
  const path = join(dir, 'sessions.db');
  const stores = [new SqliteSessionStore({ path })];
  await stores[0]!.ready();
  return {
    store: stores[0]!,
    // Another process's view of the same file: a second connection (WAL, busy timeout).
    peer: async () => {
      const peer = new SqliteSessionStore({ path });
      stores.push(peer);
      await peer.ready();
      return peer;
    },
    cleanup: async () => {
      await Promise.all(stores.map((store) => store.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
});

let redisServer: RedisServer;
beforeAll(async () => {
  redisServer = await RedisServer.start();
});
afterAll(async () => {
  await redisServer?.stop();
});

let prefixes = 0;
describeSessionStoreContract('RedisSessionStore', { fencing: true, closable: true }, async () => {
  // Each test gets its own key space on the private server.
  const keyPrefix = `t${++prefixes}:`;
  const clients: Redis[] = [];
  const store = new RedisSessionStore({ redis: redisServer.url, keyPrefix });
  return {
    store,
    peer: async () => {
      const client = new Redis(redisServer.url);
      clients.push(client);
      return new RedisSessionStore({ redis: client, keyPrefix });
    },
    cleanup: async () => {
      await store.close();
      await Promise.all(clients.map((client) => client.quit()));
    },
  };
});
