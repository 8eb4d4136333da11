// Installs the packed tarballs as a user would get them from the registry, into scratch projects
// outside the workspace (ESM, CommonJS, TypeScript under `node16` and `bundler` resolution, a
// bundle, Deno), and runs a small program in each that opens a real WebSocket through
// HAWebSocket to a real local echo server. Every sub-path in each package's `exports` is
// imported in ESM and CommonJS, so a new sub-path is covered without editing this file.
// Offline: the tarballs are unpacked into node_modules and their dependencies (rxjs, ws,
// undici, type packages) are linked from the workspace, so no registry is asked.
import { execFile, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PACKAGES = ['core', 'node', 'browser', 'deno', 'fault-proxy'] as const;
type Pkg = (typeof PACKAGES)[number];
const manifest = (pkg: Pkg) =>
  JSON.parse(readFileSync(join(repo, 'packages', pkg, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    exports: Record<string, unknown>;
  };
/** Every import specifier a package exports: `@lifeline/node`, `@lifeline/node/ws`... */
const specifiers = (pkg: Pkg) =>
  Object.keys(manifest(pkg).exports)
    .filter((key) => key !== './package.json')
    .map((key) => manifest(pkg).name + key.slice(1));
/** The sub-paths of @lifeline/node that need a peer which a scratch project may leave out. */
const PEER_OF: Record<string, string> = { '@lifeline/node/ws': 'ws', '@lifeline/node/fetch': 'undici' };

let work: string;
/** The unpacked tarball of each package (its `package/` folder). */
const unpacked = {} as Record<Pkg, string>;

/** A workspace dependency's real folder, found from the package that depends on it. */
function workspaceModule(name: string, from = 'packages/node'): string {
  for (const base of [join(repo, from, 'node_modules'), join(repo, 'node_modules')]) {
    const path = join(base, name);
    if (existsSync(path)) return path;
  }
  throw new Error(`${name} is not installed in the workspace`);
}

/** A scratch project: the given tarballs unpacked into node_modules, the given dependencies linked. */
function project(
  name: string,
  pkgs: readonly Pkg[],
  links: readonly string[],
  files: Record<string, string>,
): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'node_modules', '@lifeline'), { recursive: true });
  for (const pkg of pkgs) {
    // A copy, as npm makes it: a symlink would let Node resolve peers from the workspace.
    mkdirSync(join(dir, 'node_modules', '@lifeline', pkg));
    execFileSyncQuiet('cp', ['-R', `${unpacked[pkg]}/.`, join(dir, 'node_modules', '@lifeline', pkg)]);
  }
  for (const link of links) {
    const target = join(dir, 'node_modules', link);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(workspaceModule(link), target, 'dir');
  }
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

function execFileSyncQuiet(file: string, args: string[]): void {
  const result = spawnSync(file, args, { stdio: 'pipe' });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${result.stderr}`);
}

/**
 * The environment of a scratch program: this one's, less what makes Node find modules outside
 * the scratch project. pnpm's bin shims (`pnpm exec vitest`) export NODE_PATH with the workspace's
 * hoisted `node_modules/.pnpm/node_modules`, which holds ioredis and better-sqlite3: CommonJS
 * `require` searches NODE_PATH (ES `import` does not), so a CommonJS program in a project without
 * those peers found them there.
 */
function scratchEnv(): NodeJS.ProcessEnv {
  const { NODE_PATH: _path, NODE_OPTIONS: _options, ...env } = process.env;
  return { ...env, DENO_NO_UPDATE_CHECK: '1' };
}

/** Runs a program and returns the JSON object it printed last. */
async function runJson(file: string, args: string[], cwd: string): Promise<Record<string, unknown>> {
  const { stdout, stderr } = await run(file, args, {
    cwd,
    timeout: 90_000,
    killSignal: 'SIGKILL',
    env: scratchEnv(),
  }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${error.stdout}\n${error.stderr}`);
  });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    throw new Error(`no JSON result from ${args.join(' ')}:\n${stdout}\n${stderr}`);
  }
}

