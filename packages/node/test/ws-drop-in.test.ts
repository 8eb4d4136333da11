/**
 * `HAWebSocket` keeps the WebSocket contract where recovery could blur it: a refused message is a
 * synchronous typed throw (never a silent drop), `binaryType` applies at once, `error` fires only
 * for failures, and a message given up on is not delivered later.
 */
import { once } from 'node:events';
import { QueueOverflowError } from '@lifeline/core';
import { HAWebSocket } from '@lifeline/node/ws';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

function opened(socket: InstanceType<typeof HAWebSocket>): Promise<unknown> {
  return once(socket as unknown as EventTarget, 'open');
}

describe('no silent drops', () => {
  it('a send the queue cannot take throws QueueOverflowError synchronously; the others all arrive', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url, undefined, { queue: { maxMessages: 100 } });
    cleanups.push(() => socket.close());
    await opened(socket);
    const received: string[] = [];
    // Stop the server so sends wait in the queue, then overfill it. (Sends written on the dying
    // link before the client noticed are the in-flight loss of plain mode; resume removes it.)
    await server.close();
    await once(socket as unknown as EventTarget, 'recovering');
    let refused = 0;
    const accepted: string[] = [];
    for (let i = 0; i < 150; i++) {
      try {
        socket.send(`m${i}`);
        accepted.push(`m${i}`);
      } catch (error) {
        expect(error).toBeInstanceOf(QueueOverflowError);
        refused++;
      }
    }
    expect(accepted.length + refused).toBe(150);
    expect(refused).toBeGreaterThanOrEqual(50);
    // Every message that was accepted (and not refused) reaches the restarted server, in order.
    const allEchoed = new Promise<void>((resolve) => {
      socket.onmessage = (event) => {
        received.push(String(event.data));
        if (received.length === accepted.length) resolve();
      };
    });
    const restarted = await EchoServer.start({ port: server.port });
    cleanups.push(() => restarted.close());
    await allEchoed;
    expect(received).toEqual(accepted);
  });

  it("'drop-oldest' reports each dropped message with a dropped event", async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url, undefined, {
      queue: { maxMessages: 3, overflow: 'drop-oldest' },
    });
    cleanups.push(() => socket.close());
    await opened(socket);
    await server.close();
    await once(socket as unknown as EventTarget, 'recovering');
    const dropped: unknown[] = [];
    socket.ondropped = (event) =>
      dropped.push((event as unknown as { detail: { data: unknown } }).detail.data);
    for (let i = 0; i < 5; i++) socket.send(`m${i}`);
    expect(dropped).toEqual(['m0', 'm1']);
  });

  it('sendAsync with a signal withdraws a message still waiting: it is never delivered', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    await opened(socket);
    const received: string[] = [];
    socket.onmessage = (event) => received.push(String(event.data));
    await server.close();
    await once(socket as unknown as EventTarget, 'recovering');
    const controller = new AbortController();
    const withdrawn = socket.sendAsync('given up', { signal: controller.signal });
    const kept = socket.sendAsync('kept');
    controller.abort(new Error('timeout'));
    await expect(withdrawn).rejects.toThrow('timeout');
    const restarted = await EchoServer.start({ port: server.port });
    cleanups.push(() => restarted.close());
    await kept;
    await once(socket as unknown as EventTarget, 'message');
    expect(received).toEqual(['kept']);
  });

  it('bytes passed to send() while recovering are copied: reusing the buffer changes nothing', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    await opened(socket);
    await server.close();
    await once(socket as unknown as EventTarget, 'recovering');
    const buffer = Buffer.from([1, 2, 3, 4]);
    socket.send(buffer);
    buffer.fill(0xff);
    const restarted = await EchoServer.start({ port: server.port });
    cleanups.push(() => restarted.close());
    const [event] = (await once(socket as unknown as EventTarget, 'message')) as [MessageEvent];
    expect([...(event.data as Buffer)]).toEqual([1, 2, 3, 4]);
  });
});

describe('binaryType applies at once, like a WebSocket', () => {
  it('assigned right after the constructor: the first link delivers that type', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    socket.binaryType = 'arraybuffer';
    await opened(socket);
    socket.send(new Uint8Array([7, 8]));
    const [first] = (await once(socket as unknown as EventTarget, 'message')) as [MessageEvent];
    expect(first.data).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(first.data as ArrayBuffer)]).toEqual([7, 8]);
    // Reassigned on the open link: the very next message follows it.
    socket.binaryType = 'blob';
    socket.send(new Uint8Array([9]));
    const [second] = (await once(socket as unknown as EventTarget, 'message')) as [MessageEvent];
    expect(second.data).toBeInstanceOf(Blob);
    expect([...new Uint8Array(await (second.data as Blob).arrayBuffer())]).toEqual([9]);
    socket.binaryType = 'nodebuffer';
    socket.send(new Uint8Array([10]));
    const [third] = (await once(socket as unknown as EventTarget, 'message')) as [MessageEvent];
    expect(Buffer.isBuffer(third.data)).toBe(true);
  });
});

describe('error fires only for failures', () => {
  it('giving up after recoverable failures fires error, then close', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url, undefined, {
      maxAttemptsPerFailure: 2,
      backoff: { initialDelayMs: 5, maxDelayMs: 5 },
    });
    await opened(socket);
    const order: string[] = [];
    socket.onerror = () => order.push('error');
    const closed = new Promise<void>((resolve) => {
      socket.onclose = () => {
        order.push('close');
        resolve();
      };
    });
    await server.close();
    await closed;
    expect(order).toEqual(['error', 'close']);
  });
});
