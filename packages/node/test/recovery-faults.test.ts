/**
 * Faults from the family of issue "defaults that keep the promise", each reproduced on real
 * sockets: a blocked event loop must not make the heartbeat kill a healthy link, an endpoint
 * provider that never answers must not hold a connection in attempt 1 forever, and a resume
 * handshake into silence is bounded by the heartbeat.
 */
import { once } from 'node:events';
import { attach, type ConnectionState, HeartbeatTimeoutError } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket, wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ChildStreamServer, EchoServer } from './support/ws-servers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Blocks the event loop, as a long synchronous task in an application does.
  }
}

describe('heartbeat after a blocked event loop', () => {
  it('reads the input that arrived meanwhile before judging silence: no false timeout, nothing discarded', async () => {
    // A server in another process streams a tick every 5 ms, so while this process is blocked
    // the ticks pile up in the socket: the link is healthy, only this loop is not listening.
    const server = new ChildStreamServer(5);
    await server.start();
    cleanups.push(() => server.kill());
    const conn = attach(wsTransport(server.url), { heartbeat: { intervalMs: 50, timeoutMs: 100 } });
    cleanups.push(() => conn.close());
    const ticks = new SequenceCounter();
    let highest = -1;
    conn.messages$.subscribe((data) => {
      const text = String(data);
      if (!text.startsWith('tick:')) return;
      const tick = Number(text.slice(5));
      ticks.record(tick);
      highest = Math.max(highest, tick);
    });
    const downs: unknown[] = [];
    conn.events$.subscribe((event) => {
      if (event.type === 'link-down') downs.push(event.error);
    });
    await firstValueFrom(conn.state$.pipe(filter((s) => s.status === 'open')));
    for (let round = 0; round < 5; round++) {
      const before = highest;
      busyWait(300);
      // Wait for ticks sent after the block: the link was read on, not torn down.
      await firstValueFrom(conn.messages$.pipe(filter(() => highest > before + 70)));
    }
    expect(downs.filter((error) => error instanceof HeartbeatTimeoutError)).toEqual([]);
    // One link throughout: every tick from the first to the last, once and in order.
    expect(ticks.counts(highest + 1)).toMatchObject({ lost: 0, duplicated: 0 });
  });
});

describe('endpoint providers that never answer', () => {
  it('a url function whose promise never settles fails the attempt at the connect timeout; the next one connects', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    let asked = 0;
    const url = () => {
      asked++;
      return asked === 1 ? new Promise<string>(() => {}) : server.url;
    };
    const conn = attach(wsTransport(url, { connectTimeoutMs: 200 }));
    cleanups.push(() => conn.close());
    const states: ConnectionState[] = [];
    conn.state$.subscribe((state) => states.push(state));
    await firstValueFrom(conn.state$.pipe(filter((s) => s.status === 'open')));
    expect(asked).toBe(2);
    const recovering = states.find((s) => s.status === 'recovering');
    expect(recovering).toMatchObject({
      attempt: 1,
      error: { code: 'ERR_CONNECT_FAILED', syscallCode: 'ETIMEDOUT' },
    });
  });

  it('an endpoints function that throws or hangs is a recoverable attempt failure of HAWebSocket', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    let asked = 0;
    const endpoints = () => {
      asked++;
      if (asked === 1) return new Promise<string>(() => {});
      if (asked === 2) throw new Error('discovery is down');
      return server.url;
    };
    const socket = new HAWebSocket(server.url, undefined, { endpoints, connectTimeoutMs: 200 });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    expect(asked).toBe(3);
  });
});

describe('resume handshake into silence', () => {
  it('is given up after the heartbeat timeout, not a fixed 10 s', async () => {
    // Accepts the upgrade, then never answers: a HELLO sent into a black hole.
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(silent, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    cleanups.push(() => {
      for (const client of silent.clients) client.terminate();
    });
    const { port } = silent.address() as { port: number };
    const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, undefined, {
      resume: true,
      heartbeat: { intervalMs: 100, timeoutMs: 300 },
    });
    cleanups.push(() => socket.close());
    const started = performance.now();
    const state = await firstValueFrom(
      socket.state$.pipe(filter((s) => s.status === 'recovering' && s.attempt >= 2)),
    );
    const elapsed = performance.now() - started;
    expect((state as { lastError: Error }).lastError.message).toMatch(/no WELCOME within 300 ms/);
    expect(elapsed).toBeLessThan(5_000);
  });
});

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