// The echo round trip every runtime runs: a `ws` server on port 0 echoes, HAWebSocket sends
// three messages once open and the program reports what came back. Bounded by a 30 s timer.
const echoBody = (importWs: string, importHa: string) => `${importWs}
${importHa}
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise((resolve) => wss.once('listening', resolve));
wss.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(binary ? data : data.toString())));
const socket = new HAWebSocket('ws://127.0.0.1:' + wss.address().port + '/echo');
const received = [];
const guard = setTimeout(() => { console.log(JSON.stringify({ received, error: 'timeout' })); process.exit(1); }, 30000);
await new Promise((resolve) => {
  socket.addEventListener('open', () => { for (const m of ['one', 'two', 'three']) socket.send(m); });
  socket.addEventListener('message', (event) => { received.push(String(event.data)); if (received.length === 3) resolve(); });
});
clearTimeout(guard);
socket.close();
await new Promise((resolve) => wss.close(resolve));
`;

beforeAll(async () => {
  work = join(tmpdir(), `lifeline-packed-${process.pid}-${Date.now()}`);
  mkdirSync(join(work, 'tarballs'), { recursive: true });
  for (const pkg of PACKAGES) {
    const dir = join(repo, 'packages', pkg);
    // The tarball holds dist/: build a package whose build is missing (turbo builds before `pnpm test`).
    if (!existsSync(join(dir, 'dist', 'index.js'))) await run('pnpm', ['run', 'build'], { cwd: dir });
    const { stdout } = await run('pnpm', ['pack', '--pack-destination', join(work, 'tarballs')], {
      cwd: dir,
    });
    const tarball = stdout
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.endsWith('.tgz'));
    expect(tarball, stdout).toBeDefined();
    const into = join(work, 'unpacked', pkg);
    mkdirSync(into, { recursive: true });
    await run('tar', ['-xzf', resolve(join(work, 'tarballs'), tarball!), '-C', into]);
    unpacked[pkg] = join(into, 'package');
  }
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('packed tarballs', () => {
  test('each tarball has its README, LICENSE, dist and src, and depends on published versions only', () => {
    for (const pkg of PACKAGES) {
      const files = readdirSync(unpacked[pkg]);
      expect(files, pkg).toEqual(
        expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'dist', 'src']),
      );
      expect(readFileSync(join(unpacked[pkg], 'LICENSE'), 'utf8')).toContain('The Lifeline authors');
      const packed = JSON.parse(readFileSync(join(unpacked[pkg], 'package.json'), 'utf8'));
      expect(JSON.stringify(packed.dependencies ?? {}), pkg).not.toContain('workspace:');
      for (const field of ['repository', 'homepage', 'bugs', 'keywords', 'author', 'license']) {
        expect(packed[field], `${pkg} ${field}`).toBeDefined();
      }
    }
  });

  test('each jsr.json carries its package.json name, version and sub-paths (scripts/sync-jsr.mjs)', async () => {
    await run(process.execPath, [join(repo, 'scripts', 'sync-jsr.mjs'), '--check']);
  });

  test("every source map's sources are files in the tarball", () => {
    let maps = 0;
    for (const pkg of PACKAGES) {
      const walk = (dir: string): string[] =>
        readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
          entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
        );
      const built = walk(join(unpacked[pkg], 'dist')).filter((file) => /\.(c?js)$/.test(file));
      expect(built.length, pkg).toBeGreaterThan(0);
      for (const file of built) {
        const text = readFileSync(file, 'utf8');
        const comment = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text);
        expect(comment, `${relative(work, file)} has no sourceMappingURL`).not.toBeNull();
        const mapFile = resolve(dirname(file), comment![1]!);
        expect(existsSync(mapFile), relative(work, mapFile)).toBe(true);
        const map = JSON.parse(readFileSync(mapFile, 'utf8')) as { sources: string[]; sourceRoot?: string };
        // An entry that only re-exports shared chunks (code splitting) maps no source of its own:
        // nothing in it can point outside the package.
        for (const source of map.sources) {
          const path = resolve(dirname(mapFile), map.sourceRoot ?? '', source);
          expect(
            path.startsWith(unpacked[pkg]),
            `${source} in ${relative(work, mapFile)} leaves the package`,
          ).toBe(true);
          expect(existsSync(path), `${source} in ${relative(work, mapFile)}`).toBe(true);
        }
        maps++;
      }
    }
    expect(maps).toBeGreaterThan(20);
  });
});

