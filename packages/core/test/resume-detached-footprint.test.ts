// What the server and the default store hold per detached session (issue 13: <= 1.5 KB, `pnpm
// bench server`): counted here as structures, so that a change which adds one per session fails a
// test and not only a noisy benchmark. Behaviour (resume, exactly-once) is the resume-* tests'.
import { attach, type LinkData } from '@lifeline/core';
import { resumable } from '@lifeline/core/internal';
import { MemorySessionStore, ResumeServer, type ServerSession } from '@lifeline/core/resume/server';
import { createMemoryTransport, serveOverMemory, waitFor } from '@lifeline/core/testing';
import { filter, firstValueFrom } from 'rxjs';
import { expect, onTestFinished, test } from 'vitest';
import { storedSession } from './support.js';

function parked(session: ServerSession): boolean {
  return (session as unknown as { isParked: boolean }).isParked === true;
}

/** The server's own maps that hold an entry keyed by `id`. */
function mapsKeyedBy(owner: object, id: string): number {
  return Object.values(owner).filter((value) => value instanceof Map && value.has(id)).length;
}

/** The arrays in the store's own record of `id` (an idle session needs none). */
function heldArrays(store: MemorySessionStore, id: string): number {
  const held = (store as unknown as { sessions: Map<string, object> }).sessions.get(id)!;
  return Object.values(held).filter((value) => Array.isArray(value)).length;
}

test('a detached, parked session is one entry in one server map, and the store holds no replay list for it', async () => {
  const store = new MemorySessionStore();
  const server = new ResumeServer({ store, ackDelayMs: 0 });
  const transport = createMemoryTransport<LinkData>();
  const stop = serveOverMemory(server, transport);
  const sessions: ServerSession[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe(() => {});
  });
  const conn = attach(resumable(transport, { ackDelayMs: 0 }), {
    backoff: { initialDelayMs: 0 },
    minUptimeMs: 0,
  });
  onTestFinished(async () => {
    conn.close();
    stop();
    await server.close();
  });
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const session = sessions[0]!;
  // A message both ways, acknowledged: the store's replay list was used, and is empty again once
  // the acknowledgement is stored (by the time the session is parked).
  await conn.send('c1');
  await session.sendAsync('s1');
  transport.current!.fail();
  await waitFor(() => !session.connected && parked(session), { timeoutMs: 10_000 });
  expect(mapsKeyedBy(server, session.id)).toBe(1);
  expect(heldArrays(store, session.id)).toBe(0);
  // And what the store gives out is still a whole record.
  expect((await store.load(session.id))!.replay).toEqual([]);
  // The session resumes on its token as before.
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  await waitFor(() => session.connected, { timeoutMs: 10_000 });
  await session.sendAsync('s2');
  expect(sessions).toHaveLength(1);
});

test('the store keeps unacknowledged messages in order until acknowledged, then drops the list', async () => {
  const store = new MemorySessionStore();
  const tokenHash = new Uint8Array(32).fill(7);
  await store.save(storedSession('a', { tokenHash }));
  expect(heldArrays(store, 'a')).toBe(0);
  const message = (seq: number) => ({ seq, kind: 'text' as const, payload: new Uint8Array([seq]) });
  await store.append('a', [message(1), message(2), message(3)]);
  await store.acknowledge('a', { peerAcked: 1 });
  expect((await store.load('a'))!.replay.map(({ seq }) => seq)).toEqual([2, 3]);
  await store.acknowledge('a', { peerAcked: 3 });
  expect(heldArrays(store, 'a')).toBe(0);
  await store.append('a', [message(4)]);
  const loaded = (await store.load('a'))!;
  expect(loaded.replay.map(({ seq }) => seq)).toEqual([4]);
  expect(loaded.tokenHash).toEqual(tokenHash);
});
