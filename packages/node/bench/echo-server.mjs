// Benchmark echo server, in its own process so its CPU is not counted as the client's.
// argv: port (default 0: any), and optionally "standby": load, then wait for a line on stdin before
// listening, so a benchmark that killed a server brings the next one up within milliseconds.
// Prints {"port":P,"t":T} once listening; T is when it began listening, in epoch milliseconds from
// the monotonic clock (performance.timeOrigin + performance.now()), comparable across processes.
// Standby processes then print {"a":T} for each TCP connection accepted (before any upgrade work).
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

const standby = process.argv[3] === 'standby';
if (standby) {
  const lines = createInterface({ input: process.stdin });
  await once(lines, 'line');
  lines.close();
}
const port = Number(process.argv[2] ?? 0);
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
const stamp = () => performance.timeOrigin + performance.now();
if (standby) http.on('connection', () => process.stdout.write(`${JSON.stringify({ a: stamp() })}\n`));
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => {});
});
http.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: http.address().port, t: stamp() })}\n`);
});
