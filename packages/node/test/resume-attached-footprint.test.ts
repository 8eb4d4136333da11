// Heap per attached resume session over `ws` (issue 13: at most 2x a plain `ws` server's heap per
// connection). Heap snapshots of 1,000 attached sessions (docs/benchmarks.md, "Attached session:
// where the heap goes") found, per session, beyond what a plain `ws` server holds: three listener
// closures and their context from the adapter (~0.2 KB), the peer's address read at every upgrade
// and cached by `net` with an object of its own (~90 B, for a limit off by default), two clock
// fields on the link, each a 16 B heap number, and a closure and context for the link's output
// overflow (~0.1 KB). The framed TCP adapter did the same (three closures and their context, the
// address read at every connection: 4.48-4.56 KB per attached TCP session, 4.15-4.24 KB after).
// White-box: these count what is made, not timings.
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import { encodeHello } from '@lifeline/core/internal';
import { FRAME_HEADER_BYTES, FrameType, writeFrameHeader } from '@lifeline/core/internal/server';
import type { ServerLinkPort } from '@lifeline/core/resume/server';
import { ResumeServer } from '@lifeline/core/resume/server';
import { createResumeServer, type NodeResumeServer } from '@lifeline/node/server';
import { FramedSocket } from '@lifeline/node/tcp';
import { expect, test, vi } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';
import { RawResumeClient } from './support/raw-resume-client.js';
import { waitFor } from './support/tcp-servers.js';

/** Counts every read of `socket.remoteAddress` in `reads.count` (a getter of its own over net's). */
function countAddressReads(socket: Socket, reads: { count: number }): void {
  const read = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(socket), 'remoteAddress')!.get!;
  Object.defineProperty(socket, 'remoteAddress', {
    get() {
      reads.count++;
      return read.call(socket);
    },
  });
}

async function attachedSessions(count: number, options: Parameters<typeof createResumeServer>[0] = {}) {
  const server: NodeResumeServer = createResumeServer(options);
  cleanups.push(() => server.close());
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
  // Counts reads of each connection's remote address (registered before the server's listener).
  const reads = { count: 0 };
  wss.on('connection', (_socket: WebSocket, request: IncomingMessage) =>
    countAddressReads(request.socket as Socket, reads),
  );
  server.attach(wss);
  const { port } = wss.address() as { port: number };
  const clients = await Promise.all(
    Array.from({ length: count }, () => RawResumeClient.connect(`ws://127.0.0.1:${port}`)),
  );
  cleanups.push(() => Promise.all(clients.map((client) => client.close())));
  for (const client of clients) client.send(encodeHello(undefined, 0));
  const answers = await Promise.all(clients.map((client) => client.nextOf(['welcome'])));
  expect(answers.map((answer) => answer?.type)).toEqual(Array(count).fill('welcome'));
  return { server, sockets: [...wss.clients], addressReads: () => reads.count };
}

test('attached sessions over ws share the adapter listeners and, without a per-address limit, never read the address', async () => {
  const { server, sockets, addressReads } = await attachedSessions(3);
  expect(server.sessions.size).toBe(3);
  expect(sockets).toHaveLength(3);
  for (const event of ['message', 'error', 'close'] as const) {
    const listeners = sockets.map((socket) => socket.listeners(event));
    // The adapter's listener is one function for every connection: no closure (and context) per
    // session. (`ws` adds a 'close' listener of its own per connection, as it does for a plain
    // server, to forget the socket.)
    const shared = listeners[0]!.filter((listener) => listeners.every((own) => own.includes(listener)));
    expect(shared, event).toHaveLength(1);
    if (event !== 'close') for (const own of listeners) expect(own).toHaveLength(1);
  }
  expect(addressReads()).toBe(0);
});

test('with a per-address limit the address is read once per connection, at the upgrade', async () => {
  const { server, addressReads } = await attachedSessions(3, { maxSessionsPerAddress: 5 });
  expect(server.sessions.size).toBe(3);
  expect(addressReads()).toBe(3);
});

test('a link holds one clock field (a heap number each), not two, and no overflow closure', () => {
  const opened = 1_764_000_000_000;
  const server = new ResumeServer({ now: () => opened });
  const port: ServerLinkPort = { send() {}, close() {} };
  const link = server.accept(port);
  cleanups.push(() => server.close());
  const clocks = Object.entries(link).filter(([, value]) => value === opened);
  expect(clocks.map(([name]) => name)).toEqual(['lastSeen']);
  expect(Object.keys(link).length).toBeLessThanOrEqual(12);
  // Its output's overflow reaches it through the port (`drop_`), not through a closure of its own.
  const output = (link as unknown as { output: { overflow?: unknown; port: { drop_?: unknown } } }).output;
  expect(output.overflow).toBeUndefined();
  expect(typeof output.port.drop_).toBe('function');
});

