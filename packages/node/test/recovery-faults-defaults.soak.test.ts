/**
 * Faults from the family of issue "defaults that keep the promise" that take default timings to
 * show (a heartbeat at its default interval, a 5 s outage): the soak half of recovery-faults.test.ts.
 */
import { once } from 'node:events';
import { SequenceCounter } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

describe('found by review, at default options', () => {
  it('a client that only sends follows a crash-looping server that never sends: a pong is progress', async () => {
    // A server that never sends a message (ws answers pings itself), stopped and started again
    // 8 times, each life about 1.2 s.
    let wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const { port } = wss.address() as { port: number };
    const lives: number[] = [];
    let life = 0;
    const serve = (server: WebSocketServer, n: number) =>
      server.on('connection', (socket) => socket.on('message', () => (lives[n] = (lives[n] ?? 0) + 1)));
    serve(wss, 0);
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const socket = new HAWebSocket(`ws://127.0.0.1:${port}`);
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const sender = setInterval(() => socket.send('x'), 10);
    cleanups.push(() => clearInterval(sender));
    const attemptsSeen: number[] = [];
    socket.state$.subscribe((state) => {
      if (state.status === 'recovering') attemptsSeen.push(state.attempt);
    });
    for (life = 1; life <= 8; life++) {
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 300));
      wss = new WebSocketServer({ host: '127.0.0.1', port });
      await once(wss, 'listening');
      serve(wss, life);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    clearInterval(sender);
    // Every server life after the first heard from the client, and no failure took many attempts.
    expect(lives.slice(1, 9).every((count) => count > 0)).toBe(true);
    expect(Math.max(...attemptsSeen)).toBeLessThan(10);
    expect(socket.readyState).toBe(HAWebSocket.OPEN);
  });

  it('with resume, a message the protocol refuses (over its frame limit) fires dropped, never vanishes', async () => {
    const server = createResumeServer();
    const { port } = await server.listen();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, undefined, { resume: true });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const dropped = once(socket as unknown as EventTarget, 'dropped');
    socket.send(Buffer.alloc(2 * 1024 * 1024));
    const [event] = (await dropped) as [{ detail: { data: Uint8Array; error: Error } }];
    expect(event.detail.data.byteLength).toBe(2 * 1024 * 1024);
    expect(event.detail.error).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
    expect(socket.readyState).toBe(HAWebSocket.OPEN);
  });

  it('a black-holed link is found by the default heartbeat and recovered', async () => {
    const echo = await EchoServer.start();
    cleanups.push(() => echo.close());
    const proxy = await FaultProxy.start({ target: { port: echo.port } });
    cleanups.push(() => proxy.close());
    const socket = new HAWebSocket(`ws://127.0.0.1:${proxy.port}`);
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const started = performance.now();
    proxy.blackhole();
    await once(socket as unknown as EventTarget, 'recovering');
    const detectedMs = performance.now() - started;
    proxy.pass();
    await once(socket as unknown as EventTarget, 'recovered');
    // 30 s of silence (10 s ping interval): detected between 30 and 40 s.
    expect(detectedMs).toBeGreaterThan(29_000);
    expect(detectedMs).toBeLessThan(45_000);
  }, 90_000);
});

describe('resume through a long outage at defaults', () => {
  it('what the queue held through a 5 s outage at 500 msg/s is taken by the session and delivered once', async () => {
    const server = createResumeServer();
    const received = new SequenceCounter();
    let everyMessageArrived!: () => void;
    const everyMessage = new Promise<void>((resolve) => {
      everyMessageArrived = resolve;
    });
    server.sessions$.subscribe((session) =>
      session.messages$.subscribe(({ data }) => {
        received.record(Number(String(data)));
        if (received.uniqueCount === 3_500) everyMessageArrived();
      }),
    );
    const { port } = await server.listen();
    cleanups.push(() => server.close());
    const proxy = await FaultProxy.start({ target: { port } });
    cleanups.push(() => proxy.close());
    const socket = new HAWebSocket(`ws://127.0.0.1:${proxy.port}`, undefined, { resume: true });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const failures: unknown[] = [];
    socket.ondropped = (event) => failures.push((event as unknown as { detail: unknown }).detail);
    let sent = 0;
    const send = () => {
      try {
        socket.send(String(sent));
        sent++;
      } catch (error) {
        failures.push(error);
      }
    };
    // 500 msg/s: 5 every 10 ms, for 7 s, with the network down from 1 s to 6 s.
    const sender = setInterval(() => {
      for (let i = 0; i < 5 && sent < 3_500; i++) send();
    }, 10);
    cleanups.push(() => clearInterval(sender));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    proxy.refuseNewConnections();
    proxy.resetAll();
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    proxy.refuseNewConnections(false);
    await everyMessage;
    expect(failures).toEqual([]);
    expect(received.counts(sent)).toMatchObject({
      sent: 3_500,
      unique: 3_500,
      lost: 0,
      duplicated: 0,
      reordered: 0,
    });
  }, 60_000);
});
