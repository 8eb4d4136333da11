// listen() fails with the store's error when the store cannot open, instead of listening and
// refusing every client with 1011 (issue 16): a missing directory, and no SQLite driver at all.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SessionStoreError } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import {
  createResumeServer,
  openSqliteDatabase,
  type SqliteDatabase,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { HAWebSocket } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A resume server on a SQLite file in a directory that does not exist: its store cannot open. */
async function serverOnUnopenableStore() {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-listen-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new SqliteSessionStore({ path: join(dir, 'missing', 'sessions.db') });
  const server = createResumeServer({ store });
  cleanups.push(() => server.close());
  return { store, server };
}

test('a SQLite file in a directory that does not exist: listen() rejects with the SessionStoreError', async () => {
  const { store, server } = await serverOnUnopenableStore();
  const failure = await server.listen().then(
    (address) => address,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(SessionStoreError);
  expect(failure).toMatchObject({ code: 'ERR_STORE', operation: 'open' });
  // The same error store.ready() reports: nothing was listening for a client to be refused by.
  await expect(store.ready()).rejects.toMatchObject({ code: 'ERR_STORE', operation: 'open' });
});

test('no SQLite driver (no node:sqlite, no better-sqlite3): listen() rejects naming the package, and the process exits', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-listen-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const script = fileURLToPath(new URL('./support/no-sqlite-driver-process.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, join(dir, 'sessions.db')],
    { cwd: fileURLToPath(new URL('../../../', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const result = JSON.parse(line) as { failed?: Record<string, string>; listening?: string };
  expect(result.listening).toBeUndefined();
  expect(result.failed).toMatchObject({ name: 'SessionStoreError', code: 'ERR_STORE', operation: 'open' });
  expect(result.failed!.message).toContain('better-sqlite3');
  // Nothing keeps the process alive: it ends on its own.
  const [code] = (await exited) as [number | null];
  expect(code).toBe(0);
}, 60_000);

test('no node:sqlite and a better-sqlite3 built for another Node ABI: listen() rejects saying to rebuild it, and the process exits', async () => {
  // Whether the better-sqlite3 in node_modules loads on this runtime (it is built for one ABI).
  const { default: Database } = await import('better-sqlite3');
  const loads = (() => {
    try {
      new Database(':memory:').close();
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_DLOPEN_FAILED') throw error;
      return false;
    }
  })();
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-listen-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const script = fileURLToPath(new URL('./support/no-builtin-sqlite-process.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, join(dir, 'sessions.db')],
    { cwd: fileURLToPath(new URL('../../../', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const result = JSON.parse(line) as { failed?: Record<string, string>; listening?: string };
  if (loads) {
    // The runtime better-sqlite3 was built for: the fallback driver serves.
    expect(result.failed).toBeUndefined();
    expect(result.listening).toMatch(/^ws:\/\/127\.0\.0\.1:\d+/);
  } else {
    expect(result.listening).toBeUndefined();
    expect(result.failed).toMatchObject({ name: 'SessionStoreError', code: 'ERR_STORE', operation: 'open' });
    expect(result.failed!.message).toContain('npm rebuild better-sqlite3');
  }
  const [code] = (await exited) as [number | null];
  expect(code).toBe(0);
}, 60_000);

/** A port that was free a moment ago (listen() with a fixed port: the test connects before it resolves). */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Resolves once a TCP connection to the port succeeds: retried on refusal, at most `attempts` times. */
async function bound(port: number, attempts = 500): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const outcome = await Promise.race([
      once(socket, 'connect').then(() => true),
      once(socket, 'error').then(() => false),
    ]);
    socket.destroy();
    if (outcome) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`port ${port} never accepted a connection`);
}

test('the store opens while the port binds: a client that connects meanwhile is answered only once the store is open, and is served', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-listen-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  // The real store and driver; the driver is held until the test lets it open, and the store
  // counts the sessions the server asks it to save.
  class CountingStore extends SqliteSessionStore {
    saves = 0;
    override save(...args: Parameters<SqliteSessionStore['save']>) {
      this.saves++;
      return super.save(...args);
    }
  }
  const store = new CountingStore({
    path: join(dir, 'sessions.db'),
    open: async (path): Promise<SqliteDatabase> => {
      await gate;
      return openSqliteDatabase(path);
    },
  });
  const server = createResumeServer({ store });
  cleanups.push(() => server.close());
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => session.send(`echo:${String(data)}`));
  });
  const port = await freePort();
  let listened = false;
  const listening = server.listen({ port }).then((address) => {
    listened = true;
    return address;
  });
  // The socket is bound while the store is still closed...
  await bound(port);
  expect(listened).toBe(false);
  // ...and a client connects then.
  const client = new HAWebSocket(`ws://127.0.0.1:${port}`, { resume: true });
  cleanups.push(async () => client.close());
  let opened = false;
  client.addEventListener('open', () => {
    opened = true;
  });
  const echoes: string[] = [];
  client.addEventListener('message', (event) => echoes.push(String((event as MessageEvent).data)));
  // Its handshake reached the server, which handed the new session to the store: still closed,
  // so the client has no answer yet and the application no session.
  let sessions = 0;
  server.sessions$.subscribe(() => sessions++);
  await waitFor(() => store.saves >= 1, { timeoutMs: 20_000, what: 'the new session handed to the store' });
  await new Promise((resolve) => setImmediate(resolve));
  expect(opened).toBe(false);
  expect(sessions).toBe(0);
  expect(listened).toBe(false);
  release();
  const address = await listening;
  expect(address.port).toBe(port);
  await waitFor(() => opened, { timeoutMs: 20_000, what: 'the client open' });
  expect(sessions).toBe(1);
  client.send('hi');
  await waitFor(() => echoes.length >= 1, { timeoutMs: 20_000 });
  expect(echoes).toEqual(['echo:hi']);
  expect(client.session?.id).toBeTruthy();
}, 60_000);

test('a store that cannot open: listen() on a fixed port rejects and leaves the port free', async () => {
  const { server } = await serverOnUnopenableStore();
  const port = await freePort();
  await expect(server.listen({ port })).rejects.toMatchObject({ code: 'ERR_STORE', operation: 'open' });
  // Nothing listens there any more: a connection is refused, and another server can bind the port.
  const refused = createConnection({ port, host: '127.0.0.1' });
  const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  expect(error.code).toBe('ECONNREFUSED');
  const next = createServer().listen(port, '127.0.0.1');
  await once(next, 'listening');
  await new Promise<void>((resolve) => next.close(() => resolve()));
}, 60_000);
