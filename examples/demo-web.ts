// `pnpm demo --web`: the crash demo in a browser. Serves a page (demo-web-page.ts, bundled with
// esbuild from the sources of @lifeline/browser) that streams through the demo's resume server
// (SQLite store, its own process) behind a fault proxy, and shows messages per second, kills,
// recoveries and the lost / duplicated counters live, while the server is killed with SIGKILL
// every few seconds. Buttons on the page kill the server now, cut the network (the proxy drops
// every packet, a silent partition) and go offline (the proxy resets every connection and refuses
// new ones). Prints the page's URL and runs until Ctrl-C, or `--duration` seconds.
//
//   pnpm demo --web [--port 8080] [--kill-every 3] [--rate 200] [--upstream 100] [--duration 60]
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaultProxy } from '@lifeline/node/testing';
import { build } from 'esbuild';
import { ServerProcess } from './example-support.js';

/** Options of {@link runWebDemo}. */
export interface WebDemoOptions {
  /** Port of the page; 0 picks a free one. @default 0 */
  port?: number;
  /** Seconds the server stays up between two kills; 0 never kills on a timer. @default 3 */
  killEverySeconds?: number;
  /** Client messages a second. @default 50 */
  rate?: number;
  /** Upstream events a second from the server. @default 50 */
  upstream?: number;
  /** Stop after this many seconds; undefined runs until SIGINT / SIGTERM. */
  durationSeconds?: number;
  /** Called with the page's URL once everything listens. @default prints it */
  onListening?: (url: string) => void;
}

