// A resume server on a SQLite store in a process where no SQLite driver can be found: the runtime
// reports no node:sqlite (as Node 20 does; hidden on the runtimes that have it), and a resolve hook
// and a CommonJS resolve patch hide better-sqlite3 as if it were not installed (the errors a user
// without it gets from import() and from require(); the store loads it with require). Prints
// {"listening":URL} or {"failed":{name,code,operation,message}}.
import Module, { register } from 'node:module';

const getBuiltinModule = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
(process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule = (id: string) =>
  id === 'node:sqlite' || id === 'sqlite' ? undefined : getBuiltinModule?.call(process, id);

register(
  `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'better-sqlite3') {
    const error = new Error("Cannot find package 'better-sqlite3'");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`)}`,
);

type ResolveFilename = (request: string, ...rest: unknown[]) => string;
const modules = Module as unknown as { _resolveFilename: ResolveFilename };
const resolveFilename = modules._resolveFilename;
modules._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  if (request === 'better-sqlite3') {
    const error = new Error("Cannot find module 'better-sqlite3'") as Error & { code: string };
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolveFilename.call(this, request, ...rest);
};

const { createResumeServer, SqliteSessionStore } = await import('@lifeline/node/server');
const server = createResumeServer({ store: new SqliteSessionStore({ path: process.argv[2]! }) });
try {
  const { url } = await server.listen();
  process.stdout.write(`${JSON.stringify({ listening: url })}\n`);
} catch (error) {
  const { name, code, operation, message } = error as Record<string, unknown>;
  process.stdout.write(`${JSON.stringify({ failed: { name, code, operation, message } })}\n`);
}
await server.close();
