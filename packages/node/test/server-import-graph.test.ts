// The resume server's start-up: importing `@lifeline/node/server` must not load rxjs's index (its
// CommonJS build, which Node resolves `rxjs` to, loads every operator: about 0.5 s of a server's
// start on a loaded machine, `pnpm bench server`). The server path imports the rxjs classes it
// uses from their modules, and the core through `@lifeline/core/internal/server`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

test("importing @lifeline/node/server (and opening a store's module) does not load rxjs's index", async () => {
  const program = `
    await import('@lifeline/node/server');
    await import('@lifeline/node/stores/sqlite');
    const { createRequire } = await import('node:module');
    const cache = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      index: cache.filter((file) => /rxjs[\\\\/]dist[\\\\/]cjs[\\\\/]index\\.js$/.test(file)).length,
      rxjs: cache.filter((file) => file.includes('rxjs')).length,
    }));
  `;
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', '--input-type=module', '-e', program],
    { cwd: `${root}/packages/node`, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
  const loaded = JSON.parse(out) as { index: number; rxjs: number };
  expect(loaded.rxjs).toBeGreaterThan(0); // the check sees rxjs's modules at all
  expect(loaded.index).toBe(0);
}, 60_000);
