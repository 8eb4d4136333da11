// A resume server on a SQLite store in a process whose runtime reports no node:sqlite, so the
// store falls back to the better-sqlite3 in node_modules, built for one Node ABI only: on the
// other Node majors its native addon does not load. Prints {"listening":URL} or
// {"failed":{name,code,operation,message}}.
const getBuiltinModule = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
(process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule = (id: string) =>
  id === 'node:sqlite' || id === 'sqlite' ? undefined : getBuiltinModule?.call(process, id);

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

// A module (for its top-level awaits) with nothing to export.
export {};
