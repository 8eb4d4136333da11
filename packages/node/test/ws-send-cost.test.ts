/**
 * What one `HAWebSocket` send costs (issue 13): `send()` makes no promise, and the writes of one
 * tick are confirmed by one callback on the TCP socket instead of a `ws` send callback each (a
 * callback doubles `ws`'s own send cost). Confirmation still holds: every `sendAsync` settles, in
 * order, with and without an extension (permessage-deflate makes `ws` hold frames back, so there
 * each send is confirmed by its own callback).
 */
import { once } from 'node:events';
import { waitFor } from '@lifeline/core/testing';
import { HAWebSocket, wsCapabilities } from '@lifeline/node/ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cleanups } from './support/cleanups.js';
import { promisesMadeBy } from './support/promise-count.js';
import { EchoServer } from './support/ws-servers.js';

const COUNT = 1_000;

async function openSocket(server: EchoServer): Promise<InstanceType<typeof HAWebSocket>> {
  const socket = new HAWebSocket(server.url);
  cleanups.push(() => socket.close());
  await once(socket as unknown as EventTarget, 'open');
  return socket;
}

function echoes(socket: InstanceType<typeof HAWebSocket>, count: number): Promise<string[]> {
  const received: string[] = [];
  return new Promise((resolve) => {
    socket.onmessage = (event) => {
      received.push(String(event.data));
      if (received.length === count) resolve(received);
    };
  });
}

/** The first `count` binary messages the socket receives, as Buffers; `all` settles once they are in. */
function receiveBuffers(socket: InstanceType<typeof HAWebSocket>, count: number) {
  socket.binaryType = 'nodebuffer';
  const received: Buffer[] = [];
  const all = new Promise<void>((resolve) => {
    socket.onmessage = (event) => {
      received.push(event.data as Buffer);
      if (received.length === count) resolve();
    };
  });
  return { received, all };
}

/** Counts `ws` sends made with a callback while `body` runs (ws's prototype, restored after). */
async function countCallbackSends(body: () => Promise<void>): Promise<number> {
  const original = WebSocket.prototype.send;
  let withCallback = 0;
  WebSocket.prototype.send = function (this: WebSocket, ...args: unknown[]) {
    if (typeof args[args.length - 1] === 'function') withCallback++;
    return (original as (...a: unknown[]) => void).apply(this, args);
  } as typeof original;
  try {
    await body();
  } finally {
    WebSocket.prototype.send = original;
  }
  return withCallback;
}

