// Node 22 prints "ExperimentalWarning: SQLite is an experimental feature" when `node:sqlite` is
// first loaded: at every start of a server using our SQLite store. The store silences that one
// warning for its own load only; a warning the application emits itself still shows.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
// The Node 22 that scripts/runtimes.sh installs, where the warning exists; else this process's Node.
const node22 = join(repo, '.cache', 'runtimes', 'node22', 'bin', 'node');
const node = existsSync(node22) ? node22 : process.execPath;
const server = join(repo, 'packages', 'node', 'dist', 'server.js');

test('opening the SQLite store prints no ExperimentalWarning; the application’s own warnings still show', async () => {
  const script = `
const { SqliteSessionStore } = await import(${JSON.stringify(server)});
const store = new SqliteSessionStore({ path: ':memory:' });
await store.ready().catch((error) => console.log('no driver:', error.message));
await store.close();
// Asked after the store loaded it (a first load here would print the warning itself).
const builtin = (() => { try { return !!process.getBuiltinModule?.('node:sqlite'); } catch { return false; } })();
process.emitWarning('the application speaks', 'ExperimentalWarning');
console.log(JSON.stringify({ builtin, version: process.version }));
`;
  const { stdout, stderr } = await run(node, ['--input-type=module', '-e', script], {
    cwd: repo,
    timeout: 60_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  expect(stdout).toContain('"version"');
  expect(stderr).not.toContain('SQLite is an experimental feature');
  expect(stderr).toContain('ExperimentalWarning: the application speaks');
});
