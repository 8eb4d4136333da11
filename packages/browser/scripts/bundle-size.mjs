// Bundle-size gate, run by `pnpm check:package` (so by `pnpm test` and CI): measures what a browser
// app ships when it installs the PUBLISHED packages. It packs @lifeline/core and @lifeline/browser
// with `pnpm pack`, unpacks the tarballs into node_modules of a scratch project in a temp folder
// (as npm would; rxjs, the peer, is linked from the workspace: the registry's files, offline),
// bundles small apps with esbuild, Rollup (node-resolve + terser) and Vite, each minified for the
// browser with the bundler's defaults, gzips each bundle at level 9, and checks in every bundler:
//
//   HAWebSocket alone                         aim 10 KiB (issue 13)   fails above --limit-ws
//   HAWebSocket + resume(), minus the above   aim  5 KiB              fails above --limit-resume
//
// The limits are a ratchet at the measured floor (see docs/benchmarks.md, "Bundle size"): lower
// them as the engine shrinks, never raise them to let a change through. `haFetch` alone is
// measured and reported, not gated.
//
//   node scripts/bundle-size.mjs [--bundlers=esbuild,rollup,vite] [--json=FILE] [--metafile]
//                                [--limit-ws=BYTES] [--limit-resume=BYTES]
//   node scripts/bundle-size.mjs --peers     also the "us and them" table (docs/benchmarks.md): the
//                                            same app written with reconnecting-websocket,
//                                            partysocket, socket.io-client, SignalR, centrifuge
//
// --metafile prints esbuild's largest inputs per app (where the bytes are). Needs the packages
// built (`pnpm build`); turbo builds them before check:package.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value = 'true'] = arg.replace(/^--/, '').split('=');
    return [key, value];
  }),
);
const KiB = 1024;
/** Issue 13's goals. */
const AIM_WS = 10 * KiB;
const AIM_RESUME = 5 * KiB;
/**
 * The gate: the measured floor (esbuild, the largest of the three) plus about 40 bytes. On
 * 2026-11-30 (branch h15-bytes: error classes tested by code where only tested, declared error
 * fields, private names mangled) 14,505 and +10,492 bytes. Before, 14.4 KiB and 10.3 KiB (floor
 * 14,705 and +10,455 once the default scheduler no longer used asyncScheduler's classes); 14.7 KiB
 * and 10.4 KiB before that night's changes, 15.35 KiB and 10.35 KiB the night before. Raised
 * once, on 2026-11-30 (branch h16-ack3, resume protocol version 3, "the ack may wait"): `resume()`
 * adds 10,699 bytes (+181 on 10,518), so its limit is that plus the 14 bytes of headroom it had
 * (10,532 -> 10,713); `HAWebSocket` 14,539 (+2) stays under its limit. Then the review's cap on
 * the longer ack delay (break16: 20 x a large `ackDelayMs` overflowed setTimeout), written with
 * MAX_TIMER_MS, which the bundle already had: 10,711 bytes, limit 10,725 (the same 14 bytes of headroom).
 * `HAWebSocket`'s limit lowered with the floor: 14,545 -> 14,485 (17:00 UTC, 14,478 bytes), -> 14,455
 * (21:30 UTC, 14,446 bytes: a refusal after close() rejects the send it is for).
 * Raised again on 2026-12-01 (branch h19-rclose): a resume client's close() reads its link on
 * after the CLOSE, until the server acknowledged what it sent and closed the link (bounded by a
 * 2 s linger), so sends made just before the close resolve instead of rejecting: `resume()` adds
 * 10,797 bytes (+79 on main's 10,718), limit 10,725 -> 10,797 (+72, no headroom left). Merged
 * beside branch h19-rdeopt (the frame reader makes no object per frame: -57 bytes), main measures
 * 10,735 bytes: limit 10,797 -> 10,745 (10 bytes of headroom). Then (branch break19b) a client
 * with a session store writes its CLOSE only after the sends being stored are written (before, the
 * server ignored them as sent after the CLOSE: 0 of 15 delivered): 10,755 bytes (+20 on 10,735; the
 * first form, with a getter and a phase check, cost +39), limit 10,745 -> 10,755 (no headroom).
 */
const limitWs = Number(args['limit-ws'] ?? 14_455);
const limitResume = Number(args['limit-resume'] ?? 10_755);
const bundlers = (args.bundlers ?? 'esbuild,rollup,vite').split(',');
const browserRoot = fileURLToPath(new URL('..', import.meta.url));
const packagesRoot = join(browserRoot, '..');
const requireHere = createRequire(join(browserRoot, 'package.json'));

