import { once } from 'node:events';
import { Readable } from 'node:stream';
import { SequenceCounter } from '@lifeline/core/testing';
import { HATcpSocket } from '@lifeline/node/tcp';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import {
  ChildTcpServer,
  liveResources,
  record,
  recordReader,
  TcpTestServer,
  within,
} from './support/tcp-servers.js';

const fast = {
  backoff: { initialDelayMs: 10, maxDelayMs: 100 },
  minUptimeMs: 50,
  maxAttemptsPerFailure: 200,
} as const;

describe('HATcpSocket', () => {
  it('pipes a stream through itself across a server process killed with SIGKILL; end() releases every handle', async () => {
    const server = new ChildTcpServer('framed');
    await server.start();
    cleanups.push(() => server.kill());
    const before = liveResources();
    const socket = new HATcpSocket({ port: server.port, ...fast });
    cleanups.push(() => socket.destroy());
    const TOTAL = 3_000;
    const WINDOW = 16;
    const KILLS = 2;
    const echoes = new SequenceCounter();
    const read = recordReader();
    let next = 0;
    let highest = -1;
    let ended = false;
    const restarts: Promise<void>[] = [];
    const counts = { connect: 0, recovering: 0, recovered: 0, errors: 0, writesWhileDown: 0 };
    // The source produces records at most WINDOW ahead of the echoes, and ends after the last echo.
    const source = new Readable({ read: () => pump() });
    const pump = () => {
      while (next < TOTAL && next - highest <= WINDOW) {
        if (restarts.length < KILLS && next === Math.round(((restarts.length + 1) * TOTAL) / (KILLS + 1))) {
          restarts.push(server.kill().then(() => server.start()));
        }
        if (socket.connecting) counts.writesWhileDown++;
        if (!source.push(record(next++))) return;
      }
      if (!ended && echoes.has(TOTAL - 1)) {
        ended = true;
        source.push(null);
      }
    };
    socket.on('connect', () => counts.connect++);
    socket.on('recovering', () => counts.recovering++);
    socket.on('recovered', () => {
      counts.recovered++;
      // Echoes the dead process never sent cannot be waited for.
      highest = Math.max(highest, next - 1);
      pump();
    });
    socket.on('error', () => counts.errors++);
    socket.on('data', (chunk: Buffer) => {
      for (const n of read(chunk)) {
        echoes.record(n);
        highest = Math.max(highest, n);
      }
      pump();
    });
    // Sampled in the 'close' listener itself: by then every handle must already be released.
    const closed = new Promise<ReturnType<typeof liveResources>>((resolve) =>
      socket.once('close', () => resolve(liveResources())),
    );
    source.pipe(socket);
    await once(socket, 'end');
    const after = await closed;
    await Promise.all(restarts);
    const result = echoes.counts(TOTAL);
    console.info('HATcpSocket SIGKILL', { ...result, ...counts, before, after });
    expect(counts).toMatchObject({ connect: 1, errors: 0 });
    // A reconnect can land in the listen backlog of the dying process and be reset: at least one recovery per kill.
    expect(counts.recovered).toBeGreaterThanOrEqual(KILLS);
    expect(counts.recovering).toBeGreaterThanOrEqual(counts.recovered);
    expect(socket.state$.value).toMatchObject({ status: 'closed', reason: 'user' });
    expect(result.reordered).toBe(0);
    expect(result.lost).toBeLessThanOrEqual(WINDOW * counts.recovered);
    expect(result.duplicated).toBeLessThanOrEqual(WINDOW * counts.recovered);
    expect(echoes.has(TOTAL - 1)).toBe(true);
    expect(after.tcp).toBeLessThanOrEqual(before.tcp);
    expect(after.timers).toBeLessThanOrEqual(before.timers);
  });

  it('writes made while recovering wait and are flushed in order; their callbacks fire once written', async () => {
    const received: number[] = [];
    let allArrived!: () => void;
    const arrived = new Promise<void>((resolve) => {
      allArrived = resolve;
    });
    const server = await TcpTestServer.framedEcho((payload) => {
      if (received.push(Buffer.from(payload).readUInt32BE(0)) === 100) allArrived();
    });
    cleanups.push(() => server.close());
    const socket = new HATcpSocket({ port: server.port, ...fast });
    cleanups.push(() => socket.destroy());
    await once(socket, 'connect');
    const recovering = once(socket, 'recovering');
    server.resetAll();
    await recovering;
    const callbacks: number[] = [];
    for (let i = 0; i < 100; i++) socket.write(record(i), () => callbacks.push(i));
    expect(callbacks).toEqual([]);
    await once(socket, 'recovered');
    await within(arrived, 10_000, () => `${received.length} of 100 writes arrived`);
    // Counted on the server: every write arrived once, in order, on the new connection.
    expect(server.accepted).toBe(2);
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(callbacks).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // Like any Duplex, 'close' waits for the readable side to be consumed.
    socket.resume();
    socket.end();
    await once(socket, 'close');
  });

  it('destroy() while recovering rejects nothing silently and releases every handle and timer', async () => {
    const server = await TcpTestServer.framedEcho();
    const before = liveResources();
    const socket = new HATcpSocket({
      port: server.port,
      ...fast,
      backoff: { initialDelayMs: 200, maxDelayMs: 200 },
    });
    const errors: Error[] = [];
    socket.on('error', (error) => errors.push(error));
    await once(socket, 'connect');
    const recovering = once(socket, 'recovering');
    await server.close(); // reconnects are refused from now on
    await recovering;
    const results: (Error | null | undefined)[] = [];
    for (let i = 0; i < 10; i++) socket.write(record(i), (error) => results.push(error));
    const closed = new Promise<ReturnType<typeof liveResources>>((resolve) =>
      socket.once('close', () => resolve(liveResources())),
    );
    socket.destroy();
    const after = await closed;
    expect(errors).toEqual([]);
    // Every write callback fired, each with an error: nothing was written, nothing dropped silently.
    expect(results).toHaveLength(10);
    for (const error of results) expect(error).toBeInstanceOf(Error);
    expect(socket.state$.value).toMatchObject({ status: 'closed', reason: 'user' });
    expect(after.tcp).toBeLessThanOrEqual(before.tcp - 1); // the server's listener is gone too
    expect(after.timers).toBeLessThanOrEqual(before.timers);
  });

  it("emits 'error' once recovery gives up, with the error that broke the connection", async () => {
    const server = await TcpTestServer.framedEcho();
    const socket = new HATcpSocket({
      port: server.port,
      backoff: { initialDelayMs: 5, maxDelayMs: 5 },
      maxAttemptsPerFailure: 3,
    });
    await once(socket, 'connect');
    const errored = once(socket, 'error');
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await server.close();
    const [error] = (await errored) as [Error];
    await closed;
    expect(error).toMatchObject({ code: 'ERR_LINK_FAILED', syscallCode: 'ECONNRESET' });
    expect(socket.state$.value).toMatchObject({ status: 'closed', reason: 'attempts-exhausted', error });
  });

  it("emits 'recovering' once per outage, not once per attempt, as HAWebSocket does", async () => {
    const server = new ChildTcpServer('framed');
    await server.start();
    cleanups.push(() => server.kill());
    const socket = new HATcpSocket({ port: server.port, ...fast });
    cleanups.push(() => socket.destroy());
    const events: string[] = [];
    socket.on('recovering', () => events.push('recovering'));
    socket.on('recovered', () => events.push('recovered'));
    const attempts: number[] = [];
    const states = socket.state$.subscribe((state) => {
      if (state.status === 'recovering') attempts.push(state.attempt);
    });
    cleanups.push(() => states.unsubscribe());
    await once(socket, 'connect');
    const OUTAGES = 2;
    const ATTEMPTS = 3;
    for (let outage = 1; outage <= OUTAGES; outage++) {
      await server.kill();
      // Refused connects: several attempts of the same outage.
      await within(
        firstValueFrom(
          socket.state$.pipe(filter((state) => state.status === 'recovering' && state.attempt >= ATTEMPTS)),
        ),
        10_000,
        () => `outage ${outage}: attempts ${attempts.join(',')}`,
      );
      const recovered = once(socket, 'recovered');
      await server.start();
      await within(recovered, 10_000, () => `outage ${outage} not recovered`);
    }
    expect(attempts.length).toBeGreaterThanOrEqual(OUTAGES * ATTEMPTS);
    expect(events).toEqual(['recovering', 'recovered', 'recovering', 'recovered']);
  });
});
