// A WebSocket server run as a child process, so tests can kill it with SIGKILL mid-stream and
// start it again on the same port. Protocol (text messages):
//   client "n"         -> server replies "echo:n"
//   server, every tickMs -> "tick:<k>" with k counting from 0 per connection
// argv: port (0: any), tickMs (default 5), log file (optional, '' for none), and optionally
// "standby": the process loads, prints {"ready":true}, then waits for a line on stdin before it
// listens, so a test restarts a killed server in milliseconds instead of a process start.
// With a log file, the ticks are paced by the clock (tick k is due tickMs * k after the connection
// opened, so a loaded machine sends them late, not fewer of them), and every message received is
// appended to the log before it is echoed, one JSON line written synchronously (it survives
// SIGKILL; a pipe's backlog would not): {"p":PID,"t":EPOCH_MS,"d":TEXT}, t from the monotonic
// clock (performance.timeOrigin + performance.now()), comparable across processes.
// Prints {"port": P} on stdout once listening.
import { once } from 'node:events';
import { openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 0);
const tickMs = Number(process.argv[3] ?? 5);
const log = process.argv[4] ? openSync(process.argv[4], 'a') : undefined;
if (process.argv[5] === 'standby') {
  process.stdout.write('{"ready":true}\n');
  const lines = createInterface({ input: process.stdin });
  await once(lines, 'line');
  lines.close();
}
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (socket) => {
  let tick = 0;
  const opened = performance.now();
  const timer = setInterval(() => {
    if (log === undefined) socket.send(`tick:${tick++}`);
    // Bounded per interval: at most one second's worth of catch-up.
    else
      for (let n = 0; tick <= (performance.now() - opened) / tickMs && n < 1_000 / tickMs; n++)
        socket.send(`tick:${tick++}`);
  }, tickMs);
  socket.on('message', (data) => {
    if (log !== undefined) {
      const t = performance.timeOrigin + performance.now();
      writeSync(log, `${JSON.stringify({ p: process.pid, t, d: String(data) })}\n`);
    }
    socket.send(`echo:${data}`);
  });
  socket.on('close', () => clearInterval(timer));
  socket.on('error', () => clearInterval(timer));
});
wss.on('listening', () => process.stdout.write(`${JSON.stringify({ port: wss.address().port })}\n`));
