// The public surface of every package, entry point by entry point, as a snapshot: adding, removing
// or changing the kind of an exported name fails this test until the snapshot is updated
// (`pnpm exec vitest run --project node packages/node/test/exports.test.ts -u`), so the change shows in review.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const packages = ['core', 'node', 'browser', 'deno', 'fault-proxy'];

interface Entry {
  readonly name: string;
  readonly file: string;
}

function entriesOf(dir: string): Entry[] {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
  const entries: Entry[] = [];
  for (const [subpath, target] of Object.entries<Record<string, unknown> | string>(manifest.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    const source = target['@lifeline/source'];
    if (typeof source !== 'string') throw new Error(`${manifest.name} ${subpath} has no @lifeline/source`);
    entries.push({
      name: subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`,
      file: join(root, 'packages', dir, source),
    });
  }
  return entries;
}

function kindOf(symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  const flags = target.flags;
  if (flags & ts.SymbolFlags.Class) return 'class';
  if (flags & ts.SymbolFlags.Enum) return 'enum';
  if (flags & ts.SymbolFlags.Function) return 'function';
  if (flags & ts.SymbolFlags.Variable) return 'const';
  if (flags & ts.SymbolFlags.Interface) return 'interface';
  if (flags & ts.SymbolFlags.TypeAlias) return 'type';
  return 'other';
}

test('the exported names of every package entry point match the snapshot', async () => {
  const entries = packages.flatMap(entriesOf);
  const config = ts.parseJsonConfigFileContent(
    JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')),
    ts.sys,
    root,
  );
  const program = ts.createProgram(
    entries.map((entry) => entry.file),
    { ...config.options, types: ['node'], noEmit: true },
  );
  const checker = program.getTypeChecker();
  const lines: string[] = [];
  for (const entry of entries) {
    const source = program.getSourceFile(entry.file);
    const module = source && checker.getSymbolAtLocation(source);
    if (!module) throw new Error(`cannot read the exports of ${entry.name}`);
    const names = checker
      .getExportsOfModule(module)
      .map((symbol) => `${symbol.name}: ${kindOf(symbol, checker)}`)
      .sort();
    const values = names.filter((line) => !/: (interface|type)$/.test(line)).length;
    lines.push(`## ${entry.name}: ${names.length} names, ${values} values`, ...names, '');
  }
  await expect(lines.join('\n')).toMatchFileSnapshot('__snapshots__/exports.txt');
}, 60_000);
