// Two replicas on one shared, fenced store (issue 10, items 2 and 3), driven by a scripted raw
// client, on each store that can be shared: one MemorySessionStore in the process, one SQLite
// file opened twice, one private Redis.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeAck, encodeData, encodeHello, encodePing, type ResumeFrame } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import {
  createResumeServer,
  MemorySessionStore,
  type NodeResumeServer,
  RedisSessionStore,
  type ServerSession,
  type SessionStore,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { describe, expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { RawResumeClient } from './support/raw-resume-client.js';
import { RedisServer } from './support/redis-server.js';

type Welcome = Extract<ResumeFrame, { type: 'welcome' }>;

/** Two stores over the same sessions, as two replicas would open them. */
const sharedStores: Record<string, () => Promise<[SessionStore, SessionStore]>> = {
  memory: async () => {
    const store = new MemorySessionStore();
    return [store, store];
  },
  sqlite: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-replicas-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'sessions.db');
    const stores = [new SqliteSessionStore({ path }), new SqliteSessionStore({ path })] as const;
    cleanups.push(() => Promise.all(stores.map((store) => store.close())));
    return [...stores];
  },
  redis: async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const stores = [
      new RedisSessionStore({ redis: redis.url }),
      new RedisSessionStore({ redis: redis.url }),
    ] as const;
    cleanups.push(() => Promise.all(stores.map((store) => store.close())));
    return [...stores];
  },
};

interface Delivery {
  replica: string;
  seq: number;
  data: string | Uint8Array;
}

/** A replica whose application records every client message it is handed. */
async function replica(name: string, store: SessionStore, deliveries: Delivery[]) {
  const server: NodeResumeServer = createResumeServer({ store, handshakeTimeoutMs: 5_000 });
  const sessions: ServerSession[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe(({ seq, data }) => deliveries.push({ replica: name, seq, data }));
  });
  const { url } = await server.listen();
  cleanups.push(() => server.close());
  return { server, url, sessions };
}

async function raw(url: string): Promise<RawResumeClient> {
  const client = await RawResumeClient.connect(url);
  cleanups.push(() => client.close());
  return client;
}

/** Waits (bounded) until `check` holds, re-reading state the test cannot subscribe to (a store). */
const until = (check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000) =>
  waitFor(check, { timeoutMs, what, intervalMs: 10 });

/** Sends DATA `from`..`to` (acking nothing) and waits for the server's cumulative ACK of `to`. */
async function sendAndAwaitAck(client: RawResumeClient, from: number, to: number) {
  const start = client.frames.length;
  for (let seq = from; seq <= to; seq++) client.send(encodeData(seq, 0, `m${seq}`).frame);
  await until(
    () =>
      client.frames
        .slice(start)
        .some((frame) => (frame.type === 'ack' || frame.type === 'data') && frame.ack >= to),
    `the ACK of ${to}`,
  );
}

/** Per seq, the replicas whose application got it. */
function bySeq(deliveries: readonly Delivery[]): Record<number, string[]> {
  const seen: Record<number, string[]> = {};
  for (const { seq, replica } of deliveries) {
    seen[seq] ??= [];
    seen[seq].push(replica);
  }
  return seen;
}

