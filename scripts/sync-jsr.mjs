#!/usr/bin/env node
// Keeps each package's jsr.json in step with its package.json: the same version (after
// `changeset version` bumps package.json) and the same sub-paths (the `exports` of jsr.json map
// each sub-path to the TypeScript source that package.json's `@lifeline/source` condition names),
// so a new sub-path or a release reaches JSR without editing jsr.json by hand.
// `--check` only reports a difference (exit 1); the tarball test runs it so.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
let differ = 0;
for (const dir of readdirSync(join(repo, 'packages'))) {
  const jsrPath = join(repo, 'packages', dir, 'jsr.json');
  if (!existsSync(jsrPath)) continue;
  const manifest = JSON.parse(readFileSync(join(repo, 'packages', dir, 'package.json'), 'utf8'));
  const jsr = JSON.parse(readFileSync(jsrPath, 'utf8'));
  const exports = {};
  for (const [key, target] of Object.entries(manifest.exports ?? {})) {
    const source = typeof target === 'object' && target !== null ? target['@lifeline/source'] : undefined;
    if (typeof source === 'string') exports[key] = source;
  }
  const next = { ...jsr, name: manifest.name, version: manifest.version, exports };
  if (JSON.stringify(next) === JSON.stringify(jsr)) continue;
  differ++;
  console.log(`${jsrPath}: out of step with package.json (name, version or exports)`);
  if (!check) writeFileSync(jsrPath, `${JSON.stringify(next, null, 2)}\n`);
}
if (check && differ > 0) process.exit(1);
