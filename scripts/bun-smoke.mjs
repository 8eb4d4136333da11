// Bun smoke test: the BUILT packages (dist, as published) under Bun. A `ws` server on port 0
// echoes; HAWebSocket from @lifeline/node/ws sends three messages, the server is closed under it
// and restarted on the same port, and the socket must recover and echo again. Bounded by a 60 s
// timer; prints "N passed, N failed" and exits non-zero on failure.
//   .cache/runtimes/bun/bin/bun scripts/bun-smoke.mjs

import { HAWebSocket as BrowserHAWebSocket } from '../packages/browser/dist/index.js';
import { LifelineError } from '../packages/node/dist/index.js';
import { HAWebSocket } from '../packages/node/dist/ws.js';
import { WebSocketServer } from '../packages/node/node_modules/ws/wrapper.mjs';
import { expectedLog, handlerScenario } from '../packages/node/test/support/handler-scenario.ts';

const guard = setTimeout(() => {
  console.log('bun smoke: timed out after 60 s');
  console.log('0 passed, 1 failed');
  process.exit(1);
}, 60_000);
const results = [];
const check = (name, ok, detail = '') => {
  results.push(ok);
  console.log(`${ok ? 'ok' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
};

function echoServer(port = 0) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  wss.on('connection', (socket) =>
    socket.on('message', (data, binary) => socket.send(binary ? data : String(data))),
  );
  return new Promise((resolve) => wss.once('listening', () => resolve(wss)));
}
const closeServer = (wss) =>
  new Promise((resolve) => {
    for (const client of wss.clients) client.terminate();
    wss.close(() => resolve());
  });

async function roundTrip(Ctor, label) {
  let wss = await echoServer();
  const port = wss.address().port;
  const socket = new Ctor(`ws://127.0.0.1:${port}/echo`);
  const received = [];
  let waiter;
  socket.onmessage = (event) => {
    received.push(String(event.data));
    waiter?.();
  };
  const until = (count) =>
    new Promise((resolve) => {
      waiter = () => received.length >= count && resolve();
      waiter();
    });
  await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
  for (const m of ['one', 'two', 'three']) socket.send(m);
  await until(3);
  check(`${label}: echo`, received.join() === 'one,two,three', received.join());
  const recovered = new Promise((resolve) => socket.addEventListener('recovered', resolve, { once: true }));
  await closeServer(wss);
  wss = await echoServer(port);
  await recovered;
  socket.send('four');
  await until(4);
  check(`${label}: recovers after a server restart`, received.at(-1) === 'four', received.join());
  socket.close();
  await closeServer(wss);
}

/** The on* handler script (WHATWG event handlers): Bun's own WebSocket and HAWebSocket write the standard's log. */
async function handlers(Ctor, label) {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, done) => done(!info.req.url?.startsWith('/refuse'), 403),
  });
  wss.on('connection', (socket) =>
    socket.on('message', (data, binary) => socket.send(binary ? data : String(data))),
  );
  await new Promise((resolve) => wss.once('listening', resolve));
  const url = `ws://127.0.0.1:${wss.address().port}`;
  const log = await handlerScenario(Ctor, { echoUrl: url, refusedUrl: `${url}/refuse` });
  const expected = expectedLog();
  const first = log.findIndex((line, i) => line !== expected[i]);
  check(
    `${label}: on* handlers`,
    first < 0 && log.length === expected.length,
    first < 0 ? '' : `line ${first}: ${log[first]}`,
  );
  await closeServer(wss);
}

try {
  check('errors are branded', new LifelineError('ERR_PROTOCOL', 'x') instanceof LifelineError);
  await handlers(globalThis.WebSocket, "Bun's WebSocket");
  await handlers(HAWebSocket, '@lifeline/node/ws HAWebSocket');
  await roundTrip(HAWebSocket, '@lifeline/node/ws HAWebSocket');
  await roundTrip(BrowserHAWebSocket, "@lifeline/browser HAWebSocket (Bun's global WebSocket)");
} catch (error) {
  check('no exception', false, error?.stack ?? String(error));
}
clearTimeout(guard);
const passed = results.filter(Boolean).length;
console.log(`bun smoke (Bun ${process.versions.bun ?? 'not bun'}):`);
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