describe.each(Object.keys(sharedStores))('two replicas sharing a %s store', (kind) => {
  test('the client moves A -> B -> A with no server-initiated traffic: A reloads the record instead of refusing the token', async () => {
    const [storeA, storeB] = await sharedStores[kind]!();
    const deliveries: Delivery[] = [];
    const a = await replica('A', storeA, deliveries);
    const b = await replica('B', storeB, deliveries);

    const onA = await raw(a.url);
    onA.send(encodeHello(undefined, 0));
    const created = (await onA.next('welcome'))!;
    await sendAndAwaitAck(onA, 1, 1);
    await onA.close();
    const id = a.sessions[0]!.id;
    // A has seen the link go and stored the detach, so it still holds its copy of the session.
    await until(async () => (await storeA.load(id))?.expiresAt != null, 'the detach on A');

    const onB = await raw(b.url);
    onB.send(encodeHello({ id: created.id, token: created.token }, 0));
    const onBWelcome = (await onB.nextOf(['welcome', 'reject'])) as Welcome;
    expect(onBWelcome).toMatchObject({ type: 'welcome', resumed: true, lastReceived: 1 });
    await sendAndAwaitAck(onB, 2, 2);
    await onB.close();
    await until(async () => (await storeB.load(id))?.expiresAt != null, 'the detach on B');
    expect(a.sessions[0]!.closed).toBe(false); // A still holds its stale copy

    const backOnA = await raw(a.url);
    backOnA.send(encodeHello({ id: created.id, token: onBWelcome.token }, 0));
    const answer = await backOnA.nextOf(['welcome', 'reject']);
    expect(answer).toMatchObject({ type: 'welcome', resumed: true, lastReceived: 2 });
    await sendAndAwaitAck(backOnA, 3, 3);

    expect(bySeq(deliveries)).toEqual({ 1: ['A'], 2: ['B'], 3: ['A'] });
    expect(a.server.stats).toMatchObject({ invalidTokens: 0, replayedTokens: 0, unknownSessions: 0 });
    expect(a.server.stats.resumes + b.server.stats.resumes).toBe(2);
  });

  test('a token the owner retired, replayed to a replica whose stale copy still takes it for current, is refused and counted, and never disturbs the owner', async () => {
    const [storeA, storeB] = await sharedStores[kind]!();
    const deliveries: Delivery[] = [];
    const a = await replica('A', storeA, deliveries);
    const b = await replica('B', storeB, deliveries);

    const onA = await raw(a.url);
    onA.send(encodeHello(undefined, 0));
    const created = (await onA.next('welcome'))!;
    await sendAndAwaitAck(onA, 1, 1); // confirms t1
    await onA.close();
    const id = a.sessions[0]!.id;
    await until(async () => (await storeA.load(id))?.expiresAt != null, 'the detach on A');

    // The client moves to B, which rotates to t2; the client confirms it and stays attached.
    const onB = await raw(b.url);
    onB.send(encodeHello({ id: created.id, token: created.token }, 0));
    expect(await onB.nextOf(['welcome', 'reject'])).toMatchObject({ type: 'welcome', resumed: true });
    await sendAndAwaitAck(onB, 2, 2);

    // t1, captured, is replayed to A, whose copy of the session still has t1 as its current token.
    const intruder = await raw(a.url);
    intruder.send(encodeHello({ id: created.id, token: created.token }, 0));
    expect(await intruder.nextOf(['welcome', 'reject'])).toMatchObject({
      type: 'reject',
      code: 'invalid-token',
    });
    expect(a.server.stats).toMatchObject({ replayedTokens: 1, invalidTokens: 0, resumes: 0 });

    // The owner's link was never touched: B still owns the session and takes messages on it.
    await sendAndAwaitAck(onB, 3, 3);
    expect(onB.closeCode).toBeUndefined();
    expect(b.sessions[0]!.connected).toBe(true);
    expect(bySeq(deliveries)).toEqual({ 1: ['A'], 2: ['B'], 3: ['B'] });
  });

  test('the old owner, its half-open link releasing held frames after the new owner claimed, delivers none of them', async () => {
    const [storeA, storeB] = await sharedStores[kind]!();
    const deliveries: Delivery[] = [];
    const a = await replica('A', storeA, deliveries);
    const b = await replica('B', storeB, deliveries);
    const COUNT = 50;

    // The client's link to A goes half-open right after the handshake: A believes it attached.
    const onA = await raw(a.url);
    onA.send(encodeHello(undefined, 0));
    const created = (await onA.next('welcome'))!;
    onA.send(encodeAck(0));
    onA.send(encodePing());
    await onA.next('pong');

    // The client gives up on it and resumes on B, which claims the session, and sends there.
    const onB = await raw(b.url);
    onB.send(encodeHello({ id: created.id, token: created.token }, 0));
    expect(await onB.nextOf(['welcome', 'reject'])).toMatchObject({ type: 'welcome', resumed: true });
    await sendAndAwaitAck(onB, 1, COUNT);

    // Now the half-open link to A releases what the client had sent on it: the same messages.
    for (let seq = 1; seq <= COUNT; seq++) onA.send(encodeData(seq, 0, `m${seq}`).frame);
    // A finds it no longer owns the session and drops its copy, closing the link.
    expect(await onA.closed).toBe(1011);
    const closedA = a.sessions[0]!;
    expect(closedA.closed).toBe(true);

    const seen = bySeq(deliveries);
    expect(Object.keys(seen)).toHaveLength(COUNT);
    const twice = Object.values(seen).filter((replicas) => replicas.length !== 1);
    expect({ delivered: deliveries.length, duplicated: twice.length }).toEqual({
      delivered: COUNT,
      duplicated: 0,
    });
    expect(deliveries.every((delivery) => delivery.replica === 'B')).toBe(true);
    // B's session goes on: one more message each way.
    await sendAndAwaitAck(onB, COUNT + 1, COUNT + 1);
    expect(deliveries).toHaveLength(COUNT + 1);
  });
});
