// Every object a user would log on a resuming connection must not show the session token: the
// socket, its session, the server's sessions, the socket's events, and the client session stores
// (memory and file), which hold the token to resume with.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { FileClientSessionStore, MemoryClientSessionStore } from '@lifeline/node/client-store';
import { expect, onTestFinished, test } from 'vitest';
import { echoedResumeSocket, leaks } from './support/token-leaks.js';

test('no logged object of a resuming connection shows its token: socket, session, server sessions, events, memory and file stores', async () => {
  const { sessions: serverSessions, store, socket, events, token } = await echoedResumeSocket();
  const opts = { depth: Number.POSITIVE_INFINITY, showHidden: true };
  const found: string[] = [];
  const check = (label: string, value: unknown) => {
    if (leaks(inspect(value, opts), token)) found.push(label);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {}
    if (json !== undefined && leaks(json, token)) found.push(`${label} (JSON)`);
  };
  check('socket', socket);
  check('session', socket.session);
  check('session.restored', socket.session?.restored);
  check('server sessions', serverSessions);
  check('events', events);
  // A plain memory store holding the session (RecordingStore keeps the tokens it saw, for the test).
  const memory = new MemoryClientSessionStore();
  await memory.open();
  await memory.write({ reset: true, identity: { id: store.stored!.id, token } });
  check('memory store', memory);
  // The file store (what a process restart resumes from) holds the session it read or wrote.
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-print-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const fileStore = new FileClientSessionStore(join(dir, 'session.json'));
  await fileStore.open();
  onTestFinished(() => fileStore.close());
  await fileStore.write({ reset: true, identity: { id: store.stored!.id, token } });
  check('file store', fileStore);
  const reopened = new FileClientSessionStore(join(dir, 'session.json'));
  await fileStore.close();
  expect((await reopened.open())?.token).toEqual(token);
  onTestFinished(() => reopened.close());
  check('reopened file store', reopened);
  expect(found).toEqual([]);
  // What the store holds is still there for code that asks for it.
  expect(memory.stored?.token).toEqual(token);
});
