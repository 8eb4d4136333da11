import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failoverTransport } from '@lifeline/core';
import { wsTransport } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import {
  DurableServer,
  durableClient,
  ProcessedLedger,
  pace,
  percentiles,
  readServerLog,
} from './support/durable-harness.js';
import { RedisServer } from './support/redis-server.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

const RATE = 2_000;
const KILLS = 20;
const REPLICAS = 3;
/** Messages each way through the current replica before it is killed. */
const PER_REPLICA = 300;

test('three replicas sharing a private Redis, the client on all three: its current replica killed 20 times, it resumes on a survivor each time, nothing lost or duplicated', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-replicas-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const store = `redis:${redis.url}`;
  const log = join(dir, 'server.log');
  const start = Date.now();
  const upstream = { total: 1e9, rate: RATE, start };
  const due = () => Math.floor(((Date.now() - start) * RATE) / 1_000);

  const replicas = await Promise.all(
    Array.from({ length: REPLICAS }, () => DurableServer.start({ store, upstream, log })),
  );
  cleanups.push(() => Promise.all(replicas.map((replica) => replica.kill())).then(() => {}));
  const urls = replicas.map((replica) => replica.url);

  const failover = failoverTransport(urls, (url) => wsTransport(url, { connectTimeoutMs: 2_000 }));
  const { conn, events } = durableClient(failover, {
    backoff: { initialDelayMs: 5, maxDelayMs: 50 },
    maxAttemptsPerFailure: 1_000,
  });
  cleanups.push(async () => conn.close());

  // Kill to first delivery: the first message after a new link opened on a survivor.
  let killedAt: number | undefined;
  let linkReopened = false;
  const recoveries: number[] = [];
  conn.events$.subscribe((event) => {
    if (event.type === 'link-open' && killedAt !== undefined) linkReopened = true;
  });
  const wait = waiter();
  const poke = wait.poke;
  const received = new NumberedStream('u');
  conn.messages$.subscribe((message) => {
    received.add(message);
    if (killedAt !== undefined && linkReopened) {
      recoveries.push(performance.now() - killedAt);
      killedAt = undefined;
    }
    poke();
  });

  const traffic = pace(conn, due, poke);
  cleanups.push(async () => traffic.stop());

  const waitFor = (check: () => boolean, timeoutMs: number, what: string) =>
    wait.until(check, timeoutMs, what, () => ({
      ...traffic.counts(),
      upstreamReceived: received.received,
      due: due(),
    }));

  const killedPorts: number[] = [];
  for (let kill = 1; kill <= KILLS; kill++) {
    const [upstreamBefore, acknowledgedBefore] = [received.received, traffic.counts().acknowledged];
    await waitFor(
      () =>
        killedAt === undefined &&
        traffic.counts().acknowledged - acknowledgedBefore >= PER_REPLICA &&
        received.received - upstreamBefore >= PER_REPLICA,
      30_000,
      `${PER_REPLICA} messages each way through the current replica before kill ${kill}`,
    );
    // The replica the client is on: the endpoint its last link opened on.
    const index = urls.indexOf(String(failover.lastGood));
    expect(index).toBeGreaterThanOrEqual(0);
    const victim = replicas[index]!;
    killedPorts.push(victim.port);
    linkReopened = false;
    killedAt = performance.now();
    await victim.kill();
    // Back on the same port, so three replicas run again before the next kill.
    replicas[index] = await DurableServer.start({ store, upstream, log, port: victim.port });
  }

  traffic.stop();
  const upstreamTarget = due();
  await waitFor(
    () =>
      killedAt === undefined &&
      traffic.counts().acknowledged === traffic.counts().sent &&
      received.received >= upstreamTarget,
    60_000,
    'every message each way',
  );
  const records = readServerLog(log);
  const ledger = new ProcessedLedger('c');
  for (const record of records) if (record.t === 'in') ledger.add(record.d, record.r === 1);
  const { sent, rejected } = traffic.counts();
  const clientToServer = ledger.tally(sent);
  const serverToClient = received.tally(upstreamTarget);
  const latency = percentiles(recoveries);
  const storeErrors = records.filter((record) => record.t === 'store');
  console.log(
    `[durable redis, ${REPLICAS} replicas] ${KILLS} kills of the current replica: client->server ${JSON.stringify(clientToServer)}; server->client (upstream) ${JSON.stringify(serverToClient)}; kill to first delivered message: median ${latency.median.toFixed(0)} ms, p99 ${latency.p99.toFixed(0)} ms, max ${latency.max.toFixed(0)} ms over ${recoveries.length} kills; store errors ${storeErrors.length}`,
  );

  expect(clientToServer).toMatchObject({ sent, processed: sent, lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(serverToClient).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(rejected).toBe(0);
  expect(recoveries).toHaveLength(KILLS);
  expect(storeErrors).toEqual([]);
  expect(events.filter((event) => event.type === 'lost')).toEqual([]);
  expect(events.filter((event) => event.type === 'new')).toHaveLength(1);
  expect(events.filter((event) => event.type === 'resumed').length).toBeGreaterThanOrEqual(KILLS);
  // Every kill moved the session to another replica, which took it over from Redis.
  const takeovers = records.filter((record) => record.t === 'session' && record.restored);
  expect(takeovers.length).toBeGreaterThanOrEqual(KILLS);
  expect(new Set(killedPorts).size).toBeGreaterThan(1);
}, 150_000);
