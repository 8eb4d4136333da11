// A WebSocket server run as a child process, so tests can kill it with SIGKILL mid-stream and
// start it again on the same port. Protocol (text messages):
//   client "n"         -> server replies "echo:n"
//   server, every tickMs -> "tick:<k>" with k counting from 0 per connection
// Prints {"port": P} on stdout once listening.
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 0);
const tickMs = Number(process.argv[3] ?? 5);
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (socket) => {
  let tick = 0;
  const timer = setInterval(() => socket.send(`tick:${tick++}`), tickMs);
  socket.on('message', (data) => socket.send(`echo:${data}`));
  socket.on('close', () => clearInterval(timer));
  socket.on('error', () => clearInterval(timer));
});
wss.on('listening', () => process.stdout.write(`${JSON.stringify({ port: wss.address().port })}\n`));
