import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SessionStoreError } from '@lifeline/core/internal/server';

// Resolved from this file, as an import would be: the better-sqlite3 next to @lifeline/node.
// (`import.meta.url` is shimmed by tsup in the CommonJS build.)
const requireFromHere = createRequire(import.meta.url);

/** A prepared statement: what `node:sqlite`'s `StatementSync` and better-sqlite3's `Statement` share. */
export interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** A synchronous SQLite connection: what `node:sqlite`'s `DatabaseSync` and better-sqlite3's `Database` share. */
export interface SqliteDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): SqliteStatement;
  close(): unknown;
}

type DatabaseConstructor = new (path: string) => SqliteDatabase;

/**
 * Opens a SQLite database file with the driver the runtime has: `node:sqlite` where the runtime
 * ships it (Node 22.13+, found with `process.getBuiltinModule`), else `better-sqlite3` (an
 * optional peer dependency, loaded only here, so users of other stores never need it).
 *
 * @throws SessionStoreError (`operation: 'open'`) when neither driver is available: no
 * `node:sqlite` and better-sqlite3 not installed, or its native addon built for another Node ABI.
 *
 * @example
 * ```ts
 * const store = new SqliteSessionStore({ database: await openSqliteDatabase('/var/lib/app/sessions.db') });
 * ```
 * @see SqliteSessionStore
 */
export async function openSqliteDatabase(path: string): Promise<SqliteDatabase> {
  const builtin = builtinSqlite();
  if (builtin) return new builtin(path);
  // better-sqlite3 is CommonJS: `require` loads it in one step, where `import()` would also parse
  // it for its export names and wrap it in an ES module (about 5 ms of a server's start, `pnpm
  // bench server`). Its `default` export is this same object, so nothing differs for a caller.
  let Database: BetterSqliteConstructor;
  try {
    Database = requireFromHere('better-sqlite3') as BetterSqliteConstructor;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    // Only the package itself missing; a missing file inside it is a broken install, rethrown.
    if (code !== 'MODULE_NOT_FOUND' || !String((error as Error).message).includes("'better-sqlite3'"))
      throw error;
    throw new SessionStoreError(
      'open',
      undefined,
      'this runtime has no node:sqlite and better-sqlite3 is not installed (npm install better-sqlite3@12)',
      { cause: error },
    );
  }
  try {
    return new Database(path, betterSqliteBinding());
  } catch (error) {
    // better-sqlite3 loads its native addon on first use: one built for another Node ABI (a
    // node_modules shared between Node versions) fails here, and deserves its fix, not dlopen's text.
    if ((error as { code?: unknown } | null)?.code !== 'ERR_DLOPEN_FAILED') throw error;
    throw new SessionStoreError(
      'open',
      undefined,
      `this runtime has no node:sqlite and better-sqlite3's native addon does not load on Node ${process.versions.node} (built for another Node version? run npm rebuild better-sqlite3)`,
      { cause: error },
    );
  }
}

type BetterSqliteConstructor = new (path: string, options?: { nativeBinding?: string }) => SqliteDatabase;

/**
 * better-sqlite3's own addon, where `npm install` builds or downloads it (`build/Release`), as its
 * `nativeBinding` option: left to itself, better-sqlite3 asks the `bindings` package, which reads
 * the call stack and tries a dozen paths one `require` at a time (about 4 ms of a server's start).
 * An install that keeps the addon elsewhere gets no option, and better-sqlite3's own search.
 */
function betterSqliteBinding(): { nativeBinding?: string } {
  try {
    const addon = join(
      dirname(requireFromHere.resolve('better-sqlite3/package.json')),
      'build',
      'Release',
      'better_sqlite3.node',
    );
    return existsSync(addon) ? { nativeBinding: addon } : {};
  } catch {
    // A package without `./package.json` in its exports, say: better-sqlite3 searches itself.
    return {};
  }
}

function builtinSqlite(): DatabaseConstructor | undefined {
  const getBuiltinModule = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  try {
    const module = withoutSqliteWarning(() => getBuiltinModule?.call(process, 'node:sqlite')) as
      | { DatabaseSync?: DatabaseConstructor }
      | undefined;
    return module?.DatabaseSync;
  } catch {
    // Versions that gate node:sqlite behind a flag throw here: fall back to better-sqlite3.
    return undefined;
  }
}

/**
 * Runs `load` with Node 22's "SQLite is an experimental feature" ExperimentalWarning dropped: it
 * is emitted synchronously when `node:sqlite` first loads, and would otherwise print at every
 * start of a server using the store. Only that warning, only during our own load: every other
 * warning passes, and `process.emitWarning` is restored before returning.
 */
function withoutSqliteWarning<T>(load: () => T): T {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const option = rest[0];
    const type = typeof option === 'string' ? option : (option as { type?: string } | undefined)?.type;
    const text = typeof warning === 'string' ? warning : warning.message;
    if (type === 'ExperimentalWarning' && text.startsWith('SQLite is an experimental feature')) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return load();
  } finally {
    process.emitWarning = emitWarning;
  }
}
