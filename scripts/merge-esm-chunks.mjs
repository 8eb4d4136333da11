// Run after tsup on @lifeline/core: fewer ES module files on a server's import path.
//
// esbuild's code splitting makes a chunk per set of entry points that reach a piece of code, so
// the core's nine entries make twenty chunks, most of them small, and importing
// `@lifeline/node/server` loaded thirteen of the core's files. Node 20 spends about 1.5 ms of CPU
// per ES module at start (resolve, read, compile, link), most of the resume server's start beyond
// a plain `ws` server's (docs/benchmarks.md, "Server start"). This re-chunks the ES build with
// Rollup: every entry file stays, with the same exports, and every module is still in exactly
// one file (one copy of each class across sub-paths, so `instanceof` and the engine's state hold
// as before), but a chunk below MIN_CHUNK_BYTES is merged into another where Rollup finds that
// this runs no code an importer would not have run (the core is free of side effects). An
// importer may load a little more code it does not use; a bundler drops it (`sideEffects: false`),
// which the bundle-size gate checks. The CommonJS build is left as tsup made it.
//
//   node ../../scripts/merge-esm-chunks.mjs dist
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist');
// Small enough that a client entry does not load a large chunk it does not need.
const MIN_CHUNK_BYTES = 20_000;
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

const output = await bundle.generate({
  format: 'es',
  dir: dist,
  sourcemap: true,
  entryFileNames: '[name].js',
  chunkFileNames: 'chunk-[hash].js',
  experimentalMinChunkSize: MIN_CHUNK_BYTES,
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
