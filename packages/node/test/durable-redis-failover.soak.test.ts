// A Redis master SIGKILLed under load, on Redis Cluster (3 masters, 3 replicas) and behind Sentinel
// (1 master, 2 replicas, 3 sentinels): sessions stream both ways through resume server processes
// whose store is on that Redis; after the failover the resume server is SIGKILLed too, so every
// session resumes on another replica from what the promoted Redis replica holds. Each session on
// the killed master either resumes with nothing lost or repeated, or is reported lost
// (SessionLostError) with exactly its unacknowledged messages; none is silently forked.
//
// "lagging": the master's replicas are frozen (SIGSTOP) and their links cut before the kill, so the
// promoted replica misses the last writes (what asynchronous replication allows): those sessions
// went back in the store and must be reported lost, not resumed with a gap or a repeat.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attach, failoverTransport, type HAConnection, type LinkData } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/resume';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import { DurableServer, ProcessedLedger, readServerLog } from './support/durable-harness.js';
import { ask, RedisCluster, RedisSentinelSetup, until } from './support/redis-topologies.js';
import { condition, NumberedStream } from './support/resume-tally.js';

const SESSIONS = 24;
/** Messages per second each way, per session. */
const RATE = 20;
/** Messages each way per session before each fault, and after the last. */
const STEP = 30;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

interface Client {
  conn: HAConnection<LinkData, LinkData>;
  id: string | undefined;
  sent: number;
  acknowledged: number;
  /** Sends rejected, with the seq of their message in the error's list, if any. */
  rejected: string[];
  received: NumberedStream;
  lost: Extract<SessionEvent, { type: 'lost' }> | undefined;
  /** Acknowledged when the session was lost. */
  acknowledgedAtLoss: number;
  resumes: number;
}

