import { performance } from 'node:perf_hooks';
import { HeartbeatTimeoutError } from '@lifeline/core';
import { connectTcp } from '@lifeline/node/tcp';
import { FaultProxy } from '@lifeline/node/testing';
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { record, TcpTestServer, waitFor } from './support/tcp-servers.js';

describe('framed TCP heartbeat', () => {
  it('keeps an idle link alive with ping/pong, detects a black-holed link within timeoutMs + one interval, recovers after pass()', async () => {
    const INTERVAL_MS = 100;
    const TIMEOUT_MS = 300;
    let serverMessages = 0;
    const server = await TcpTestServer.framedEcho(() => serverMessages++);
    cleanups.push(() => server.close());
    const proxy = await FaultProxy.start({ target: { port: server.port } });
    cleanups.push(() => proxy.close());
    const conn = connectTcp({
      port: proxy.port,
      heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS },
      backoff: { initialDelayMs: 10, maxDelayMs: 50 },
      minUptimeMs: 50,
      maxAttemptsPerFailure: 1_000,
    });
    cleanups.push(() => conn.close());
    const downs: { error: unknown; at: number }[] = [];
    const pong$ = new Subject<number>();
    let pongs = 0;
    conn.events$.subscribe((event) => {
      if (event.type === 'link-down') downs.push({ error: event.error, at: performance.now() });
      if (event.type === 'link-open') event.link.pongs$?.subscribe(() => pong$.next(++pongs));
    });
    await waitFor(conn.state$, (s) => s.status === 'open');

    // Idle, with no application traffic at all: only pongs keep the link alive, for well over timeoutMs.
    await waitFor(pong$, (count) => count >= 8, 5_000);
    expect(downs).toEqual([]);
    expect(proxy.acceptedConnections).toBe(1);
    expect(serverMessages).toBe(0);

    const blackholedAt = performance.now();
    proxy.blackhole();
    await waitFor(conn.events$, (event) => event.type === 'link-down', 5_000);
    const detected = downs[0]!;
    expect(detected.error).toBeInstanceOf(HeartbeatTimeoutError);
    const latency = detected.at - blackholedAt;
    console.info('tcp heartbeat', { latencyMs: Math.round(latency), pongsBefore: pongs });
    expect(latency).toBeLessThanOrEqual(TIMEOUT_MS + INTERVAL_MS);

    // While black-holed, every reopened link is silent too and is given up on the same way.
    await waitFor(conn.events$, () => downs.length >= 3, 10_000);
    proxy.pass();
    const echoed = waitFor(conn.messages$, (message) => Buffer.from(message).readUInt32BE(0) === 42, 10_000);
    await conn.send(record(42));
    await echoed;
    const downsAtPass = downs.length;
    // Back to normal: the link stays up through several heartbeat timeouts' worth of idling.
    const pongsAtPass = pongs;
    await waitFor(pong$, (count) => count >= pongsAtPass + 8, 5_000);
    expect(downs.length).toBe(downsAtPass);
    expect(conn.state$.value.status).toBe('open');
    for (const { error } of downs) expect(error).toBeInstanceOf(HeartbeatTimeoutError);
    expect(proxy.bytesDiscarded).toBeGreaterThan(0);
  });
});
