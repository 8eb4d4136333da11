#!/usr/bin/env node
// After `changeset version` bumps the package.json versions, copies each version into the
// package's jsr.json, so the npm and JSR releases of a package carry the same number.
// `--check` only reports a difference (exit 1), for tests.
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
  if (jsr.name !== manifest.name)
    throw new Error(`${jsrPath}: name ${jsr.name}, package.json says ${manifest.name}`);
  if (jsr.version === manifest.version) continue;
  differ++;
  console.log(`${jsr.name}: jsr.json ${jsr.version} -> ${manifest.version}`);
  if (!check) writeFileSync(jsrPath, `${JSON.stringify({ ...jsr, version: manifest.version }, null, 2)}\n`);
}
if (check && differ > 0) process.exit(1);
