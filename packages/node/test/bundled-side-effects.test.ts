// The Node and Deno packages turn diagnostics on when loaded (`enableDiagnostics()` at the top of
// an entry module). A package.json saying `"sideEffects": false` lets a bundler drop that call when
// the app uses only names the entry re-exports from the core: an esbuild bundle of
// `import { attach } from '@lifeline/node'` then threw "call enableDiagnostics()" at the first
// `logger` option. Every module that runs code at load must be listed in `sideEffects`.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { expect, onTestFinished, test } from 'vitest';

const run = promisify(execFile);
const packages = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

test.each(['node', 'deno'])(
  '@lifeline/%s lists every entry that runs code at load in `sideEffects`',
  (pkg) => {
    const manifest = JSON.parse(readFileSync(join(packages, pkg, 'package.json'), 'utf8')) as {
      sideEffects: unknown;
    };
    const loaders = readdirSync(join(packages, pkg, 'src'))
      .filter((file) => file.endsWith('.ts'))
      .filter((file) =>
        /^enableDiagnostics\(\);$/m.test(readFileSync(join(packages, pkg, 'src', file), 'utf8')),
      )
      .map((file) => file.replace(/\.ts$/, ''));
    expect(loaders.length).toBeGreaterThan(0);
    const expected = loaders.flatMap((name) => [
      `./src/${name}.ts`,
      `./dist/${name}.js`,
      `./dist/${name}.cjs`,
    ]);
    expect(Array.isArray(manifest.sideEffects), 'sideEffects must be a list of files, not false').toBe(true);
    expect(manifest.sideEffects).toEqual(expect.arrayContaining(expected));
  },
);

test('an esbuild bundle of `attach` from @lifeline/node keeps diagnostics on: a logger option is accepted and logs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-side-effects-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const program = `import { attach } from '@lifeline/node';
const records = [];
const logger = { debug() {}, info: (message) => records.push(message), warn() {}, error() {} };
let error;
try {
  const conn = attach({ open: () => new Promise(() => {}) }, { logger });
  conn.close();
} catch (caught) {
  error = caught.code ?? String(caught);
}
console.log(JSON.stringify({ error, records: records.length }));
`;
  const result = await build({
    stdin: { contents: program, resolveDir: join(packages, 'node'), sourcefile: 'app.mjs' },
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    conditions: ['@lifeline/source'],
    external: ['ws', 'undici', 'better-sqlite3', 'ioredis'],
    logLevel: 'silent',
  });
  writeFileSync(join(dir, 'app.mjs'), result.outputFiles[0]!.text);
  const { stdout } = await run(process.execPath, [join(dir, 'app.mjs')], {
    cwd: dir,
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  const outcome = JSON.parse(stdout.trim().split('\n').at(-1)!) as { error?: string; records: number };
  expect(outcome.error).toBeUndefined();
  expect(outcome.records).toBeGreaterThan(0);
});