type Network = 'up' | 'cut' | 'offline';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export async function runWebDemo(options: WebDemoOptions = {}): Promise<void> {
  const killEveryMs = (options.killEverySeconds ?? 3) * 1_000;
  const rate = options.rate ?? 50;
  const workdir = mkdtempSync(join(tmpdir(), 'lifeline-demo-web-'));
  const upstreamStart = Date.now();
  const server = new ServerProcess(
    here('./demo-server.ts'),
    // Upstream events hold at most 256 places of the server's 1,024-message replay window, so
    // the echoes of a queue flushed after an outage find room: an echo that must wait for room
    // is held in the server's memory only, and a SIGKILL then loses it although its request was
    // acknowledged (reported to the maintainers; the page counts it as lost if it happens).
    () => [
      `sqlite:${join(workdir, 'sessions.db')}`,
      String(options.upstream ?? 50),
      String(upstreamStart),
      '256',
    ],
    [],
  );
  await server.start();
  const proxy = await FaultProxy.start({ target: { port: server.port } });
  const bundle = await build({
    entryPoints: [here('./demo-web-page.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['@lifeline/source'],
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.text;

  let kills = 0;
  let network: Network = 'up';
  let serverUp = true;
  let restarting: Promise<void> | undefined;
  /** SIGKILL, then the same server back on the same port; one at a time. */
  const killServer = () =>
    (restarting ??= (async () => {
      try {
        serverUp = false;
        await server.kill();
        kills++;
        await server.start();
        serverUp = true;
      } finally {
        restarting = undefined;
      }
    })());
  const setNetwork = (next: Network) => {
    network = next;
    if (next === 'up') {
      proxy.refuseNewConnections(false);
      proxy.pass();
    } else if (next === 'cut') {
      proxy.refuseNewConnections(false);
      proxy.blackhole({ closes: 'hold' });
    } else {
      proxy.pass();
      proxy.refuseNewConnections(true);
      proxy.resetAll();
    }
  };
  const status = () => ({ kills, network, serverUp });
  const json = (response: ServerResponse, body: unknown) =>
    response
      .writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify(body));

  const sockets = new Set<Socket>();
  const http = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    const post = request.method === 'POST';
    if (path === '/')
      return void response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    if (path === '/app.js') {
      return void response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(script);
    }
    if (path === '/api/config') return json(response, { wsUrl: `ws://127.0.0.1:${proxy.port}`, rate });
    if (path === '/api/status') return json(response, status());
    if (post && path === '/api/kill') {
      await killServer().catch((error) => console.error(`restart failed: ${String(error)}`));
      return json(response, status());
    }
    if (post && (path === '/api/cut' || path === '/api/offline' || path === '/api/restore')) {
      setNetwork(path === '/api/cut' ? 'cut' : path === '/api/offline' ? 'offline' : 'up');
      return json(response, status());
    }
    response.writeHead(404).end();
  });
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  http.listen(options.port ?? 0, '127.0.0.1');
  await once(http, 'listening');
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/`;
  (options.onListening ?? ((at) => console.log(`Lifeline web demo: ${at}  (Ctrl-C to stop)`)))(url);

  // The next kill comes `killEveryMs` after the server is back: a restart that takes longer than
  // the period (a loaded machine) still leaves the server that long up between two kills.
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  let stopping = false;
  const scheduleKill = () => {
    if (killEveryMs <= 0 || stopping) return;
    killTimer = setTimeout(() => {
      killServer()
        .catch((error) => console.error(`restart failed: ${String(error)}`))
        .finally(scheduleKill);
    }, killEveryMs);
  };
  scheduleKill();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (options.durationSeconds !== undefined) setTimeout(stop, options.durationSeconds * 1_000).unref();
  });
  stopping = true;
  clearTimeout(killTimer);
  await restarting?.catch(() => {});
  clearTimeout(killTimer);
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => http.close(resolve));
  await proxy.close();
  await server.kill();
  rmSync(workdir, { recursive: true, force: true });
  console.log(`\nStopped after ${kills} server kills.`);
}

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Lifeline: a stream that survives its server</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 28px; color: #1d2330; max-width: 760px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  p { margin: 0 0 18px; color: #57606a; }
  #state { display: inline-block; padding: 2px 12px; border-radius: 12px; font-weight: 600; color: #fff; background: #888; }
  #state[data-status="open"] { background: #1a7f37; }
  #state[data-status="recovering"] { background: #bf8700; }
  #state[data-status="connecting"] { background: #0969da; }
  #state[data-status="closed"] { background: #cf222e; }
  .big { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 18px 0; }
  .big div { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; }
  .big span { display: block; font-size: 30px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .big label { color: #57606a; font-size: 13px; }
  .big .good span { color: #1a7f37; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 18px; }
  td { border-bottom: 1px solid #d0d7de; padding: 4px 8px; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  button { font: inherit; padding: 6px 14px; margin-right: 8px; border-radius: 6px; border: 1px solid #d0d7de; background: #f6f8fa; cursor: pointer; }
  button#kill { background: #cf222e; color: #fff; border-color: #a40e26; }
</style>
</head>
<body>
<h1>Lifeline <span id="state" data-status="connecting">connecting</span></h1>
<p>One WebSocket from this page, through the resume protocol, to a server process that is killed with SIGKILL every few seconds.</p>
<div>
  <button id="kill">Kill the server now</button><button id="cut">Cut the network</button><button id="offline">Go offline</button>
</div>
<div class="big">
  <div><label>messages / s</label><span id="rate">0</span></div>
  <div><label>server kills</label><span id="kills">0</span></div>
  <div><label>recoveries</label><span id="recoveries">0</span></div>
  <div class="good"><label>lost / duplicated</label><span><span id="lost" style="display:inline;font-size:inherit">0</span> / <span id="duplicated" style="display:inline;font-size:inherit">0</span></span></div>
</div>
<table>
  <tr><td>last recovery (down to first message)</td><td class="n" id="last-recovery">-</td></tr>
  <tr><td>client messages sent</td><td class="n" id="sent">0</td></tr>
  <tr><td>echoes received (unique)</td><td class="n" id="echoed">0</td></tr>
  <tr><td>upstream events received (unique)</td><td class="n" id="ticks">0</td></tr>
  <tr><td>echoes lost</td><td class="n" id="echoes-lost">0</td></tr>
  <tr><td>upstream events lost</td><td class="n" id="ticks-lost">0</td></tr>
  <tr><td>out of order</td><td class="n" id="reordered">0</td></tr>
  <tr><td>sends refused by the queue</td><td class="n" id="refused">0</td></tr>
  <tr><td>sessions lost</td><td class="n" id="sessions-lost">0</td></tr>
  <tr><td>server</td><td class="n" id="server">up</td></tr>
  <tr><td>network</td><td class="n" id="network">up</td></tr>
</table>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
