/**
 * Faults from the family of issue "defaults that keep the promise", each reproduced on real
 * sockets: a blocked event loop must not make the heartbeat kill a healthy link, an endpoint
 * provider that never answers must not hold a connection in attempt 1 forever, and a resume
 * handshake into silence is bounded by the heartbeat.
 */
import { once } from 'node:events';
import { attach, type ConnectionState, HeartbeatTimeoutError } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';
import { HAWebSocket, wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';
import { ChildStreamServer, EchoServer } from './support/ws-servers.js';

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
