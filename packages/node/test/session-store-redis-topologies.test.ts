// The SessionStore contract on Redis Cluster (3 masters, 3 replicas) and behind Sentinel (1 master,
// 2 replicas, 3 sentinels), each a set of private redis-server processes on loopback ports.
import { RedisSessionStore } from '@lifeline/node/server';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { RedisCluster, RedisSentinelSetup } from './support/redis-topologies.js';
import { describeSessionStoreContract, record, sessionId, text } from './support/session-store-contract.js';

let cluster: RedisCluster;
let sentinel: RedisSentinelSetup;
beforeAll(async () => {
  [cluster, sentinel] = await Promise.all([RedisCluster.start(), RedisSentinelSetup.start()]);
}, 120_000);
afterAll(async () => {
  await Promise.all([cluster?.stop(), sentinel?.stop()]);
});

let prefixes = 0;
function fixture(makeClient: () => Cluster | Redis) {
  return async () => {
    // Each test gets its own key space.
    const keyPrefix = `t${++prefixes}:`;
    const clients = [makeClient()];
    const store = new RedisSessionStore({ redis: clients[0]!, keyPrefix });
    return {
      store,
      peer: async () => {
        const client = makeClient();
        clients.push(client);
        return new RedisSessionStore({ redis: client, keyPrefix });
      },
      cleanup: async () => {
        await store.close();
        for (const client of clients) client.disconnect();
      },
    };
  };
}

describeSessionStoreContract(
  'RedisSessionStore on Redis Cluster',
  { fencing: true, closable: true },
  fixture(() => cluster.client()),
);
describeSessionStoreContract(
  'RedisSessionStore behind Sentinel',
  { fencing: true, closable: true },
  fixture(() => sentinel.client()),
);

test('on a Cluster client the store uses the hash-tagged layout: every key of a session and its deadline index in one slot, sessions spread over all masters', async () => {
  const client = cluster.client();
  try {
    const store = new RedisSessionStore({ redis: client, keyPrefix: 'slots:' });
    const ids = Array.from({ length: 200 }, () => sessionId());
    // Far enough ahead that Redis does not drop the keys by TTL before expire() does.
    const far = Date.now() + 600_000;
    for (const id of ids) {
      await store.save(record(id, { expiresAt: far }));
      await store.append(id, [text(1)]);
    }
    const keys = new Set<string>();
    for (const node of client.nodes('master')) {
      for (const key of (await node.keys('slots:*')) as string[]) keys.add(key);
    }
    // Two keys per session, plus one deadline index per shard in use.
    const shards = new Set([...keys].map((key) => /^slots:\{(\d+)\}:/.exec(key)?.[1]));
    expect(shards.has(undefined)).toBe(false);
    expect(keys.size).toBe(ids.length * 2 + shards.size);
    const slots = new Map<string, Set<number>>();
    for (const key of keys) {
      const shard = /^slots:\{(\d+)\}:/.exec(key)![1]!;
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
      slots.set(shard, (slots.get(shard) ?? new Set()).add(slot));
    }
    for (const set of slots.values()) expect(set.size).toBe(1);
    const perMaster = await Promise.all(
      client.nodes('master').map(async (node) => ((await node.keys('slots:*')) as string[]).length),
    );
    expect(perMaster.every((count) => count > 0)).toBe(true);
    expect((await store.expire(far)).sort()).toEqual([...ids].sort());
    await store.close();
  } finally {
    client.disconnect();
  }
}, 60_000);

test('waitForReplicas: writes resolve once a replica acknowledged them (Cluster and Sentinel), and reject with SessionStoreError when more replicas are asked than exist', async () => {
  for (const client of [cluster.client(), sentinel.client()]) {
    try {
      const store = new RedisSessionStore({
        redis: client,
        waitForReplicas: { replicas: 1, timeoutMs: 2_000 },
      });
      const id = sessionId();
      await store.save(record(id, { epoch: 1 }));
      await store.append(id, [text(1), text(2)], 1);
      await store.acknowledge(id, { peerAcked: 1, received: 3 }, 1);
      expect(await store.load(id)).toMatchObject({ lastSent: 2, peerAcked: 1, received: 3 });
      const greedy = new RedisSessionStore({
        redis: client,
        waitForReplicas: { replicas: 5, timeoutMs: 100 },
      });
      await expect(greedy.append(id, [text(3)], 1)).rejects.toMatchObject({
        code: 'ERR_STORE',
        message: expect.stringMatching(/WAIT: \d of 5 replica/),
      });
    } finally {
      client.disconnect();
    }
  }
}, 60_000);
