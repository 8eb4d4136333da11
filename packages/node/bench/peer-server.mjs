// Benchmark server for the client benchmarks (ws.bench.ts, resume.bench.ts), in its own process so
// its CPU is not counted as the client's, run from the builds (dist) as users get them. One process
// serves three protocols on three ports, all speaking the same little command language:
//   text "count:N"        -> counts the next N binary messages, then answers the text "done"
//   text "flood:N:SIZE"   -> sends N binary messages of SIZE bytes (256 in flight at most), then "done"
// - raw: a `ws` server (raw ws, HAWebSocket, reconnecting-websocket, partysocket);
// - resume: a Lifeline resume server (HAWebSocket with `resume`);
// - io: a socket.io server (socket.io-client), the same commands as events "count"/"flood"/"m"/"done".
// Prints {"raw":P,"resume":P,"io":P} once listening; exits when its stdin ends.
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createResumeServer } from '@lifeline/node/server';
import { Server as IoServer } from 'socket.io';
import { WebSocketServer } from 'ws';

const WINDOW = 256;

function commands(send, sendBinary, drain) {
  let expected = Number.POSITIVE_INFINITY;
  let count = 0;
  return {
    text(text) {
      if (text.startsWith('count:')) {
        expected = Number(text.slice(6));
        count = 0;
      } else if (text.startsWith('flood:')) {
        const [, n, size] = text.split(':');
        void flood(Number(n), Buffer.alloc(Number(size), 7));
      }
    },
    binary() {
      if (++count === expected) send('done');
    },
  };
  async function flood(n, payload) {
    for (let sent = 0; sent < n; ) {
      const batch = Math.min(WINDOW, n - sent);
      for (let i = 0; i < batch - 1; i++) sendBinary(payload);
      await drain(payload);
      sent += batch;
    }
    send('done');
  }
}

const raw = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
raw.on('connection', (socket) => {
  socket.on('error', () => {});
  const c = commands(
    (text) => socket.send(text),
    (data) => socket.send(data),
    (data) => new Promise((resolve) => socket.send(data, () => resolve())),
  );
  socket.on('message', (data, isBinary) => (isBinary ? c.binary() : c.text(String(data))));
});
await once(raw, 'listening');

const resume = createResumeServer();
resume.sessions$.subscribe((session) => {
  const c = commands(
    (text) => session.send(text),
    (data) => session.send(data),
    (data) => session.sendAsync(data).catch(() => {}),
  );
  session.messages$.subscribe(({ data }) => (typeof data === 'string' ? c.text(data) : c.binary()));
});
const { port: resumePort } = await resume.listen({ host: '127.0.0.1', port: 0 });

const http = createServer();
const io = new IoServer(http, { serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 1e7 });
io.on('connection', (socket) => {
  const c = commands(
    () => socket.emit('done'),
    (data) => socket.emit('m', data),
    (data) => {
      // socket.io has no write callback: yield to the event loop once per window instead.
      socket.emit('m', data);
      return new Promise((resolve) => setImmediate(resolve));
    },
  );
  socket.on('count', (n) => c.text(`count:${n}`));
  socket.on('flood', (n, size) => c.text(`flood:${n}:${size}`));
  socket.on('m', () => c.binary());
});
await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));

process.stdout.write(
  `${JSON.stringify({ raw: raw.address().port, resume: resumePort, io: http.address().port })}\n`,
);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
