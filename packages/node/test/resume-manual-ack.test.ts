// Processing guarantees, step by step against real servers on one SQLite file (issue 14): with
// `ack: 'manual'` the client is acknowledged only what the application acknowledged (in order,
// whatever order it acknowledges in); a server that takes the session over flags exactly the
// messages an earlier server may have handed its application. And `send()` never rejects
// unhandled: refusals are `send-failed` events, `sendAsync()` rejects (issue 16).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeData, encodeHello, FrameTooLargeError, type ResumeFrame } from '@lifeline/core/internal';
import {
  createResumeServer,
  type ServerSession,
  type ServerSessionEvent,
  type SessionMessage,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { openSqliteDatabase } from '@lifeline/node/stores/sqlite';
import { afterEach, expect, test } from 'vitest';
import { RawResumeClient } from './support/raw-resume-client.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function replica(path: string) {
  const store = new SqliteSessionStore({ path });
  const server = createResumeServer({ store, ack: 'manual' });
  const messages: SessionMessage[] = [];
  const sessions: ServerSession[] = [];
  let arrived = () => {};
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe((message) => {
      messages.push(message);
      arrived();
    });
  });
  const { url } = await server.listen();
  cleanups.push(async () => {
    await server.close({ goAway: false });
    await store.close();
  });
  /** Resolves once `count` messages arrived (bounded). */
  const received = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${messages.length} of ${count} messages`)),
        10_000,
      );
      arrived = () => {
        if (messages.length < count) return;
        clearTimeout(timer);
        resolve();
      };
      arrived();
    });
  return { server, url, messages, sessions, received };
}

/** The first ACK (or DATA's ack) at or above `ack` from frame index `from` on. */
async function ackOf(client: RawResumeClient, ack: number, from = 0): Promise<number> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const frame = client.frames
      .slice(from)
      .find((f): f is Extract<ResumeFrame, { type: 'ack' }> => f.type === 'ack' && f.ack >= ack);
    if (frame) return frame.ack;
    if (performance.now() > deadline) throw new Error(`no ACK of ${ack}`);
    await client.nextOf(['ack'], client.frames.length, 1_000).catch(() => undefined);
  }
}

test("ack: 'manual': acknowledged in order only; a takeover flags exactly what an earlier server may have handed over", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-ack-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'sessions.db');
  const a = await replica(path);
  const client = await RawResumeClient.connect(a.url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0));
  const welcome = (await client.next('welcome'))!;
  for (let seq = 1; seq <= 5; seq++) client.send(encodeData(seq, 0, `m${seq}`).frame);
  await a.received(5);
  expect(a.messages.map(({ seq, redelivered }) => [seq, redelivered])).toEqual([
    [1, false],
    [2, false],
    [3, false],
    [4, false],
    [5, false],
  ]);
  // Handed over is not received: nothing is acknowledged until the application says so.
  expect(a.sessions[0]!.lastAcknowledged).toBe(0);

  // Out of order: 1, 2, 4. The client is told 2, never 4 (3 is not done).
  a.messages[0]!.ack();
  a.messages[1]!.ack();
  a.messages[3]!.ack();
  expect(await ackOf(client, 2)).toBe(2);
  expect(a.sessions[0]!.lastAcknowledged).toBe(2);
  // Cumulative: session.ack(3) completes 3, and 4 was done already.
  expect(a.sessions[0]!.ack(3)).toBe(true);
  expect(await ackOf(client, 4)).toBe(4);
  expect(a.sessions[0]!.ack(9)).toBe(false); // not delivered: refused, nothing changes
  expect(client.frames.some((frame) => frame.type === 'ack' && frame.ack > 4)).toBe(false);

  // A goes away as a crash would (5 handed over, never acknowledged); B takes the session over.
  await a.server.close({ goAway: false });
  const b = await replica(path);
  const onB = await RawResumeClient.connect(b.url);
  cleanups.push(() => onB.close());
  onB.send(encodeHello({ id: welcome.id, token: welcome.token }, 0));
  expect(await onB.next('welcome')).toMatchObject({ resumed: true, lastReceived: 4 });
  onB.send(encodeData(5, 0, 'm5').frame); // the client's replay
  onB.send(encodeData(6, 0, 'm6').frame);
  await b.received(2);
  expect(b.messages.map(({ seq, data, redelivered }) => [seq, data, redelivered])).toEqual([
    [5, 'm5', true],
    [6, 'm6', false],
  ]);
  b.sessions[0]!.ack(6);
  expect(await ackOf(onB, 6)).toBe(6);
});

test('send() never rejects unhandled: a refusal is a send-failed event, sendAsync() rejects', async () => {
  const server = createResumeServer({ maxFrameBytes: 1_024 });
  const events: ServerSessionEvent[] = [];
  const outcomes: Promise<unknown>[] = [];
  server.sessions$.subscribe((session) => {
    session.events$.subscribe((event) => events.push(event));
    session.messages$.subscribe(() => {
      void session.send('x'.repeat(4_096)); // ignored, as fire-and-forget sends are
      outcomes.push(session.sendAsync('y'.repeat(4_096)).catch((error: unknown) => error));
      void session.send('ok');
    });
  });
  const { url } = await server.listen();
  cleanups.push(() => server.close({ goAway: false }));
  const client = await RawResumeClient.connect(url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0));
  await client.next('welcome');
  client.send(encodeData(1, 0, 'go').frame);
  expect(await client.next('data')).toMatchObject({ seq: 1, data: 'ok' });
  expect(await outcomes[0]).toBeInstanceOf(FrameTooLargeError);
  const failed = events.filter((event) => event.type === 'send-failed');
  expect(failed).toHaveLength(2);
  expect(failed[0]).toMatchObject({ data: 'x'.repeat(4_096) });
  expect((failed[0] as { error: unknown }).error).toBeInstanceOf(FrameTooLargeError);
});

test('a version-1 SQLite file (before `delivered`) is upgraded in place; its sessions load, flagging nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-ack-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'sessions.db');
  const record = {
    id: 'ab'.repeat(16),
    tokenHash: new Uint8Array(32).fill(7),
    retiredTokenHash: null,
    tokenConfirmed: true,
    createdAt: 1,
    expiresAt: null,
    lastSent: 0,
    peerAcked: 0,
    received: 3,
    replay: [],
  };
  const old = new SqliteSessionStore({ path });
  await old.save(record);
  await old.close();
  // Back to the version-1 schema, as a file written before this release.
  const db = await openSqliteDatabase(path);
  db.exec('ALTER TABLE lifeline_sessions DROP COLUMN delivered; PRAGMA user_version = 1;');
  db.close();

  const upgraded = new SqliteSessionStore({ path });
  cleanups.push(() => upgraded.close());
  await upgraded.ready();
  expect(await upgraded.load(record.id)).toMatchObject({ received: 3, delivered: 0 });
  await upgraded.acknowledge(record.id, { delivered: 5 });
  expect(await upgraded.load(record.id)).toMatchObject({ received: 3, delivered: 5 });
  const check = await openSqliteDatabase(path);
  expect(check.prepare('PRAGMA user_version').get()).toEqual({ user_version: 3 });
  check.close();
});

test('ack misuse changes nothing and says so; close() refuses a bad hand-off hint before stopping anything', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-ack-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const a = await replica(join(dir, 'sessions.db'));
  const client = await RawResumeClient.connect(a.url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0));
  await client.next('welcome');
  for (let seq = 1; seq <= 3; seq++) client.send(encodeData(seq, 0, `m${seq}`).frame);
  await a.received(3);
  const session = a.sessions[0]!;
  for (const seq of [-1, 0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 4, 99]) {
    expect([seq, session.ack(seq)]).toEqual([seq, false]);
  }
  expect(session.ack(2)).toBe(true);
  expect(session.ack(2)).toBe(true); // twice is harmless
  expect(await ackOf(client, 2)).toBe(2);

  // A hint the wire cannot carry is refused first: the server keeps serving and can still close.
  for (const bad of [
    { goAway: { delayMs: -1 } },
    { goAway: { delayMs: Number.NaN } },
    { goAway: { url: 'x'.repeat(3_000) } },
    { drainTimeoutMs: -5 },
  ]) {
    await expect(a.server.close(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  }
  client.send(encodeData(4, 0, 'm4').frame);
  await a.received(4);
  await a.server.close({ goAway: false });
  expect(session.ack(3)).toBe(false); // the session ended: nothing to acknowledge any more
});
