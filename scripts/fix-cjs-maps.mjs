// Run after tsup: its CommonJS code splitting (one copy of each class across sub-paths) rewrites
// each chunk in a second pass whose source map names the chunk itself by its absolute build path,
// which does not exist where the package is installed. Points that source at the chunk beside the
// map instead (same file, relative), so every source map resolves inside the tarball.
//
//   node ../../scripts/fix-cjs-maps.mjs dist
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist');
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
  );
let fixed = 0;
for (const file of walk(dist).filter((path) => path.endsWith('.cjs.map'))) {
  const map = JSON.parse(readFileSync(file, 'utf8'));
  let changed = false;
  map.sources = map.sources.map((source) => {
    if (!isAbsolute(source) || !source.startsWith(dist)) return source;
    changed = true;
    return `./${basename(source)}`;
  });
  if (changed) {
    writeFileSync(file, JSON.stringify(map));
    fixed++;
  }
}
console.log(`fix-cjs-maps: ${fixed} source maps made relative in ${dist}`);