describe('scratch projects from the tarballs', () => {
  const all = PACKAGES.flatMap(specifiers);
  const links = ['rxjs', 'ws', 'undici'];

  test('ESM: every exported sub-path imports; HAWebSocket echoes through a real server', async () => {
    const dir = project('esm', PACKAGES, links, {
      'package.json': JSON.stringify({ name: 'scratch-esm', private: true, type: 'module' }),
      'main.js': `const imported = {};
for (const specifier of ${JSON.stringify(all)}) imported[specifier] = Object.keys(await import(specifier)).length;
${echoBody("import { WebSocketServer } from 'ws';", "import { HAWebSocket } from '@lifeline/node/ws';")}
console.log(JSON.stringify({ imported, received }));
`,
    });
    const result = await runJson(process.execPath, ['main.js'], dir);
    expect(result.received).toEqual(['one', 'two', 'three']);
    for (const specifier of all)
      expect((result.imported as Record<string, number>)[specifier], specifier).toBeGreaterThan(0);
  });

  test('CommonJS: every exported sub-path requires; HAWebSocket echoes through a real server', async () => {
    const dir = project('cjs', PACKAGES, links, {
      'package.json': JSON.stringify({ name: 'scratch-cjs', private: true, type: 'commonjs' }),
      'main.js': `const imported = {};
for (const specifier of ${JSON.stringify(all)}) imported[specifier] = Object.keys(require(specifier)).length;
(async () => {
${echoBody("const { WebSocketServer } = require('ws');", "const { HAWebSocket } = require('@lifeline/node/ws');")}
console.log(JSON.stringify({ imported, received, same: require('@lifeline/core').LifelineError === require('@lifeline/node').LifelineError }));
})();
`,
    });
    const result = await runJson(process.execPath, ['main.js'], dir);
    expect(result.received).toEqual(['one', 'two', 'three']);
    expect(result.same).toBe(true);
    for (const specifier of all)
      expect((result.imported as Record<string, number>)[specifier], specifier).toBeGreaterThan(0);
  });

  // The README examples of each package are type-checked too, so they stay in step with the API
  // (not the fault proxy's: they are test files, written against the user's test runner).
  const readmeExamples = () =>
    Object.fromEntries(
      PACKAGES.filter((pkg) => pkg !== 'fault-proxy').flatMap((pkg) => {
        const readme = readFileSync(join(repo, 'packages', pkg, 'README.md'), 'utf8');
        return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match, i) => [
          `readme-${pkg}-${i}.ts`,
          `${match[1]}\nexport {};\n`,
        ]);
      }),
    );
  const typedMain = `import { WebSocketServer } from 'ws';
import { HAWebSocket } from '@lifeline/node/ws';
import { attach, LifelineError, MissingPeerDependencyError } from '@lifeline/core';
import * as testing from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { haFetch } from '@lifeline/node/fetch';
import * as browser from '@lifeline/browser';
import * as deno from '@lifeline/deno';
const checks: [typeof attach, typeof LifelineError, typeof MissingPeerDependencyError, object, typeof createResumeServer, typeof haFetch, object, object] =
  [attach, LifelineError, MissingPeerDependencyError, testing, createResumeServer, haFetch, browser, deno];
void checks;
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
wss.on('connection', (s) => s.on('message', (data, binary) => s.send(binary ? data : data.toString())));
const address = wss.address();
const port: number = typeof address === 'object' && address !== null ? address.port : 0;
const socket = new HAWebSocket(\`ws://127.0.0.1:\${port}/echo\`);
const received: string[] = [];
await new Promise<void>((resolve) => {
  socket.addEventListener('open', () => socket.send('typed'));
  socket.onmessage = (event) => { received.push(String(event.data)); resolve(); };
});
socket.close();
await new Promise((resolve) => wss.close(resolve));
console.log(JSON.stringify({ received }));
`;
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const tsLinks = [...links, '@types/node', '@types/ws'];

  test.each([
    ['node16', { module: 'node16', moduleResolution: 'node16' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ])(
    'TypeScript, moduleResolution %s: type-checks (README examples included), compiles and echoes',
    async (name, options) => {
      const dir = project(`ts-${name}`, PACKAGES, tsLinks, {
        'package.json': JSON.stringify({ name: `scratch-ts-${name}`, private: true, type: 'module' }),
        'tsconfig.json': JSON.stringify({
          compilerOptions: {
            ...options,
            target: 'es2022',
            lib: ['es2022', 'dom'],
            types: ['node'],
            strict: true,
            skipLibCheck: false,
            outDir: 'out',
          },
          include: ['*.ts'],
        }),
        'main.ts': typedMain,
        ...readmeExamples(),
      });
      await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).catch((error) => {
        throw new Error(`tsc (${name}) failed:\n${error.stdout}${error.stderr}`);
      });
      const result = await runJson(process.execPath, ['out/main.js'], dir);
      expect(result.received).toEqual(['typed']);
    },
    400_000,
  ); // tsc checks every .d.ts (skipLibCheck off): about 2 minutes on a loaded machine

  test('a bundle (esbuild, bundler resolution) of the packages runs and echoes', async () => {
    const dir = project('bundle', PACKAGES, links, {
      'package.json': JSON.stringify({ name: 'scratch-bundle', private: true, type: 'module' }),
      'main.js': `${echoBody("import { WebSocketServer } from 'ws';", "import { HAWebSocket } from '@lifeline/node/ws';")}
console.log(JSON.stringify({ received }));
`,
    });
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    await esbuild.build({
      absWorkingDir: dir,
      entryPoints: ['main.js'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: 'bundle.mjs',
      external: ['ws', 'undici', 'better-sqlite3', 'ioredis'],
      logLevel: 'silent',
    });
    const result = await runJson(process.execPath, ['bundle.mjs'], dir);
    expect(result.received).toEqual(['one', 'two', 'three']);
  });

  test('Deno: the tarballs in node_modules import as @lifeline/deno; HAWebSocket echoes through Deno.serve', async () => {
    const dir = project('deno', ['core', 'deno'], ['rxjs'], {
      'package.json': JSON.stringify({
        name: 'scratch-deno',
        private: true,
        type: 'module',
        dependencies: { '@lifeline/deno': '*', '@lifeline/core': '*', rxjs: '*' },
      }),
      'deno.json': JSON.stringify({ nodeModulesDir: 'manual', lock: false }),
      'main.ts': `import { HAWebSocket } from '@lifeline/deno';
import * as testing from '@lifeline/core/testing';
const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onmessage = (event) => socket.send(event.data);
  return response;
});
const socket = new HAWebSocket(\`ws://127.0.0.1:\${server.addr.port}/echo\`);
const received: string[] = [];
const guard = setTimeout(() => { console.log(JSON.stringify({ received, error: 'timeout' })); Deno.exit(1); }, 30000);
await new Promise<void>((resolve) => {
  socket.addEventListener('open', () => socket.send('deno'));
  socket.addEventListener('message', (event) => { received.push(String(event.data)); resolve(); });
});
clearTimeout(guard);
socket.close();
await server.shutdown();
console.log(JSON.stringify({ received, testing: Object.keys(testing).length }));
`,
    });
    const deno = join(repo, 'node_modules', '.bin', 'deno');
    const result = await runJson(deno, ['run', '--allow-net', '--allow-read', '--allow-env', 'main.ts'], dir);
    expect(result.received).toEqual(['deno']);
    expect(result.testing).toBeGreaterThan(0);
  });
});