test.each([
  ['Cluster', 'in sync'],
  ['Cluster', 'lagging'],
  ['Sentinel', 'in sync'],
  ['Sentinel', 'lagging'],
] as const)(
  'Redis %s, replicas %s: a master SIGKILLed under load, then the resume server: every session on it resumed intact or reported lost with exactly its unacknowledged messages, none forked',
  async (topology, replication) => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-failover-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const cluster = topology === 'Cluster' ? await RedisCluster.start() : undefined;
    const sentinel = topology === 'Sentinel' ? await RedisSentinelSetup.start() : undefined;
    cleanups.push(async () => {
      await cluster?.stop();
      await sentinel?.stop();
    });
    const store = (cluster ?? sentinel)!.spec;
    const log = join(dir, 'server.log');
    const start = Date.now();
    const upstream = { total: 1e9, rate: RATE, start };
    const due = () => Math.floor(((Date.now() - start) * RATE) / 1_000);
    const replicas = await Promise.all([0, 1].map(() => DurableServer.start({ store, upstream, log })));
    cleanups.push(() => Promise.all(replicas.map((replica) => replica.kill())).then(() => {}));
    const urls = replicas.map((replica) => replica.url);

    let poke = () => {};
    const clients: Client[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      // Every client starts on the first replica (the list's order), the one killed later.
      const transport = resumable(
        failoverTransport(urls, (url) => wsTransport(url, { connectTimeoutMs: 2_000 })),
      );
      const conn = attach(transport, {
        backoff: { initialDelayMs: 20, maxDelayMs: 200 },
        maxAttemptsPerFailure: 1_000,
        maxRecoveries: 1_000,
        minUptimeMs: 0,
      });
      const client: Client = {
        conn,
        id: undefined,
        sent: 0,
        acknowledged: 0,
        rejected: [],
        received: new NumberedStream('u'),
        lost: undefined,
        acknowledgedAtLoss: 0,
        resumes: 0,
      };
      transport.session$.subscribe((event) => {
        if (event.type === 'new' && client.id === undefined) client.id = event.sessionId;
        if (event.type === 'resumed') client.resumes++;
        // The first loss ends this client's count: what follows is a new session.
        if (event.type === 'lost' && client.lost === undefined) {
          client.lost = event;
          client.acknowledgedAtLoss = client.acknowledged;
        }
        poke();
      });
      conn.messages$.subscribe((message) => {
        if (client.lost === undefined) client.received.add(message);
        poke();
      });
      clients.push(client);
    }
    cleanups.push(async () => {
      for (const client of clients) client.conn.close();
    });

    let sending = true;
    const pacer = setInterval(() => {
      for (const client of clients) {
        for (const target = due(); sending && !client.lost && client.sent < target; ) {
          const data = `c${++client.sent}`;
          client.conn.send(data).then(
            () => {
              client.acknowledged++;
              poke();
            },
            () => {
              client.rejected.push(data);
              poke();
            },
          );
        }
      }
    }, 20);
    cleanups.push(async () => clearInterval(pacer));

    const waitFor = async (check: () => boolean, timeoutMs: number, what: string) => {
      const waiting = condition(check, timeoutMs, what);
      poke = waiting.poke;
      try {
        await waiting.promise;
      } catch (error) {
        const stuck = clients
          .filter((client) => client.lost === undefined)
          .map((client) => ({
            id: client.id?.slice(0, 8),
            sent: client.sent,
            acknowledged: client.acknowledged,
            received: client.received.received,
            resumes: client.resumes,
            state: client.conn.state$.value.status,
          }));
        const codes: Record<string, number> = {};
        for (const record of readServerLog(log))
          if (record.t === 'store')
            codes[`${record.code} ${record.m?.replace(/session [0-9a-f]+/, 'session X').slice(0, 120)}`] =
              (codes[`${record.code} ${record.m?.replace(/session [0-9a-f]+/, 'session X').slice(0, 120)}`] ??
                0) + 1;
        throw new Error(
          `${(error as Error).message}; store closes ${JSON.stringify(codes)}; ${JSON.stringify(stuck.slice(0, 3))}`,
        );
      } finally {
        poke = () => {};
      }
    };
    /** Every session still counted moved STEP messages each way since `marks`. */
    const progressed = (marks: Map<Client, readonly [number, number]>) => () =>
      clients.every((client) => {
        const [acked, received] = marks.get(client)!;
        return (
          client.lost !== undefined ||
          (client.acknowledged - acked >= STEP && client.received.received - received >= STEP)
        );
      });
    const mark = () =>
      new Map(clients.map((client) => [client, [client.acknowledged, client.received.received]] as const));

    await waitFor(progressed(mark()), 60_000, `${STEP} messages each way on every session`);

    // The master to kill, and the sessions whose keys it holds.
    const masterPort = cluster ? await mostLoaded(await cluster.masters()) : await sentinel!.masterPort();
    const keys = (await ask(masterPort, 'KEYS', 'lifeline:*:m')).split(',');
    const onMaster = new Set(clients.filter((client) => keys.some((key) => key.includes(client.id!))));
    expect(onMaster.size).toBeGreaterThan(0);
    const replicaPorts = cluster
      ? [await cluster.replicaOf(masterPort)]
      : sentinel!.servers.map((server) => server.port).filter((port) => port !== masterPort);
    const nodeOf = (port: number) => (cluster ? cluster.node(port) : sentinel!.server(port));

    if (replication === 'lagging') {
      // Frozen, and cut off: what the master writes from now on reaches no replica (a frozen
      // replica still reads, on SIGCONT, what its socket had buffered before the cut).
      for (const port of replicaPorts) nodeOf(port).pause();
      expect(Number(await ask(masterPort, 'CLIENT', 'KILL', 'TYPE', 'replica'))).toBe(replicaPorts.length);
      await until(
        async () => (await ask(masterPort, 'INFO', 'replication')).includes('connected_slaves:0'),
        10_000,
        'replicas cut off',
      );
      // A few writes of every session on the master then reach only the master.
      const written = mark();
      await waitFor(
        () => [...onMaster].every((client) => client.acknowledged - written.get(client)![0] >= 4),
        10_000,
        'writes while the replicas are frozen',
      );
    }
    const killedAt = performance.now();
    await nodeOf(masterPort).kill();
    for (const port of replicaPorts) nodeOf(port).resume();
    // The failover: a replica promoted and serving.
    if (cluster) {
      await cluster.waitHealthy(60_000, { replicas: false });
      expect(await cluster.masters()).not.toContain(masterPort);
    } else {
      await until(async () => (await sentinel!.masterPort()) !== masterPort, 60_000, 'sentinel failover');
    }
    const failoverMs = performance.now() - killedAt;

    // Then the resume server: every session resumes on the other replica, from the store.
    const beforeServerKill = mark();
    await replicas[0]!.kill();
    await waitFor(progressed(beforeServerKill), 90_000, `${STEP} messages each way after the resume`);

    sending = false;
    const target = due();
    await waitFor(
      () =>
        clients.every(
          (client) =>
            (client.lost !== undefined && client.acknowledged + client.rejected.length === client.sent) ||
            (client.acknowledged === client.sent && client.received.received >= target),
        ),
      60_000,
      'every message each way, on every session not lost',
    );

    const records = readServerLog(log);
    const outcome = { onMaster: onMaster.size, resumedIntact: 0, lost: 0, forked: 0, elsewhereIntact: 0 };
    const lostReasons: string[] = [];
    for (const client of clients) {
      const ledger = new ProcessedLedger('c');
      for (const record of records)
        if (record.t === 'in' && record.s === client.id) ledger.add(record.d, record.r === 1);
      if (client.lost) {
        // Exactly the unacknowledged messages: every send not acknowledged is in the list, in order,
        // and nothing acknowledged is; the server processed every acknowledged one, in order.
        const listed = client.lost.unacknowledged.map((message) => String(message.data));
        // Sends attach still held (not yet given to the session) are not the lost session's: they
        // are rejected after the list, or acknowledged on the next session; each is accounted for.
        const exact =
          client.rejected.slice(0, listed.length).join() === listed.join() &&
          listed.every((data, k) => data === `c${client.acknowledgedAtLoss + 1 + k}`) &&
          client.acknowledged + client.rejected.length === client.sent &&
          // The server processed every acknowledged message; of the listed ones, maybe some: unknown.
          ledger.processed >= client.acknowledgedAtLoss &&
          ledger.processed <= client.acknowledgedAtLoss + listed.length &&
          ledger.duplicated === 0 &&
          client.received.duplicated === 0 &&
          client.received.outOfOrder === 0;
        if (exact) outcome.lost++;
        else {
          outcome.forked++;
          console.log(
            `session ${client.id} lost inexactly: ${JSON.stringify({ listed, rejected: client.rejected, acknowledged: client.acknowledged, sent: client.sent, ledger: ledger.tally(client.acknowledged), received: client.received.tally(client.received.received) })}`,
          );
        }
        lostReasons.push(client.lost.reason);
        continue;
      }
      const down = client.received.tally(target);
      const up = ledger.tally(client.sent);
      const intact =
        client.rejected.length === 0 &&
        up.lost === 0 &&
        up.duplicated === 0 &&
        up.outOfOrder === 0 &&
        down.lost === 0 &&
        down.duplicated === 0 &&
        down.outOfOrder === 0;
      if (!intact) outcome.forked++;
      else if (onMaster.has(client)) outcome.resumedIntact++;
      else outcome.elsewhereIntact++;
    }
    console.log(
      `[redis ${topology}, replicas ${replication}] ${SESSIONS} sessions, ${onMaster.size} on the killed master; failover ${failoverMs.toFixed(0)} ms; ${JSON.stringify(outcome)}; lost reasons ${JSON.stringify(lostReasons)}`,
    );
    expect(outcome.forked).toBe(0);
    expect(outcome.resumedIntact + outcome.lost).toBe(onMaster.size);
    // Sessions on the other masters never went back: they all resumed intact.
    expect(outcome.elsewhereIntact).toBe(SESSIONS - onMaster.size);
    // Lost writes were detected, not resumed over.
    if (replication === 'lagging') expect(outcome.lost).toBeGreaterThan(0);
  },
  240_000,
);

/** The master holding the most sessions. */
async function mostLoaded(masters: number[]): Promise<number> {
  const sizes = await Promise.all(masters.map(async (port) => Number(await ask(port, 'DBSIZE'))));
  return masters[sizes.indexOf(Math.max(...sizes))]!;
}