// Each app uses what it imports, and hands it to the page (`globalThis`) so no bundler may drop it.
const OURS = {
  HAWebSocket: `import { HAWebSocket } from '@lifeline/browser';
const socket = new HAWebSocket('wss://example.com/feed');
socket.onmessage = (event) => console.log(event.data);
socket.onopen = () => socket.send('hello');
globalThis.socket = socket;`,
  'HAWebSocket + resume()': `import { HAWebSocket, resume } from '@lifeline/browser';
const socket = new HAWebSocket('wss://example.com/feed', { resume: resume() });
socket.onmessage = (event) => console.log(event.data);
socket.onopen = () => socket.send('hello');
globalThis.socket = socket;`,
  haFetch: `import { haFetch } from '@lifeline/browser';
globalThis.load = () => haFetch('/feed').then((response) => response.text());`,
};
const PEERS = {
  'reconnecting-websocket 4': `import ReconnectingWebSocket from 'reconnecting-websocket';
const socket = new ReconnectingWebSocket('wss://example.com/feed');
socket.onmessage = (event) => console.log(event.data);
socket.onopen = () => socket.send('hello');
globalThis.socket = socket;`,
  'partysocket 1 (its reconnecting WebSocket)': `import { WebSocket } from 'partysocket';
const socket = new WebSocket('wss://example.com/feed');
socket.onmessage = (event) => console.log(event.data);
socket.onopen = () => socket.send('hello');
globalThis.socket = socket;`,
  'socket.io-client 4': `import { io } from 'socket.io-client';
const socket = io('https://example.com');
socket.on('message', (data) => console.log(data));
socket.on('connect', () => socket.emit('message', 'hello'));
globalThis.socket = socket;`,
  '@microsoft/signalr 10': `import { HubConnectionBuilder } from '@microsoft/signalr';
const connection = new HubConnectionBuilder().withUrl('/hub').withAutomaticReconnect().build();
connection.on('message', (data) => console.log(data));
connection.start().then(() => connection.send('message', 'hello'));
globalThis.connection = connection;`,
  'centrifuge 5': `import { Centrifuge } from 'centrifuge';
const client = new Centrifuge('wss://example.com/connection/websocket');
const sub = client.newSubscription('feed');
sub.on('publication', (context) => console.log(context.data));
sub.subscribe();
client.connect();
globalThis.client = client;`,
};
const PEER_PACKAGES = [
  'reconnecting-websocket',
  'partysocket',
  'socket.io-client',
  '@microsoft/signalr',
  'centrifuge',
];

const run = (file, argv, cwd) => execFileSync(file, argv, { cwd, encoding: 'utf8', stdio: 'pipe' });

/** A dependency's folder as the workspace installed it (this package's node_modules, then the root's). */
function installed(name) {
  for (const base of [join(browserRoot, 'node_modules'), join(packagesRoot, '..', 'node_modules')]) {
    if (existsSync(join(base, name, 'package.json'))) return join(base, name);
  }
  throw new Error(`${name} is not installed in the workspace (pnpm install)`);
}

