// Child of ws-message-event-maps.test.ts: counts the MessageEvents alive in a fresh process (after
// the GC `queryObjects` runs) before `@lifeline/node/ws` is imported, after, and after an
// HAWebSocket received 200 messages and closed; prints them as one JSON line.
import { once } from 'node:events';
import { queryObjects } from 'node:v8';
import { WebSocketServer } from 'ws';

const count = () => queryObjects(MessageEvent, { format: 'count' }) as number;
const before = count();
const { HAWebSocket } = await import('@lifeline/node/ws');
const imported = count();

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await once(server, 'listening');
server.on('connection', (peer) =>
  peer.on('message', (data, isBinary) => peer.send(data, { binary: isBinary })),
);
const socket = new HAWebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
let received = 0;
const all = new Promise<void>((resolve) => {
  socket.addEventListener('message', () => {
    if (++received === 200) resolve();
  });
});
await once(socket as unknown as EventTarget, 'open');
for (let i = 0; i < 200; i++) socket.send(i % 2 ? `m${i}` : Buffer.alloc(64, i));
await all;
const closed = once(socket as unknown as EventTarget, 'close');
socket.close();
await closed;
server.close();
const afterTraffic = count();
process.stdout.write(`${JSON.stringify({ before, imported, afterTraffic, received })}\n`);
