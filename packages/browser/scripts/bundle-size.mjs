// Bundle-size report, run by `pnpm build`: bundles what a browser app that uses HAWebSocket with
// attach and backoff ships (this package, the core and the rxjs they pull), minified for the
// browser, gzips it with zlib and fails the build above the budget.
//
//   node scripts/bundle-size.mjs [--budget=BYTES] [--aim=BYTES] [--json=FILE]
//
// --budget fails the run when the gzipped bundle is larger (default: the aim). --aim is the size
// the project aims for (10 KiB): a bundle over it is reported, and fails only if over --budget too.
//
// Bundles the TypeScript sources (the `@lifeline/source` condition): tsup builds dist from the same
// sources with the same esbuild, so the figure is the published code's, with no build order to keep.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const AIM_BYTES = 10 * 1024;
const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value = 'true'] = arg.replace(/^--/, '').split('=');
    return [key, value];
  }),
);
const aim = Number(args.aim ?? AIM_BYTES);
const budget = Number(args.budget ?? aim);
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

// Two resolutions of rxjs: bundlers' default (its `default` export: ES5 output) and the
// `es2015` condition a bundler can opt into (smaller: native classes, no tslib helpers).
const variants = [
  { name: 'default conditions (rxjs esm5)', conditions: ['@lifeline/source'], gate: true },
  { name: 'es2015 condition (rxjs esm)', conditions: ['@lifeline/source', 'es2015'], gate: false },
];

const entry = `export { HAWebSocket, attach } from './src/index.ts';`;

async function measure(conditions) {
  const result = await build({
    stdin: { contents: entry, resolveDir: packageRoot, loader: 'ts', sourcefile: 'bundle-size-entry.ts' },
    bundle: true,
    write: false,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions,
    metafile: true,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].contents;
  const gzipped = gzipSync(code, { level: 9 }).length;
  const output = Object.values(result.metafile.outputs)[0];
  const byPackage = new Map();
  for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
    const key = packageOf(path);
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  const topInputs = Object.entries(output.inputs)
    .map(([path, { bytesInOutput }]) => ({ path: shorten(path), bytes: bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 15);
  return { minified: code.length, gzipped, byPackage: Object.fromEntries(byPackage), topInputs };
}

function packageOf(path) {
  if (path.includes('node_modules/rxjs/')) return 'rxjs';
  if (path.includes('node_modules/tslib/')) return 'tslib';
  const match = /(?:packages\/|^\.\.\/)([^/]+)\/src\//.exec(path);
  if (match) return `@lifeline/${match[1]}`;
  return path.startsWith('src/') ? '@lifeline/browser' : path;
}

function shorten(path) {
  return path.replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+/, '');
}

const kb = (bytes) => `${(bytes / 1024).toFixed(2)} KiB`;
const results = [];
for (const variant of variants) results.push({ ...variant, ...(await measure(variant.conditions)) });

console.log('bundle size: HAWebSocket + attach with its backoff policy (+ rxjs), minified, gzip -9');
console.log('| resolution | minified | gzipped | aim | budget |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of results) {
  const limits = r.gate ? `${kb(aim)} | ${kb(budget)}` : '(report only) | (report only)';
  console.log(`| ${r.name} | ${kb(r.minified)} | ${kb(r.gzipped)} | ${limits} |`);
}
const gated = results.find((r) => r.gate);
console.log('\nminified bytes by package (gated resolution):');
for (const [name, bytes] of Object.entries(gated.byPackage).sort((a, b) => b[1] - a[1])) {
  console.log(`  ${name.padEnd(20)} ${String(bytes).padStart(7)}`);
}
console.log('largest inputs:');
for (const input of gated.topInputs) console.log(`  ${String(input.bytes).padStart(7)}  ${input.path}`);
if (args.json) writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
if (gated.gzipped > budget) {
  console.error(`\nbundle size ${kb(gated.gzipped)} gzipped is over the budget of ${kb(budget)}`);
  process.exit(1);
}
if (gated.gzipped > aim) {
  console.log(
    `\nbundle size ${kb(gated.gzipped)} gzipped is over the ${kb(aim)} aim by ${kb(gated.gzipped - aim)}`,
  );
}
