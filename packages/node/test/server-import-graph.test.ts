// The resume server's start-up: importing `@lifeline/node/server` must not load rxjs's index (its
// CommonJS build, which Node resolves `rxjs` to, loads every operator: about 0.5 s of a server's
// start on a loaded machine, `pnpm bench server`). The server path imports the rxjs classes it
// uses from their modules, and the core through `@lifeline/core/internal/server`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Runs `program` as an ES module (or `type`) in a fresh Node (from the sources, in packages/node; `build`:
 * from the packages' dist, as a user's server runs); its exit must be 0. Returns the JSON it printed.
 */
async function runModule(
  program: string,
  build = false,
  type: 'module' | 'commonjs' = 'module',
): Promise<unknown> {
  const from = build ? [] : ['--conditions=@lifeline/source', '--import', 'tsx'];
  const child = spawn(process.execPath, [...from, `--input-type=${type}`, '-e', program], {
    cwd: `${root}/packages/node`,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
  return JSON.parse(out);
}

// The better-sqlite3 in node_modules is built for one Node ABI (the machine's Node, 20): on the
// other majors CI runs (22, 24, which use node:sqlite) its addon cannot load at all.
const betterSqliteLoads = (() => {
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (
      path: string,
    ) => { close(): void };
    new Database(':memory:').close();
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_DLOPEN_FAILED') throw error;
    return false;
  }
})();

test("importing @lifeline/node/server (and opening a store's module) does not load rxjs's index", async () => {
  const program = `
    await import('@lifeline/node/server');
    await import('@lifeline/node/stores/sqlite');
    const { createRequire } = await import('node:module');
    const cache = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      index: cache.filter((file) => /rxjs[\\\\/]dist[\\\\/]cjs[\\\\/]index\\.js$/.test(file)).length,
      rxjs: cache.filter((file) => file.includes('rxjs')).length,
    }));
  `;
  const loaded = (await runModule(program)) as { index: number; rxjs: number };
  expect(loaded.rxjs).toBeGreaterThan(0); // the check sees rxjs's modules at all
  expect(loaded.index).toBe(0);
}, 60_000);

/**
 * For a program run by {@link runModule}: a loader hook that reports every module Node's ES
 * loader loads, with its format (off the main thread in Node 20+), and {@link LOADED}, which
 * drains the reports synchronously into `loaded` (`{ url, format }[]`).
 */
const WATCH_LOADS = `
    const { register } = await import('node:module');
    const { MessageChannel, receiveMessageOnPort } = await import('node:worker_threads');
    const { port1, port2 } = new MessageChannel();
    const hooks = 'let port; export function initialize(data) { port = data.port; }' +
      'export async function load(url, context, next) { const loaded = await next(url, context);' +
      ' port.postMessage({ url, format: loaded.format }); return loaded; }';
    register('data:text/javascript,' + encodeURIComponent(hooks), { data: { port: port2 }, transferList: [port2] });
`;
const LOADED = `
    const loaded = [];
    for (let message; (message = receiveMessageOnPort(port1)); ) loaded.push(message.message);
    port1.close();
`;

// Node 20 spends about 1.5 ms of CPU on each ES module a server imports (resolve, read, compile,
// link): with the core's entries split by esbuild, 13 of the core's files made up most of the
// resume server's start beyond a plain ws server's (`LIFELINE_BENCH_SERVER=start pnpm bench
// server`). The core's build merges the chunks a server reaches (scripts/merge-esm-chunks.mjs): 4
// files, and `#rxjs-internal` in Node (below), 5.
test("from the build, importing @lifeline/node/server loads at most 8 of the core's ES module files, and not rxjs's index", async () => {
  const program = `
    ${WATCH_LOADS}
    await import('@lifeline/node/server');
    ${LOADED}
    // rxjs's modules, whether imported (the hook sees them) or required (the CommonJS cache).
    const { createRequire } = await import('node:module');
    const files = [...loaded.map(({ url }) => url), ...Object.keys(createRequire(import.meta.url).cache)];
    process.stdout.write(JSON.stringify({
      core: loaded.filter(({ url, format }) => format === 'module' && /packages\\/core\\/dist\\//.test(url)).length,
      node: loaded.filter(({ url, format }) => format === 'module' && /packages\\/node\\/dist\\//.test(url)).length,
      rxjs: files.filter((file) => file.includes('/rxjs/')).length,
      index: files.filter((file) => /rxjs\\/dist\\/cjs\\/index\\.js$/.test(file)).length,
    }));
  `;
  const loaded = (await runModule(program, true)) as {
    core: number;
    node: number;
    rxjs: number;
    index: number;
  };
  expect(loaded.node).toBeGreaterThan(0); // the hook sees the build's modules at all
  expect(loaded.rxjs).toBeGreaterThan(0);
  expect(loaded.index).toBe(0);
  expect(loaded.core).toBeLessThanOrEqual(8);
}, 60_000);

// Node resolves rxjs to its CommonJS build, and an ES import of a CommonJS file goes through
// Node's ES-to-CommonJS path: its export-name lexer, started on the first such import and run
// over each file, cost a resume server 20-30 ms of CPU at start (the core's ES build imported
// five of rxjs's modules). The core's ES build takes them through `#rxjs-internal`, which in
// Node `require`s them (scripts/merge-esm-chunks.mjs): the same objects, so an application's
// `instanceof` and operators hold.
test("from the build, an ES server (import, create, subscribe, listen) loads no CommonJS file through Node's ES loader, with rxjs's own objects", async () => {
  const program = `
    ${WATCH_LOADS}
    const { createResumeServer } = await import('@lifeline/node/server');
    const server = createResumeServer();
    let sessions = 0;
    server.sessions$.subscribe(() => sessions++);
    await server.listen({ host: '127.0.0.1', port: 0 });
    await server.close();
    ${LOADED}
    // Now the application's own ES import of rxjs (through the same CommonJS build).
    const rxjs = await import('rxjs');
    const { createRequire } = await import('node:module');
    const cache = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      core: loaded.filter(({ url, format }) => format === 'module' && /packages\\/core\\/dist\\//.test(url)).length,
      commonjs: loaded.filter(({ format }) => format === 'commonjs').map(({ url }) => url.replace(/^.*node_modules\\//, '')),
      rxjsRequired: cache.filter((file) => /rxjs[\\\\/]dist[\\\\/]cjs[\\\\/]internal[\\\\/]Subject\\.js$/.test(file)).length,
      observable: server.sessions$ instanceof rxjs.Observable,
      operators: server.sessions$.pipe(rxjs.map((session) => session)) instanceof rxjs.Observable,
      sessions,
    }));
  `;
  const loaded = (await runModule(program, true)) as {
    core: number;
    commonjs: string[];
    rxjsRequired: number;
    observable: boolean;
    operators: boolean;
    sessions: number;
  };
  expect(loaded.core).toBeGreaterThan(0); // the hook sees the build's modules at all
  expect(loaded.rxjsRequired).toBe(1); // rxjs's Subject was loaded, by require
  expect(loaded.commonjs).toEqual([]);
  expect(loaded.observable).toBe(true);
  expect(loaded.operators).toBe(true);
  expect(loaded.sessions).toBe(0);
}, 60_000);

// A CommonJS application takes the packages' CommonJS builds, which `require` rxjs as they did:
// the server's observables are the application's rxjs's.
test('from the build, a CommonJS server (require, create, listen) works with the rxjs it requires', async () => {
  const program = `
    const { createResumeServer } = require('@lifeline/node/server');
    const rxjs = require('rxjs');
    const server = createResumeServer();
    server.sessions$.subscribe(() => {});
    server.listen({ host: '127.0.0.1', port: 0 }).then(async ({ port }) => {
      await server.close();
      process.stdout.write(JSON.stringify({
        port: port > 0,
        observable: server.sessions$ instanceof rxjs.Observable,
        esm: Object.keys(require.cache).filter((file) => /core[\\\\/]dist[\\\\/].*\\.js$/.test(file)).length,
      }));
    });
  `;
  const loaded = (await runModule(program, true, 'commonjs')) as {
    port: boolean;
    observable: boolean;
    esm: number;
  };
  expect(loaded).toEqual({ port: true, observable: true, esm: 0 });
}, 60_000);

// An ES import of a Node built-in builds its namespace, reading every export: `node:crypto`'s
// `webcrypto` getter then loads Web Crypto (~0.8 ms of CPU at a server's start, beside ~6 ms for
// `node:crypto` itself, which `ws` loads anyway), for the Redis store's script digests that a
// server on another store never needs. The store `require`s `node:crypto` when it first sends a
// script; sessions load Web Crypto with their first id (`globalThis.crypto`), after the server listens.
test('from the build, importing @lifeline/node/server does not load Web Crypto', async () => {
  const program = `
    const before = process.moduleLoadList.includes('NativeModule internal/crypto/webcrypto');
    await import('@lifeline/node/server');
    process.stdout.write(JSON.stringify({
      before,
      webcrypto: process.moduleLoadList.includes('NativeModule internal/crypto/webcrypto'),
    }));
  `;
  const loaded = (await runModule(program, true)) as { before: boolean; webcrypto: boolean };
  expect(loaded.before).toBe(false); // the process starts without it, so the check can see it load
  expect(loaded.webcrypto).toBe(false);
}, 60_000);

test.skipIf(!betterSqliteLoads)(
  'a SQLite store on better-sqlite3 loads its addon by path: no `bindings` search (it reads the call stack, then tries a dozen paths)',
  async () => {
    // Node 20 has no node:sqlite; on the runtimes that do, it is hidden so that the fallback driver loads.
    const program = `
    const getBuiltinModule = process.getBuiltinModule;
    process.getBuiltinModule = (id) => (id === 'node:sqlite' || id === 'sqlite' ? undefined : getBuiltinModule?.call(process, id));
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-import-graph-'));
    const { SqliteSessionStore } = await import('@lifeline/node/server');
    const store = new SqliteSessionStore({ path: join(dir, 'sessions.db') });
    await store.ready();
    await store.close();
    await rm(dir, { recursive: true, force: true });
    const { createRequire } = await import('node:module');
    const cache = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      driver: cache.filter((file) => /better-sqlite3[\\\\/]lib[\\\\/]index\\.js$/.test(file)).length,
      addon: cache.filter((file) => file.endsWith('better_sqlite3.node')).length,
      bindings: cache.filter((file) => /[\\\\/]bindings[\\\\/]bindings\\.js$/.test(file)).length,
    }));
  `;
    const loaded = (await runModule(program)) as { driver: number; addon: number; bindings: number };
    expect(loaded.driver).toBe(1); // better-sqlite3 served the store, from the CommonJS cache
    expect(loaded.addon).toBe(1);
    expect(loaded.bindings).toBe(0);
  },
  60_000,
);