describe('missing peer dependencies name the package to install', () => {
  // @lifeline/node with rxjs only: no ws, undici, ioredis or better-sqlite3.
  const program = (load: (specifier: string) => string) => `
const outcome = {};
for (const specifier of ${JSON.stringify(Object.keys(PEER_OF))}) {
  try { ${load('specifier')}; outcome[specifier] = 'loaded'; }
  catch (error) { outcome[specifier] = { name: error.name, code: error.code, packageName: error.packageName, message: error.message }; }
}
const server = ${load("'@lifeline/node/server'")};
const tcp = server.createResumeServer();
const tcpAddress = await tcp.listen({ transport: 'tcp' });
await tcp.close();
const ws = server.createResumeServer();
outcome.listenWs = await ws.listen().then(() => 'listening', (error) => ({ name: error.name, message: error.message }));
await ws.close();
const redis = new server.RedisSessionStore({ redis: 'redis://127.0.0.1:9' });
outcome.redis = await redis.load('x').then(() => 'loaded', (error) => ({ name: error.name, message: error.message }));
await redis.close().catch(() => {});
// A server on that store must not start (issue 16): listen() rejects with the store's ready() error.
const redisServer = server.createResumeServer({ store: new server.RedisSessionStore({ redis: 'redis://127.0.0.1:9' }) });
outcome.redisListen = await redisServer.listen({ transport: 'tcp' }).then(() => 'listening', (error) => ({ name: error.name, packageName: error.packageName }));
await redisServer.close();
await redisServer.store.close?.().catch(() => {});
const builtinSqlite = (() => { try { return !!process.getBuiltinModule?.('node:sqlite'); } catch { return false; } })();
if (!builtinSqlite) {
  const sqlite = new server.SqliteSessionStore({ path: ':memory:' });
  outcome.sqlite = await sqlite.ready().then(() => 'ready', (error) => ({ name: error.name, message: error.message }));
}
console.log(JSON.stringify({ outcome, tcp: tcpAddress.url.startsWith('tcp://') }));
`;

  // Each program must also exit on its own (runJson waits for the exit): nothing the failed
  // stores made may keep it alive.
  test.each([
    ['ESM', 'module', (s: string) => `await import(${s})`],
    ['CommonJS', 'commonjs', (s: string) => `require(${s})`],
  ])(
    '%s: a typed MissingPeerDependencyError naming the package, not ERR_MODULE_NOT_FOUND',
    async (name, type, load) => {
      const body = program(load);
      const dir = project(`no-peers-${type}`, ['core', 'node'], ['rxjs'], {
        'package.json': JSON.stringify({ name: `scratch-no-peers-${type}`, private: true, type }),
        'main.js': type === 'module' ? body : `(async () => {${body}})();`,
      });
      const result = await runJson(process.execPath, ['main.js'], dir);
      const outcome = result.outcome as Record<
        string,
        { name: string; code?: string; packageName?: string; message: string }
      >;
      for (const [specifier, peer] of Object.entries(PEER_OF)) {
        expect(outcome[specifier], `${name} ${specifier}`).toEqual({
          name: 'MissingPeerDependencyError',
          code: 'ERR_MISSING_PEER_DEPENDENCY',
          packageName: peer,
          message: `${specifier} needs the '${peer}' package: npm install ${peer}`,
        });
      }
      // The server loads without ws: its TCP transport works, its WebSocket transport names ws.
      expect(result.tcp).toBe(true);
      expect(outcome.listenWs).toEqual({
        name: 'MissingPeerDependencyError',
        message: "the WebSocket transport of @lifeline/node/server needs the 'ws' package: npm install ws",
      });
      expect(outcome.redis?.name).toBe('SessionStoreError');
      expect(outcome.redis?.message).toContain('npm install ioredis');
      expect(outcome.redisListen).toEqual({ name: 'MissingPeerDependencyError', packageName: 'ioredis' });
      if (outcome.sqlite !== undefined) {
        expect(outcome.sqlite.name).toBe('SessionStoreError');
        expect(outcome.sqlite.message).toContain('npm install better-sqlite3');
      }
    },
  );
});
