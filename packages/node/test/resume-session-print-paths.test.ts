// Every object a user would log on a resuming connection must not show the session token: the
// socket, its session, the server's sessions, the socket's events, and the client session stores
// (memory and file), which hold the token to resume with.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { waitFor } from '@lifeline/core/testing';
import { FileClientSessionStore, MemoryClientSessionStore } from '@lifeline/node/client-store';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket, resume } from '@lifeline/node/ws';
import { expect, onTestFinished, test } from 'vitest';
import { leaks, RecordingStore } from './support/token-leaks.js';

test('no logged object of a resuming connection shows its token: socket, session, server sessions, events, memory and file stores', async () => {
  const server = createResumeServer();
  const serverSessions: unknown[] = [];
  server.sessions$.subscribe((session) => {
    serverSessions.push(session);
    session.messages$.subscribe((m) => session.send(m.data));
  });
  const { url } = await server.listen();
  onTestFinished(() => server.close());
  const store = new RecordingStore();
  const socket = new HAWebSocket(url, { resume: resume({ store }) });
  onTestFinished(() => socket.close());
  const events: unknown[] = [];
  for (const type of ['error', 'close', 'open', 'message'])
    socket.addEventListener(type, (e) => events.push(e));
  let echoed = 0;
  socket.addEventListener('message', () => echoed++);
  await waitFor(() => socket.readyState === 1, { timeoutMs: 10_000 });
  socket.send('ping');
  await waitFor(() => echoed === 1 && store.tokens.length > 0, { timeoutMs: 10_000 });
  const token = store.tokens.at(-1)!;
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
