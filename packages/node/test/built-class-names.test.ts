// Issue 16 review: the CommonJS build named classes `_class`, `_class2`... (tsup's sucrase pass
// lowers class fields into `X = (_class = class {...}, _class)`), and the ES build named a class
// that refers to itself in its body `_LifelineError` / `_FaultProxy` (esbuild's
// `var X = class _X`). Stack traces and util.inspect showed those. Every class an entry point
// exports must carry its export name, in both formats, in the built dist (`pnpm build` first).
// Checked in a plain Node child: the test process resolves @lifeline/* to the TypeScript sources.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['core', 'node', 'deno', 'browser', 'fault-proxy'] as const;

// Loads every export of the package in the working directory, as `import` and as `require`, and
// prints the classes (functions whose source is `class ...`) and those named otherwise.
const PROGRAM = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const require = createRequire(join(process.cwd(), 'package.json'));
const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
const misnamed = [];
let classes = 0;
for (const [key, value] of Object.entries(manifest.exports)) {
  if (key === './package.json' || typeof value === 'string') continue;
  for (const [format, target] of [['esm', value.import?.default], ['cjs', value.require?.default]]) {
    if (target === undefined) continue;
    const file = join(process.cwd(), target);
    const loaded = format === 'cjs' ? require(file) : await import(pathToFileURL(file).href);
    for (const [name, exported] of Object.entries(loaded)) {
      if (typeof exported !== 'function' || !/^class[\\s{]/.test(Function.prototype.toString.call(exported))) continue;
      classes++;
      if (exported.name !== name) misnamed.push(key + ' (' + format + ') ' + name + ': named ' + exported.name);
    }
  }
}
console.log(JSON.stringify({ classes, misnamed }));
`;

test.each(PACKAGES)(
  '@lifeline/%s: every exported class is named as exported (ESM and CJS dist)',
  async (pkg) => {
    const dir = join(repo, 'packages', pkg);
    if (!existsSync(join(dir, 'dist')))
      throw new Error(`packages/${pkg}/dist is missing: run \`pnpm build\` first`);
    const { NODE_OPTIONS: _options, NODE_PATH: _path, ...env } = process.env;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', PROGRAM], {
      cwd: dir,
      env,
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as {
      classes: number;
      misnamed: string[];
    };
    expect(result.misnamed).toEqual([]);
    expect(result.classes).toBeGreaterThan(0);
  },
  90_000,
);
