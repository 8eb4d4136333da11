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
// The ES build's imports of rxjs's internal modules (the classes and timer seams the engine and
// the server take from their modules, to keep clear of rxjs's index) become one import of
// `#rxjs-internal`, the package's own import map (package.json "imports"): in Node (the
// `node-addons` condition, which Node sets and bundlers do not) `dist/rxjs-internal.node.js`
// `require`s them; anywhere else `dist/rxjs-internal.js` re-exports them, as the build imported
// them before. Node resolves rxjs to its CommonJS build for `import` and `require` alike, so the
// objects are the same; but an ES import of a CommonJS file goes through Node's ES-to-CommonJS
// path, whose export-name lexer (started on the first such import, then run over each file) cost
// a resume server about 20-30 ms of CPU at start (docs/benchmarks.md, "Server start"). Bundlers
// take the re-exports, so a bundle carries rxjs as before.
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
// (Not this script's own output, should it run again over a build.)
const files = walk(dist).filter(
  (path) => path.endsWith('.js') && !/(^|\/)rxjs-internal(\.node)?\.js$/.test(path),
);
const isChunk = (path) => /(^|\/)chunk-[^/]*\.js$/.test(path);
const entries = Object.fromEntries(
  files.filter((path) => !isChunk(path)).map((path) => [relative(dist, path).slice(0, -'.js'.length), path]),
);

for (const name of [...servers, client])
  if (!entries[name]) throw new Error(`merge-esm-chunks: no entry ${name}.js in ${dist}`);

// Every name the build imports from one of rxjs's internal modules, and from which.
const rxjsInternal = new Map();
for (const path of files) {
  const code = readFileSync(path, 'utf8');
  for (const [, names, from] of code.matchAll(
    /^import \{([^}]*)\} from ["'](rxjs\/internal\/[^"']+)["'];$/gm,
  )) {
    for (const name of names
      .split(',')
      .map((spec) => spec.trim().split(/\s+as\s+/)[0])
      .filter(Boolean)) {
      const seen = rxjsInternal.get(name);
      if (seen !== undefined && seen !== from)
        throw new Error(`merge-esm-chunks: ${name} imported from both ${seen} and ${from}`);
      rxjsInternal.set(name, from);
    }
  }
}
const RXJS_INTERNAL = '#rxjs-internal';

const bundle = await rollup({
  input: entries,
  logLevel: 'warn',
  // Only the build's own files are re-chunked: rxjs and the like stay imports.
  // (rxjs's internal modules: the plugin below makes them one external.)
  external: (id, importer) =>
    importer !== undefined && !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('rxjs/internal/'),
  // esbuild's source maps, so that the new ones still point at src/.
  plugins: [
    {
      // rxjs's internal modules, one external import (see the top of this file).
      name: 'rxjs-internal',
      resolveId(source) {
        return source.startsWith('rxjs/internal/') ? { id: RXJS_INTERNAL, external: true } : null;
      },
    },
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
  for (const name of item.importedBindings[RXJS_INTERNAL] ?? [])
    if (!rxjsInternal.has(name))
      throw new Error(`merge-esm-chunks: ${item.fileName} imports ${name} from no rxjs module`);
  const path = join(dist, item.fileName);
  writeFileSync(path, item.code);
  writeFileSync(`${path}.map`, item.map.toString());
}
const byName = [...rxjsInternal].sort(([a], [b]) => (a < b ? -1 : 1));
const header =
  '// Made by scripts/merge-esm-chunks.mjs: the rxjs internals the ES build imports, as `#rxjs-internal`.\n';
// Each with a source map of no sources, as every built file of the package has one (the packed
// tarball's test checks them): these two come from no source file of ours.
const writeMapped = (file, code) => {
  writeFileSync(join(dist, file), `${code}//# sourceMappingURL=${file}.map\n`);
  writeFileSync(
    join(dist, `${file}.map`),
    JSON.stringify({ version: 3, file, sources: [], names: [], mappings: '' }),
  );
};
writeMapped(
  'rxjs-internal.js',
  `${header}${byName.map(([name, from]) => `export { ${name} } from '${from}';\n`).join('')}`,
);
writeMapped(
  'rxjs-internal.node.js',
  `${header}// In Node, by \`require\`: the same objects as an ES import (Node resolves rxjs to its CommonJS build for\n` +
    `// both), without Node's ES-to-CommonJS path and its export-name lexer.\n` +
    `import { createRequire } from 'node:module';\n\nconst require = createRequire(import.meta.url);\n` +
    byName.map(([name, from]) => `export const { ${name} } = require('${from}');\n`).join(''),
);
console.log(
  `merge-esm-chunks: ${files.length - Object.keys(entries).length} chunks made ${chunks} in ${dist}`,
);
