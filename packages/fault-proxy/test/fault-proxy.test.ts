import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy, type FaultResetInfo } from '../src/index.js';

/** A socket with everything it received and how it ended, so tests can await byte counts. */
class Peer extends EventEmitter {
  readonly chunks: Buffer[] = [];
  error: NodeJS.ErrnoException | undefined;
  isClosed = false;
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    super();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.emit('progress');
    });
    socket.on('error', (error) => {
      this.error = error;
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.emit('progress');
        resolve();
      }),
    );
  }

  get bytes(): number {
    return this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  /** Resolves once `n` bytes arrived; rejects if the socket closed before. */
  waitForBytes(n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.bytes >= n) {
          this.off('progress', check);
          resolve();
        } else if (this.isClosed) {
          this.off('progress', check);
          reject(new Error(`closed after ${this.bytes} of ${n} bytes (${this.error?.code ?? 'no error'})`));
        }
      };
      this.on('progress', check);
      check();
    });
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(data, (error) => (error ? reject(error) : resolve())),
    );
  }
}

const servers: Server[] = [];
const peers: Peer[] = [];
const proxies: FaultProxy[] = [];

/** A real TCP server on an ephemeral loopback port; echoes unless told not to. */
async function startServer(
  echo = true,
): Promise<{ port: number; sockets: Peer[]; connections: EventEmitter }> {
  const sockets: Peer[] = [];
  const connections = new EventEmitter();
  const server = createServer((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    sockets.push(peer);
    if (echo) socket.on('data', (chunk) => socket.write(chunk));
    connections.emit('connection', peer);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { port: address.port, sockets, connections };
}

async function startProxy(targetPort: number): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ target: { port: targetPort } });
  proxies.push(proxy);
  return proxy;
}

function connectClient(port: number): Peer {
  const peer = new Peer(connect({ host: '127.0.0.1', port }));
  peers.push(peer);
  return peer;
}

/** A client whose round trip through the proxy already worked, so its upstream socket exists. */
async function connectedClient(port: number): Promise<Peer> {
  const client = connectClient(port);
  await client.write('ping');
  await client.waitForBytes(4);
  client.chunks.length = 0;
  return client;
}

/** Resolves with the first argument of the next `event`; unlike `once`, an 'error' does not reject it. */
function nextEvent<T>(emitter: EventEmitter, event: string): Promise<T> {
  return new Promise<T>((resolve) => emitter.once(event, resolve));
}

/** Resolves with the first arguments of the next `count` events named `event`. */
function collectEvents<T>(emitter: EventEmitter, event: string, count: number): Promise<T[]> {
  const values: T[] = [];
  return new Promise((resolve) => {
    const listener = (value: T) => {
      values.push(value);
      if (values.length < count) return;
      emitter.off(event, listener);
      resolve(values);
    };
    emitter.on(event, listener);
  });
}

