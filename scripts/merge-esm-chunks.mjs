// Run after tsup on @lifeline/core: fewer ES module files on a server's import path.
//
// esbuild's code splitting makes a chunk per set of entry points that reach a piece of code, so
// the core's nine entries make twenty chunks, most of them small, and importing
// `@lifeline/node/server` loaded thirteen of the core's files. Node 20 spends about 1.5 ms of CPU
// per ES module at start (resolve, read, compile, link): most of the resume server's start beyond
// a plain `ws` server's (docs/benchmarks.md, "Server start"). This re-chunks the ES build with
// Rollup: every entry file stays, with the same exports, and every module is still in exactly
// one file (one copy of each class across sub-paths, so `instanceof` and the engine's state hold
// as before). The chunks a server entry reaches become two: those the WebSocket client entry
// reaches too (the engine's errors, options, clock, link: that client loaded each of them
// already) and the rest (the server's own code, the resume endpoint, diagnostics, TCP framing).
// Other chunks stay as esbuild made them. A client entry that reaches one of the two may load
// code it does not use: Node parses it lazily, a bundler drops it (`sideEffects: false`), which
// the bundle-size gate checks (a few bytes either way, from the order of the code). The CommonJS
// build is left as tsup made it.
//
//   node ../../scripts/merge-esm-chunks.mjs dist <server entries, comma-separated> <client entry>
//   node ../../scripts/merge-esm-chunks.mjs dist resume/server/index,internal/server websocket/index
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';

const [distArg, serverArg, client] = process.argv.slice(2);
if (!distArg || !serverArg || !client)
  throw new Error('usage: merge-esm-chunks.mjs <dist> <server entries> <client entry>');
const dist = resolve(distArg);
const servers = serverArg.split(',');
// Rollup from the package being built (its devDependency), not from this script's folder.
const { rollup } = createRequire(join(process.cwd(), 'package.json'))('rollup');

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
  );
const files = walk(dist).filter((path) => path.endsWith('.js'));
const isChunk = (path) => /(^|\/)chunk-[^/]*\.js$/.test(path);
const entries = Object.fromEntries(
  files.filter((path) => !isChunk(path)).map((path) => [relative(dist, path).slice(0, -'.js'.length), path]),
);

for (const name of [...servers, client])
  if (!entries[name]) throw new Error(`merge-esm-chunks: no entry ${name}.js in ${dist}`);

const bundle = await rollup({
  input: entries,
  logLevel: 'warn',
  // Only the build's own files are re-chunked: rxjs and the like stay imports.
  external: (id, importer) => importer !== undefined && !id.startsWith('.') && !id.startsWith('/'),
  // esbuild's source maps, so that the new ones still point at src/.
  plugins: [
    {
      name: 'esbuild-output',
      load(id) {
        return { code: readFileSync(id, 'utf8'), map: readFileSync(`${id}.map`, 'utf8') };
      },
    },
  ],
  onwarn(warning, warn) {
    // esbuild's chunks import each other both ways; Rollup orders them as Node would.
    if (warning.code !== 'CIRCULAR_DEPENDENCY') warn(warning);
  },
});

/** The entries that reach each of esbuild's chunks, by static imports (filled on the first call). */
const reachedBy = new Map();
const output = await bundle.generate({
  format: 'es',
  dir: dist,
  sourcemap: true,
  entryFileNames: '[name].js',
  chunkFileNames: 'chunk-[hash].js',
  manualChunks(id, { getModuleInfo }) {
    if (!isChunk(id)) return undefined;
    if (reachedBy.size === 0) {
      for (const [name, path] of Object.entries(entries)) {
        const seen = new Set();
        const queue = [path];
        while (queue.length > 0) {
          const next = queue.pop();
          if (seen.has(next)) continue;
          seen.add(next);
          if (isChunk(next)) reachedBy.set(next, [...(reachedBy.get(next) ?? []), name]);
          queue.push(...getModuleInfo(next).importedIds.filter((imported) => imported.startsWith(dist)));
        }
      }
    }
    const reached = reachedBy.get(id) ?? [];
    if (!servers.some((name) => reached.includes(name))) return undefined;
    return reached.includes(client) ? 'engine' : 'server';
  },
  // Each file imports what it uses, not what its imports import.
  hoistTransitiveImports: false,
});
await bundle.close();

for (const path of files) {
  rmSync(path);
  rmSync(`${path}.map`, { force: true });
}
let chunks = 0;
for (const item of output.output) {
  if (item.type !== 'chunk') continue;
  if (!item.isEntry) chunks++;
  const path = join(dist, item.fileName);
  writeFileSync(path, item.code);
  writeFileSync(`${path}.map`, item.map.toString());
}
console.log(
  `merge-esm-chunks: ${files.length - Object.keys(entries).length} chunks made ${chunks} in ${dist}`,
);
