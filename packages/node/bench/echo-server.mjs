// Benchmark echo server, in its own process so its CPU is not counted as the client's.
// argv: port (default 0: any), and optionally "standby": load, then wait for a line on stdin before
// listening, so a benchmark that killed a server brings the next one up within milliseconds.
// Prints {"port":P,"t":T} once listening; T is when it began listening, in epoch milliseconds from
// the monotonic clock (performance.timeOrigin + performance.now()), comparable across processes.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

if (process.argv[3] === 'standby') {
  const lines = createInterface({ input: process.stdin });
  await once(lines, 'line');
  lines.close();
}
const port = Number(process.argv[2] ?? 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => {});
});
wss.on('listening', () => {
  const t = performance.timeOrigin + performance.now();
  process.stdout.write(`${JSON.stringify({ port: wss.address().port, t })}\n`);
});