/** Sockets, servers and timers keeping the process alive, by type: what the proxy could leak. */
function liveHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) {
    if (!/^(TCP\w*Wrap|Timeout)$/.test(type)) continue;
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * {@link liveHandles} once handles being closed are gone: a server's handle outlives its 'close' event by
 * up to two loop turns. Anything leaked stays, so the comparison still catches leaks.
 */
async function settledHandles(): Promise<Record<string, number>> {
  for (let turn = 0; turn < 5; turn++) await nextTurn();
  return liveHandles();
}

afterEach(async () => {
  for (const peer of peers.splice(0)) peer.socket.destroy();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  await Promise.all(
    servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
});

describe('FaultProxy', () => {
  it('forwards exactly the bytes sent, both ways, and counts them', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.port).toBeGreaterThan(0);
    expect(proxy.address()).toEqual({ host: '127.0.0.1', port: proxy.port });
    expect(proxy.url).toBe(`tcp://127.0.0.1:${proxy.port}`);
    expect(proxy.mode).toBe('pass');

    const connection = nextEvent<{ id: number; remotePort: number }>(proxy, 'connection');
    const client = connectClient(proxy.port);
    await proxy.waitForConnections(1);
    await once(client.socket, 'connect');
    expect(await connection).toEqual({ id: 1, remotePort: client.socket.localPort });

    const payload = randomBytes(300_000);
    await client.write(payload);
    await client.waitForBytes(payload.length);
    expect(client.data.equals(payload)).toBe(true);
    expect(server.sockets).toHaveLength(1);
    expect(server.sockets[0]!.data.equals(payload)).toBe(true);
    expect(proxy.bytesUpstream).toBe(payload.length);
    expect(proxy.bytesDownstream).toBe(payload.length);
    expect(proxy.bytesDiscarded).toBe(0);
    expect(proxy.acceptedConnections).toBe(1);
    expect(proxy.activeConnections).toBe(1);
    expect(proxy.resetCount).toBe(0);
  });

  it('forwards a FIN so a graceful close ends both sides', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const client = await connectedClient(proxy.port);
    const disconnect = nextEvent(proxy, 'disconnect');
    client.socket.end('bye');
    await client.closed;
    await disconnect;
    expect(client.text).toBe('bye');
    expect(client.error).toBeUndefined();
    expect(server.sockets[0]!.error).toBeUndefined();
    expect(proxy.activeConnections).toBe(0);
  });

  it('resetAll makes every client and the server see ECONNRESET and counts the resets', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const clients = [await connectedClient(proxy.port), await connectedClient(proxy.port)];
    const resets = collectEvents<FaultResetInfo>(proxy, 'reset', 2);
    const disconnects = collectEvents(proxy, 'disconnect', 2);

    proxy.resetAll();

    expect(proxy.resetCount).toBe(2);
    expect(await resets).toEqual([
      { id: 1, reason: 'reset-all' },
      { id: 2, reason: 'reset-all' },
    ]);
    await Promise.all([...clients, ...server.sockets].map((peer) => peer.closed));
    for (const peer of [...clients, ...server.sockets]) expect(peer.error?.code).toBe('ECONNRESET');
    await disconnects;
    expect(proxy.activeConnections).toBe(0);
    expect(proxy.acceptedConnections).toBe(2);

    // The proxy itself keeps working for the reconnect.
    const again = await connectedClient(proxy.port);
    await again.write('back');
    await again.waitForBytes(4);
    expect(again.text).toBe('back');
    expect(proxy.resetCount).toBe(2);
  });

  it("blackhole({ closes: 'hold' }) is a partition: a client's FIN does not reach the server until pass()", async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const client = await connectedClient(proxy.port);
    const serverSide = server.sockets[0]!;

    proxy.blackhole({ closes: 'hold' });
    // The hold event proves the proxy read the FIN and kept it, so no sleep is needed.
    const held = nextEvent(proxy, 'hold');
    client.socket.end();
    expect(await held).toEqual({ id: 1, direction: 'upstream' });
    expect(serverSide.isClosed).toBe(false);
    expect(serverSide.socket.readableEnded).toBe(false);
    expect(proxy.activeConnections).toBe(1);

    // The path is back: the FIN is delivered, as TCP retransmits it.
    proxy.pass();
    await serverSide.closed;
    expect(serverSide.socket.readableEnded).toBe(true);
  });

  it('blackhole drops data both ways on open and new connections until pass()', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const old = await connectedClient(proxy.port);
    const upstreamBefore = proxy.bytesUpstream;
    const downstreamBefore = proxy.bytesDownstream;

    proxy.blackhole();
    expect(proxy.mode).toBe('blackhole');
    // The discard event proves the proxy read the bytes and dropped them, so no sleep is needed.
    const lostUp = nextEvent(proxy, 'discard');
    await old.write('lost-up');
    expect(await lostUp).toEqual({ id: 1, direction: 'upstream', bytes: 7 });
    const lostDown = nextEvent(proxy, 'discard');
    await server.sockets[0]!.write('lost-down');
    expect(await lostDown).toEqual({ id: 1, direction: 'downstream', bytes: 9 });

    // New connections are accepted and kept open, but nothing crosses them either.
    const serverSide = nextEvent<Peer>(server.connections, 'connection');
    const fresh = connectClient(proxy.port);
    await proxy.waitForConnections(2);
    await serverSide;
    const lostFresh = nextEvent(proxy, 'discard');
    await fresh.write('lost-fresh');
    expect(await lostFresh).toEqual({ id: 2, direction: 'upstream', bytes: 10 });

    expect(proxy.bytesUpstream).toBe(upstreamBefore);
    expect(proxy.bytesDownstream).toBe(downstreamBefore);
    expect(proxy.bytesDiscarded).toBe(7 + 9 + 10);
    expect(proxy.activeConnections).toBe(2);

    proxy.pass();
    expect(proxy.mode).toBe('pass');
    // TCP keeps order within a connection: had the dropped bytes been forwarded, they would arrive first.
    await old.write('after');
    await old.waitForBytes(5);
    expect(old.text).toBe('after');
    expect(server.sockets[0]!.text).toBe('pingafter');
    await fresh.write('fresh');
    await fresh.waitForBytes(5);
    expect(fresh.text).toBe('fresh');
    expect(server.sockets[1]!.text).toBe('fresh');
    expect([old.isClosed, fresh.isClosed]).toEqual([false, false]);
    expect(proxy.bytesUpstream).toBe(upstreamBefore + 10);
  });

  it('refuseNewConnections resets new clients at once and leaves open ones alone', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const old = await connectedClient(proxy.port);

    proxy.refuseNewConnections();
    expect(proxy.mode).toBe('refuse');
    const refused = nextEvent(proxy, 'reset');
    const rejected = connectClient(proxy.port);
    expect(await refused).toEqual({ id: 2, reason: 'refused' });
    await rejected.closed;
    expect(rejected.error?.code).toBe('ECONNRESET');
    expect(proxy.refusedConnections).toBe(1);
    expect(proxy.resetCount).toBe(1);
    expect(proxy.acceptedConnections).toBe(1);
    expect(server.sockets).toHaveLength(1);

    await old.write('still-here');
    await old.waitForBytes(10);
    expect(old.text).toBe('still-here');

    proxy.refuseNewConnections(false);
    expect(proxy.mode).toBe('pass');
    const accepted = await connectedClient(proxy.port);
    await accepted.write('welcome');
    await accepted.waitForBytes(7);
    expect(accepted.text).toBe('welcome');
    expect(proxy.acceptedConnections).toBe(2);
  });

  it('setDelay delays each chunk both ways and keeps their order', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const client = await connectedClient(proxy.port);
    proxy.setDelay(40);

    const started = performance.now();
    const messages = Array.from({ length: 50 }, (_, i) => `message-${i};`);
    for (const message of messages) client.socket.write(message);
    const expected = messages.join('');
    await client.waitForBytes(expected.length);
    expect(client.text).toBe(expected);
    expect(server.sockets[0]!.text).toBe(`ping${expected}`);
    // One delay on the way up and one on the way down; timers never fire early by more than a millisecond.
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * 40 - 2);

    // Lowering the delay must not let later chunks overtake ones still held back.
    client.chunks.length = 0;
    proxy.setDelay(300);
    const held = nextEvent(proxy, 'delay');
    await client.write('first;');
    expect(await held).toEqual({ id: 1, direction: 'upstream', bytes: 6 });
    proxy.setDelay(0);
    await client.write('second;');
    await client.waitForBytes(13);
    expect(client.text).toBe('first;second;');
    expect(server.sockets[0]!.text).toBe(`ping${expected}first;second;`);
  });

  it('cutAfterBytes resets a connection after exactly n bytes downstream', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const client = await connectedClient(proxy.port);
    const downstreamBefore = proxy.bytesDownstream;
    const reset = nextEvent(proxy, 'reset');

    proxy.cutAfterBytes(200_000);
    await client.write(randomBytes(1_000_000)).catch(() => {});
    await client.closed;

    expect(client.bytes).toBe(200_000);
    expect(client.error?.code).toBe('ECONNRESET');
    expect(await reset).toEqual({ id: 1, reason: 'cut' });
    expect(proxy.bytesDownstream - downstreamBefore).toBe(200_000);
    expect(proxy.resetCount).toBe(1);
    await server.sockets[0]!.closed;
    expect(server.sockets[0]!.error?.code).toBe('ECONNRESET');
  });

  it('cutAfterBytes counts from when it was set and applies to new connections', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const old = await connectedClient(proxy.port);
    await old.write('x'.repeat(500));
    await old.waitForBytes(500);

    proxy.cutAfterBytes(100);
    await old.write('y'.repeat(500)).catch(() => {});
    await old.closed;
    expect(old.text).toBe('x'.repeat(500) + 'y'.repeat(100));

    const fresh = connectClient(proxy.port);
    await fresh.write('z'.repeat(500)).catch(() => {});
    await fresh.closed;
    expect(fresh.text).toBe('z'.repeat(100));
    expect(fresh.error?.code).toBe('ECONNRESET');
    expect(proxy.resetCount).toBe(2);

    proxy.cutAfterBytes(Number.POSITIVE_INFINITY);
    const uncut = connectClient(proxy.port);
    await uncut.write('w'.repeat(500));
    await uncut.waitForBytes(500);
    expect(uncut.isClosed).toBe(false);
  });

  it('cutAfterBytes upstream delivers exactly n bytes to the server', async () => {
    const server = await startServer(false);
    const proxy = await startProxy(server.port);
    const serverSide = nextEvent<Peer>(server.connections, 'connection');
    const client = connectClient(proxy.port);
    const peer = await serverSide;

    proxy.cutAfterBytes(10, 'upstream');
    await client.write('0123456789abcdef').catch(() => {});
    await Promise.all([peer.closed, client.closed]);
    expect(peer.text).toBe('0123456789');
    expect(peer.error?.code).toBe('ECONNRESET');
    expect(client.error?.code).toBe('ECONNRESET');
    expect(proxy.bytesUpstream).toBe(10);
  });

  it('cutAfterBytes both gives each direction its own budget', async () => {
    const server = await startServer(false);
    const proxy = await startProxy(server.port);
    const serverSide = nextEvent<Peer>(server.connections, 'connection');
    const client = connectClient(proxy.port);
    const peer = await serverSide;

    proxy.cutAfterBytes(5, 'both');
    await client.write('abc');
    await peer.waitForBytes(3);
    await peer.write('ABC');
    await client.waitForBytes(3);
    await client.write('defgh').catch(() => {});
    await Promise.all([peer.closed, client.closed]);
    expect(peer.text).toBe('abcde');
    expect(client.text).toBe('ABC');
    expect(proxy.resetCount).toBe(1);
  });

  it('resets the client quickly when the server is down', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));

    const reset = nextEvent(proxy, 'reset');
    const client = connectClient(proxy.port);
    expect(await reset).toEqual({ id: 1, reason: 'upstream-unreachable' });
    await client.closed;
    expect(client.error?.code).toBe('ECONNRESET');
    expect(proxy.resetCount).toBe(1);
  });

  it('waitForConnections rejects after its timeout and when the proxy closes', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port);
    await expect(proxy.waitForConnections(1, 20)).rejects.toThrow('accepted 0 of 1 connections in 20 ms');
    const pending = expect(proxy.waitForConnections(1)).rejects.toThrow('closed');
    await proxy.close();
    await pending;
    await expect(proxy.waitForConnections(1)).rejects.toThrow('closed');
  });

  it('only listens on loopback and validates its arguments', async () => {
    await expect(FaultProxy.start({ host: '0.0.0.0', target: { port: 1 } })).rejects.toThrow('loopback');
    await expect(FaultProxy.start({ target: { port: 0 } })).rejects.toThrow('target.port');
    const server = await startServer();
    const proxy = await startProxy(server.port);
    expect(() => proxy.setDelay(-1)).toThrow(RangeError);
    expect(() => proxy.cutAfterBytes(Number.NaN)).toThrow(RangeError);
    expect(() => proxy.cutAfterBytes(1.5)).toThrow(RangeError);
  });

  it('close() leaves no socket or timer behind and is idempotent', async () => {
    const before = await settledHandles();
    const server = await startServer();
    const proxy = await startProxy(server.port);
    const clients = [await connectedClient(proxy.port), await connectedClient(proxy.port)];
    // Park a chunk behind a long delay so a delay timer is pending at close.
    proxy.setDelay(60_000);
    const parked = nextEvent(proxy, 'delay');
    await clients[0]!.write('parked');
    await parked;
    // Proves the final comparison is meaningful: 2 clients, 2 accepted, 2 upstream and 2 server sockets.
    expect(liveHandles().TCPSocketWrap ?? 0).toBeGreaterThanOrEqual((before.TCPSocketWrap ?? 0) + 8);
    const pendingWait = expect(proxy.waitForConnections(10)).rejects.toThrow('closed');

    const disposed = proxy[Symbol.asyncDispose]();
    expect(proxy.close()).toBe(disposed);
    await disposed;
    await pendingWait;
    expect(proxy.activeConnections).toBe(0);
    await Promise.all(clients.map((client) => client.closed));
    for (const peer of peers.splice(0)) peer.socket.destroy();
    await Promise.all(server.sockets.map((peer) => peer.closed));
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    const after = await settledHandles();
    expect(after.TCPSocketWrap ?? 0).toBe(before.TCPSocketWrap ?? 0);
    expect(after.TCPServerWrap ?? 0).toBe(before.TCPServerWrap ?? 0);
    // The test runner's own timers come and go, so only extra ones count as a leak.
    expect(after.Timeout ?? 0).toBeLessThanOrEqual(before.Timeout ?? 0);
    await proxy.close();
  });
});
