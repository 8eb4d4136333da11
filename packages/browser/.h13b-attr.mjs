import { gzipSync } from 'node:zlib';
import { build, transform } from 'esbuild';

const src =
  process.argv[2] === 'resume'
    ? `import { HAWebSocket, resume } from './src/index.ts'; const s = new HAWebSocket('wss://x',{resume:resume()}); s.onmessage=(e)=>console.log(e.data); s.onopen=()=>s.send('h'); globalThis.s=s;`
    : `import { HAWebSocket } from './src/index.ts'; const s = new HAWebSocket('wss://x'); s.onmessage=(e)=>console.log(e.data); s.onopen=()=>s.send('h'); globalThis.s=s;`;
const r = await build({
  stdin: { contents: src, resolveDir: process.cwd(), loader: 'ts' },
  bundle: true,
  write: false,
  minify: false,
  format: 'esm',
  platform: 'browser',
  conditions: ['@lifeline/source'],
  logLevel: 'silent',
});
const text = r.outputFiles[0].text;
const parts = text.split(/^(?=\/\/ )/m);
const segs = [];
for (const p of parts) {
  const m = /^\/\/ (\S+)/.exec(p);
  const name = m ? m[1].replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+/, '') : '(head)';
  const t = await transform(p, { minify: true, loader: 'js' }).catch(() => ({ code: p }));
  segs.push([name, t.code]);
}
const gz = (s) => gzipSync(s, { level: 9 }).length;
const all = segs.map((s) => s[1]).join('');
const total = gz(all);
const group = (n) => (n.startsWith('rxjs/') || n.startsWith('tslib') ? 'rxjs+tslib' : n);
const groups = new Map();
for (const [n] of segs) groups.set(group(n), 0);
const rows = [];
for (const g of groups.keys()) {
  const without = segs
    .filter(([n]) => group(n) !== g)
    .map((s) => s[1])
    .join('');
  rows.push([total - gz(without), g]);
}
rows.sort((a, b) => b[0] - a[0]);
console.log('total gz (per-module minified, approx)', total);
for (const [b, n] of rows) if (b > 60) console.log(String(b).padStart(6), n);
