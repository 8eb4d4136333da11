#!/usr/bin/env node
// Runs every benchmark file (packages/*/bench/*.bench.ts) one after another, each in its own
// process so one benchmark's heap and sockets do not skew the next. The packages are imported
// from their builds (dist), as users get them: running the TypeScript sources through tsx adds
// a name-keeping helper to every function, which inflates memory and CPU figures. Each file prints its own
// markdown table; this script prints them in order. `pnpm bench FILTER` runs only matching files.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filter = process.argv[2];
const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const dir = join(root, 'packages', pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith('.bench.ts') && (!filter || join(pkg, file).includes(filter)))
      files.push(join(dir, file));
  }
}
let failed = 0;
for (const file of files) {
  console.log(`\n## ${file.slice(root.length + 1)}\n`);
  const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', file], {
    stdio: 'inherit',
    cwd: root,
  });
  if (run.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
