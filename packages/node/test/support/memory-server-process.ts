// A resume server in a process of its own, for the memory tests: the attacker runs in the test
// process, and this one's memory is measured alone. argv[2]: 'ws' (listen), 'tcp' (listen) or
// 'ws-attach' (a `ws` WebSocketServer created with ws's defaults, then `server.attach(wss)`);
// argv[3]: the server options as JSON; argv[4]: how many bytes the application sends each new
// session at once, in messages of 1,000,000 bytes (default 0). Prints `{"port":N}` once listening, then every 50 ms
// `{"heap":B,"rss":B,"ab":B,"stats":{...}}` (heapUsed, rss, arrayBuffers after a GC, stats).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createResumeServer } from '@lifeline/node/server';
import { WebSocketServer } from 'ws';

const mode = process.argv[2] ?? 'ws';
const server = createResumeServer(JSON.parse(process.argv[3] ?? '{}'));
const greeting = Number(process.argv[4] ?? 0);
server.sessions$.subscribe((session) => {
  session.messages$.subscribe(() => {});
  for (let sent = 0; sent < greeting; sent += 1_000_000)
    session.send(new Uint8Array(1_000_000)).catch(() => {});
});

let port: number;
if (mode === 'ws-attach') {
  const http = createServer();
  server.attach(new WebSocketServer({ server: http }));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  port = (http.address() as AddressInfo).port;
} else {
  ({ port } = await server.listen({ port: 0, transport: mode === 'tcp' ? 'tcp' : 'ws' }));
}

const gc = (globalThis as { gc?: () => void }).gc;
const report = () => {
  gc?.();
  const { heapUsed, rss, arrayBuffers } = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ heap: heapUsed, rss, ab: arrayBuffers, stats: server.stats })}\n`);
};
process.stdout.write(`${JSON.stringify({ port })}\n`);
report();
setInterval(report, 50);