test('a ws socket emitted twice as a connection of the same attached wss is served by one link, not two', async () => {
  // With the listeners shared, a second `accept` for the same socket would replace the first
  // link's WeakMap entry and add the same listeners again: each message reached the second link
  // twice (its HELLO refused as a second HELLO, 1002) and the first link, fed nothing, stayed in
  // the server until its handshake timeout. One socket, one link.
  const server = createResumeServer();
  cleanups.push(() => server.close({ goAway: false }));
  const wss = new WebSocketServer({ noServer: true });
  cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
  const http = createHttpServer();
  http.on('upgrade', (request, socket, head) =>
    wss.handleUpgrade(request, socket, head, (ws) => {
      wss.emit('connection', ws, request);
      wss.emit('connection', ws, request);
    }),
  );
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  cleanups.push(() => new Promise((resolve) => http.close(resolve)));
  server.attach(wss);
  const { port } = http.address() as { port: number };
  const client = await RawResumeClient.connect(`ws://127.0.0.1:${port}`);
  cleanups.push(() => client.close());
  expect((server.toJSON() as { links: number }).links).toBe(1);
  const [socket] = [...wss.clients];
  for (const event of ['message', 'error'] as const) expect(socket!.listeners(event), event).toHaveLength(1);
  client.send(encodeHello(undefined, 0));
  expect((await client.nextOf(['welcome', 'reject']))?.type).toBe('welcome');
  expect(server.sessions.size).toBe(1);
  expect(server.stats.protocolErrors).toBe(0);
  const [session] = [...server.sessions.values()];
  const detached = waitFor(session!.events$, (event) => event.type === 'detach', 5_000);
  await client.close();
  await detached;
  expect((server.toJSON() as { links: number }).links).toBe(0);
  expect(session!.connected).toBe(false);
});

/** `count` framed TCP clients attached to a resume server's net adapter: a HELLO each, answered. */
async function attachedTcpSessions(count: number, options: Parameters<typeof createResumeServer>[0] = {}) {
  const server: NodeResumeServer = createResumeServer(options);
  cleanups.push(() => server.close());
  // Every FramedSocket the adapter listens on (the adapter's listeners are on it, not on the socket).
  const framed = new Set<FramedSocket>();
  const emitterOn = FramedSocket.prototype.on;
  const on = vi.spyOn(FramedSocket.prototype, 'on').mockImplementation(function (
    this: FramedSocket,
    ...args: Parameters<FramedSocket['on']>
  ) {
    framed.add(this);
    return emitterOn.apply(this, args);
  });
  cleanups.push(() => on.mockRestore());
  const netServer = createNetServer();
  // Counts reads of each connection's remote address (registered before the server's listener).
  const reads = { count: 0 };
  netServer.on('connection', (socket: Socket) => countAddressReads(socket, reads));
  server.attach(netServer);
  netServer.listen(0, '127.0.0.1');
  await once(netServer, 'listening');
  cleanups.push(() => new Promise((resolve) => netServer.close(resolve)));
  const { port } = netServer.address() as { port: number };
  const hello = encodeHello(undefined, 0);
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + hello.length);
  writeFrameHeader(frame, 0, hello.length, FrameType.Data);
  frame.set(hello, FRAME_HEADER_BYTES);
  const clients = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const client = netConnect(port, '127.0.0.1');
          client.on('error', reject);
          // The WELCOME (or anything the server answers) arrives as data.
          client.once('data', () => resolve(client));
          client.write(frame);
        }),
    ),
  );
  cleanups.push(() => {
    for (const client of clients) client.destroy();
  });
  // Each client had its WELCOME: every session is attached.
  expect([...server.sessions.values()].filter((session) => session.connected)).toHaveLength(count);
  return { server, framed: [...framed], addressReads: () => reads.count };
}

test('attached sessions over framed TCP share the adapter listeners and, without a per-address limit, never read the address', async () => {
  const { framed, addressReads } = await attachedTcpSessions(3);
  expect(framed).toHaveLength(3);
  for (const event of ['message', 'error', 'close'] as const) {
    const listeners = framed.map((socket) => socket.listeners(event));
    // One listener each, the same function for every connection: no closure (and context) per session.
    for (const own of listeners) expect(own, event).toHaveLength(1);
    expect(new Set(listeners.flat()).size, event).toBe(1);
  }
  expect(addressReads()).toBe(0);
});

test('over framed TCP with a per-address limit the address is read once per connection', async () => {
  const { server, addressReads } = await attachedTcpSessions(3, { maxSessionsPerAddress: 5 });
  expect(server.sessions.size).toBe(3);
  expect(addressReads()).toBe(3);
});

test('a TCP socket emitted twice as a connection of the same attached net server is served by one link, not two', async () => {
  // Before, each emission framed the socket again and accepted a second link: both read every
  // byte, the HELLO reached two links, and one of them was left over.
  const server = createResumeServer();
  cleanups.push(() => server.close({ goAway: false }));
  const netServer = createNetServer();
  // Registered before the server's listener: every connection is emitted a second time, as a
  // user's own handler might.
  let repeated = 0;
  netServer.on('connection', (socket: Socket) => {
    if (repeated++ % 2 === 0) netServer.emit('connection', socket);
  });
  server.attach(netServer);
  netServer.listen(0, '127.0.0.1');
  await once(netServer, 'listening');
  cleanups.push(() => new Promise((resolve) => netServer.close(resolve)));
  const { port } = netServer.address() as { port: number };
  const hello = encodeHello(undefined, 0);
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + hello.length);
  writeFrameHeader(frame, 0, hello.length, FrameType.Data);
  frame.set(hello, FRAME_HEADER_BYTES);
  const client = netConnect(port, '127.0.0.1');
  cleanups.push(() => client.destroy());
  client.on('error', () => {});
  await once(client, 'connect');
  client.write(frame);
  // The server's answer (a WELCOME, 41 bytes framed; a second HELLO would be refused): the
  // connection was handled by then.
  const [answer] = (await once(client, 'data')) as [Buffer];
  expect(answer.length).toBe(41);
  expect(repeated).toBe(2);
  expect((server.toJSON() as { links: number }).links).toBe(1);
  expect(server.sessions.size).toBe(1);
  const [session] = [...server.sessions.values()];
  expect(session!.connected).toBe(true);
  expect(server.stats.protocolErrors).toBe(0);
  const detached = waitFor(session!.events$, (event) => event.type === 'detach', 5_000);
  client.destroy();
  await detached;
  expect((server.toJSON() as { links: number }).links).toBe(0);
});
