// The demo's server, run as its own process so the demo can kill it with SIGKILL.
// Text protocol: the client sends "n", the server answers "echo:n"; every `tickMs` the server
// pushes "tick:k" (k counts from 0 for each connection). Prints {"port": P} once listening.
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 0);
const tickMs = Number(process.argv[3] ?? 10);
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (socket) => {
  let tick = 0;
  const timer = setInterval(() => socket.send(`tick:${tick++}`), tickMs);
  socket.on('message', (data) => socket.send(`echo:${data}`));
  socket.on('close', () => clearInterval(timer));
  socket.on('error', () => clearInterval(timer));
});
wss.on('listening', () => {
  const address = wss.address();
  if (typeof address === 'object' && address)
    process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