describe('HAWebSocket send cost', () => {
  it('send() makes no promise per message; every message arrives once, in order', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const all = echoes(socket, COUNT);
    const promises = promisesMadeBy(() => {
      for (let i = 0; i < COUNT; i++) socket.send(`m${i}`);
    });
    // Three or four per send before (the caller's, the link's, their reactions).
    expect(promises).toBeLessThan(10);
    expect(await all).toEqual(Array.from({ length: COUNT }, (_, i) => `m${i}`));
  });

  it('the sends of one tick are confirmed together, without a ws callback per message; every sendAsync resolves, in order', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const all = echoes(socket, COUNT);
    const order: number[] = [];
    const callbacks = await countCallbackSends(async () => {
      await Promise.all(
        Array.from({ length: COUNT }, (_, i) => socket.sendAsync(`m${i}`).then(() => order.push(i))),
      );
    });
    expect(callbacks).toBe(0);
    expect(order).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(socket.bufferedAmount).toBe(0);
    expect(await all).toEqual(Array.from({ length: COUNT }, (_, i) => `m${i}`));
  });

  it("a Buffer send: the outbox's copy is one constructor call (no `set`) and the link's `sendWith` getter is read once", async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const { received, all } = receiveBuffers(socket, COUNT);
    // The link is the connection's; its class defines `sendWith` as a getter.
    const link = (socket as unknown as { connection: { link: object } }).connection.link;
    const proto = Object.getPrototypeOf(link) as object;
    const getter = Object.getOwnPropertyDescriptor(proto, 'sendWith')!;
    const set = Uint8Array.prototype.set;
    let reads = 0;
    let sets = 0;
    Object.defineProperty(proto, 'sendWith', {
      ...getter,
      get(this: object) {
        reads++;
        return getter.get!.call(this);
      },
    });
    Uint8Array.prototype.set = function (this: Uint8Array, ...args: unknown[]) {
      sets++;
      return (set as (...a: unknown[]) => void).apply(this, args);
    } as typeof set;
    const buffer = Buffer.alloc(64);
    try {
      for (let i = 0; i < COUNT; i++) {
        buffer.writeUInt32LE(i, 0);
        socket.send(buffer);
      }
    } finally {
      Uint8Array.prototype.set = set;
      Object.defineProperty(proto, 'sendWith', getter);
    }
    buffer.fill(0xee);
    // Three reads and one `set` per send before.
    expect({ reads, sets }).toEqual({ reads: COUNT, sets: 0 });
    await all;
    expect(received.map((data) => data.readUInt32LE(0))).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(received.every((data) => data.length === 64 && data.subarray(4).every((byte) => byte === 0))).toBe(
      true,
    );
  });

  it('with permessage-deflate negotiated, each send is confirmed by its own callback; all resolve, in order', async () => {
    const server = await EchoServer.start({ perMessageDeflate: { threshold: 0 } });
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const all = echoes(socket, COUNT);
    const order: number[] = [];
    const callbacks = await countCallbackSends(async () => {
      await Promise.all(
        Array.from({ length: COUNT }, (_, i) => socket.sendAsync(`m${i}`).then(() => order.push(i))),
      );
    });
    expect(callbacks).toBe(COUNT);
    expect(order).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(await all).toEqual(Array.from({ length: COUNT }, (_, i) => `m${i}`));
  });

  it.each([
    ['no extension', {}],
    ['permessage-deflate', { perMessageDeflate: { threshold: 0 } }],
  ])(
    'the caller may reuse its buffer at once (%s): what arrives is what was passed',
    async (_name, options) => {
      const server = await EchoServer.start(options);
      cleanups.push(() => server.close());
      const socket = await openSocket(server);
      socket.binaryType = 'nodebuffer';
      const received: Buffer[] = [];
      const all = new Promise<void>((resolve) => {
        socket.onmessage = (event) => {
          received.push(event.data as Buffer);
          if (received.length === 100) resolve();
        };
      });
      const buffer = Buffer.alloc(64);
      for (let i = 0; i < 100; i++) {
        buffer.fill(i);
        socket.send(buffer);
      }
      buffer.fill(255);
      await all;
      expect(received.map((data) => [data.length, data[0], data[63]])).toEqual(
        Array.from({ length: 100 }, (_, i) => [64, i, i]),
      );
    },
  );

  it('sends cut before they left the client are rewritten on the next link with the bytes passed: each once, in order, intact', async () => {
    // The caller reuses its buffer at once, and the TCP socket dies with the tick's writes still
    // corked, so none reached the server and every one must come from what the outbox kept.
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url, { backoff: { initialDelayMs: 10, maxDelayMs: 50 } });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const { received, all } = receiveBuffers(socket, COUNT);
    // The client's ws, as the sends reach it.
    let ws: WebSocket | undefined;
    const original = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, ...args: unknown[]) {
      ws = this;
      return (original as (...a: unknown[]) => void).apply(this, args);
    } as typeof original;
    const buffer = Buffer.alloc(64);
    try {
      for (let i = 0; i < COUNT; i++) {
        buffer.fill(i & 0xff);
        buffer.writeUInt32LE(i, 0);
        socket.send(buffer);
      }
    } finally {
      WebSocket.prototype.send = original;
    }
    buffer.fill(0xee);
    (ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
    await all;
    const indexes = received.map((data) => data.readUInt32LE(0));
    const corrupt = received.filter(
      (data, k) => data.length !== 64 || data.subarray(4).some((byte) => byte !== (indexes[k]! & 0xff)),
    );
    expect({
      received: indexes.length,
      duplicated: indexes.length - new Set(indexes).size,
      outOfOrder: indexes.filter((index, k) => k > 0 && index < indexes[k - 1]!).length,
      corrupt: corrupt.length,
    }).toEqual({ received: COUNT, duplicated: 0, outOfOrder: 0, corrupt: 0 });
    expect(indexes).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    // Written on the second link: the first one never carried them.
    expect(server.accepted).toBe(2);
  });

  it('after a Blob, which ws reads asynchronously and queues later frames behind, a buffer is still sent as passed', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const { received, all } = receiveBuffers(socket, 4);
    const buffer = Buffer.alloc(4, 0x11);
    socket.send(buffer); // a tick's batch is open
    socket.send(new Blob([Buffer.alloc(4, 0x99)]));
    socket.send(buffer);
    const last = socket.sendAsync(Buffer.alloc(4, 0x33));
    buffer.fill(0x22);
    await last;
    await all;
    expect(received.map((data) => data.toString('hex'))).toEqual([
      '11111111',
      '99999999',
      '11111111',
      '33333333',
    ]);
    // Every send settled: nothing left in the outbox, nothing buffered by ws.
    await waitFor(() => socket.bufferedAmount === 0, { what: 'every send confirmed' });
  });

  it('the choice between a tick batch and a callback per frame is made once per tick, not per send', async () => {
    // `ws` builds its `extensions` string (Object.keys(...).join()) on every read: it was read once
    // per send, and is fixed once the socket is open, so it is looked at when a batch opens.
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const all = echoes(socket, COUNT);
    const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'extensions')!;
    let reads = 0;
    Object.defineProperty(WebSocket.prototype, 'extensions', {
      ...descriptor,
      get(this: WebSocket) {
        reads++;
        return descriptor.get!.call(this);
      },
    });
    try {
      for (let i = 0; i < COUNT; i++) socket.send(`m${i}`);
    } finally {
      Object.defineProperty(WebSocket.prototype, 'extensions', descriptor);
    }
    // One tick: one batch, one read (1,000 before).
    expect(reads).toBeLessThanOrEqual(2);
    expect(await all).toEqual(Array.from({ length: COUNT }, (_, i) => `m${i}`));
    // Every send of the batch is confirmed (released from the outgoing queue).
    await waitFor(() => socket.bufferedAmount === 0, { what: 'the batch confirmed' });
  });

  it('a batch given two confirmation functions in one tick calls each with its own tokens, in write order', async () => {
    // The engine passes one function per link; a batch keeps that one, and keeps one per token
    // only once another function writes on the same socket in the same tick.
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new WebSocket(server.url);
    cleanups.push(() => socket.terminate());
    await once(socket, 'open');
    const calls: string[] = [];
    const first = (error: unknown, token: object) =>
      calls.push(`first ${(token as { n: number }).n} ${error}`);
    const second = (error: unknown, token: object) =>
      calls.push(`second ${(token as { n: number }).n} ${error}`);
    const all = new Promise<void>((resolve) => {
      let echoed = 0;
      socket.on('message', () => {
        if (++echoed === 5) resolve();
      });
    });
    for (const [n, confirm] of [first, first, second, first, second].entries()) {
      wsCapabilities.sendWith(socket, `m${n}`, confirm, { n });
    }
    await all;
    await waitFor(() => calls.length === 5, { what: 'five confirmations' });
    expect(calls).toEqual([
      'first 0 undefined',
      'first 1 undefined',
      'second 2 undefined',
      'first 3 undefined',
      'second 4 undefined',
    ]);
  });

  it('sends written in the tick the client closes still resolve (flushed before the close frame)', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = await openSocket(server);
    const sends = Array.from({ length: 100 }, (_, i) => socket.sendAsync(`m${i}`));
    socket.close();
    const outcomes = await Promise.allSettled(sends);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(100);
  });
});
