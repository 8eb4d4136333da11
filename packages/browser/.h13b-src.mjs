import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const entries = {
  ws: `import { HAWebSocket } from './src/index.ts'; const s = new HAWebSocket('wss://x'); s.onmessage=(e)=>console.log(e.data); s.onopen=()=>s.send('h'); globalThis.s=s;`,
  resume: `import { HAWebSocket, resume } from './src/index.ts'; const s = new HAWebSocket('wss://x',{resume:resume()}); s.onmessage=(e)=>console.log(e.data); s.onopen=()=>s.send('h'); globalThis.s=s;`,
  fetch: `import { haFetch } from './src/index.ts'; globalThis.l=()=>haFetch('/x').then(r=>r.text());`,
};
const which = process.argv[2] ?? 'ws';
const r = await build({
  stdin: { contents: entries[which], resolveDir: process.cwd(), loader: 'ts' },
  bundle: true,
  write: false,
  minify: true,
  format: 'esm',
  platform: 'browser',
  conditions: ['@lifeline/source'],
  metafile: true,
  logLevel: 'silent',
});
const code = r.outputFiles[0].contents;
console.log(which, 'min', code.length, 'gz', gzipSync(code, { level: 9 }).length);
const out = Object.values(r.metafile.outputs)[0];
const rows = Object.entries(out.inputs)
  .map(([p, { bytesInOutput }]) => [
    bytesInOutput,
    p.replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+/, ''),
  ])
  .sort((a, b) => b[0] - a[0]);
let rx = 0;
for (const [b, p] of rows) if (p.startsWith('rxjs') || p.startsWith('tslib')) rx += b;
console.log('rxjs+tslib', rx);
for (const [b, p] of rows.slice(0, Number(process.argv[3] ?? 40))) console.log(String(b).padStart(7), p);
if (process.argv[4]) (await import('node:fs')).writeFileSync(process.argv[4], code);
