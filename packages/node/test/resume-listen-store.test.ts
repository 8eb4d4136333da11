// listen() fails with the store's error when the store cannot open, instead of listening and
// refusing every client with 1011 (issue 16): a missing directory, and no SQLite driver at all.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SessionStoreError } from '@lifeline/core/internal';
import { createResumeServer, SqliteSessionStore } from '@lifeline/node/server';
import { afterEach, expect, test } from 'vitest';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

test('a SQLite file in a directory that does not exist: listen() rejects with the SessionStoreError', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-listen-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new SqliteSessionStore({ path: join(dir, 'missing', 'sessions.db') });
  const server = createResumeServer({ store });
  cleanups.push(() => server.close());
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