/** The scratch project in `dir`: the packed tarballs unpacked into node_modules, rxjs (and peers) linked. */
function scratchProject(dir, withPeers) {
  mkdirSync(join(dir, 'node_modules', '@lifeline'), { recursive: true });
  for (const pkg of ['core', 'browser']) {
    const cwd = join(packagesRoot, pkg);
    if (!existsSync(join(cwd, 'dist', 'index.js'))) {
      throw new Error(`packages/${pkg}/dist is missing: run \`pnpm build\` first`);
    }
    const out = run('pnpm', ['pack', '--pack-destination', dir], cwd);
    const tarball = out
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.endsWith('.tgz'));
    if (!tarball) throw new Error(`pnpm pack printed no tarball in packages/${pkg}:\n${out}`);
    const into = join(dir, 'node_modules', '@lifeline', pkg);
    mkdirSync(into);
    run('tar', ['-xzf', join(dir, tarball.replace(/^.*\//, '')), '-C', into, '--strip-components=1'], dir);
  }
  const links = ['rxjs', ...(withPeers ? PEER_PACKAGES : [])];
  for (const name of links) {
    const target = join(dir, 'node_modules', name);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(realpathSync(installed(name)), target, 'dir');
  }
  writeFileSync(join(dir, 'package.json'), '{ "name": "scratch", "private": true, "type": "module" }\n');
}

/** Each bundler builds `file` minified for the browser; returns the bundle's code (all chunks). */
const BUNDLERS = {
  async esbuild(dir, file) {
    const { build } = await import(requireHere.resolve('esbuild'));
    const result = await build({
      entryPoints: [join(dir, file)],
      absWorkingDir: dir,
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    return { code: result.outputFiles.map((f) => f.text).join('\n'), metafile: result.metafile };
  },
  async rollup(dir, file) {
    const { rollup } = await import(requireHere.resolve('rollup'));
    const { nodeResolve } = await import(requireHere.resolve('@rollup/plugin-node-resolve'));
    const terser = (await import(requireHere.resolve('@rollup/plugin-terser'))).default;
    const bundle = await rollup({
      input: join(dir, file),
      plugins: [nodeResolve({ browser: true }), terser()],
      onwarn: () => {},
    });
    const { output } = await bundle.generate({ format: 'es' });
    await bundle.close();
    return { code: output.map((chunk) => (chunk.type === 'chunk' ? chunk.code : '')).join('\n') };
  },
  async vite(dir, file) {
    const { build } = await import(requireHere.resolve('vite'));
    const result = await build({
      root: dir,
      configFile: false,
      logLevel: 'silent',
      build: { write: false, minify: true, rollupOptions: { input: join(dir, file) } },
    });
    const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
    return { code: outputs.map((chunk) => (chunk.type === 'chunk' ? chunk.code : '')).join('\n') };
  },
};

const kib = (bytes) => `${(bytes / KiB).toFixed(1)} KiB`;

async function measureAll(dir, apps) {
  const rows = [];
  let index = 0;
  for (const [name, source] of Object.entries(apps)) {
    const file = `app-${index++}.js`;
    writeFileSync(join(dir, file), `${source}\n`);
    const row = { name };
    for (const bundler of bundlers) {
      const { code, metafile } = await BUNDLERS[bundler](dir, file);
      row[bundler] = { minified: Buffer.byteLength(code), gzipped: gzipSync(code, { level: 9 }).length };
      if (metafile && args.metafile) row.inputs = largestInputs(dir, metafile);
    }
    rows.push(row);
  }
  return rows;
}

function largestInputs(dir, metafile) {
  const output = Object.values(metafile.outputs)[0];
  return Object.entries(output.inputs)
    .map(([path, { bytesInOutput }]) => ({
      path: relative(dir, join(dir, path)).replace(/^.*node_modules\//, ''),
      bytes: bytesInOutput,
    }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 25);
}

function printTable(title, rows) {
  console.log(`\n${title}`);
  console.log(`| app | ${bundlers.map((b) => `${b} min+gz (min)`).join(' | ')} |`);
  console.log(`| --- | ${bundlers.map(() => '---:').join(' | ')} |`);
  for (const row of rows) {
    const cells = bundlers.map((b) => `${kib(row[b].gzipped)} (${kib(row[b].minified)})`);
    console.log(`| ${row.name} | ${cells.join(' | ')} |`);
  }
  for (const row of rows) {
    if (!row.inputs) continue;
    console.log(`\nesbuild's largest inputs, ${row.name} (minified bytes):`);
    for (const input of row.inputs) console.log(`  ${String(input.bytes).padStart(7)}  ${input.path}`);
  }
}

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'lifeline-bundle-size-'));
try {
  scratchProject(dir, args.peers === 'true');
  const ours = await measureAll(dir, OURS);
  printTable('Lifeline, from the packed tarballs, gzip -9:', ours);
  const result = { ours };
  if (args.peers === 'true') {
    result.peers = await measureAll(dir, PEERS);
    printTable('Peers, from the registry, the same app, gzip -9:', result.peers);
  }
  if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
  const failures = [];
  const overAim = [];
  const [ws, withResume] = ours;
  for (const bundler of bundlers) {
    const wsBytes = ws[bundler].gzipped;
    const resumeDelta = withResume[bundler].gzipped - wsBytes;
    // In bytes: the limits sit about 40 bytes above the floor, below what one decimal of KiB shows.
    if (wsBytes > limitWs) failures.push(`${bundler}: HAWebSocket ${wsBytes} B > ${limitWs} B`);
    if (resumeDelta > limitResume) {
      failures.push(`${bundler}: resume() adds ${resumeDelta} B > ${limitResume} B`);
    }
    if (wsBytes > AIM_WS) overAim.push(`${bundler}: HAWebSocket ${kib(wsBytes)} (aim ${kib(AIM_WS)})`);
    if (resumeDelta > AIM_RESUME)
      overAim.push(`${bundler}: resume() adds ${kib(resumeDelta)} (aim ${kib(AIM_RESUME)})`);
  }
  console.log(
    `\nlimits: HAWebSocket <= ${limitWs} B, resume() adds <= ${limitResume} B (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  if (overAim.length > 0) console.log(`over the aim (reported, not failed):\n  ${overAim.join('\n  ')}`);
  if (failures.length > 0) {
    console.error(`bundle size over the limit:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
