// The smallest end-to-end use of Lifeline: an HAWebSocket against a local ws server whose
// connections are cut twice; the socket recovers, a send made while recovering is delivered on
// the new link, and the process exits on its own once both sides are closed (nothing is left
// running).
//
//   pnpm --filter @lifeline/examples example:quickstart
import { once } from 'node:events';
import { HAWebSocket } from '@lifeline/node/ws';
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await once(server, 'listening');
server.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${data}`)));
const { port } = server.address() as { port: number };

const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, { backoff: { initialDelayMs: 50 } });
socket.addEventListener('recovering', () => console.log('link lost: recovering'));
socket.addEventListener('recovered', () => console.log('recovered'));
await once(socket as unknown as EventTarget, 'open');

const nextMessage = () =>
  once(socket as unknown as EventTarget, 'message').then(([event]) => String((event as MessageEvent).data));

for (let cut = 1; cut <= 2; cut++) {
  const recovering = once(socket as unknown as EventTarget, 'recovering');
  for (const client of server.clients) client.terminate(); // the server drops us without a close frame
  await recovering;
  const echo = nextMessage();
  socket.send(`message ${cut}`); // accepted while recovering, written once the link is back
  console.log(await echo);
}

socket.close();
await once(socket as unknown as EventTarget, 'close');
server.close();
