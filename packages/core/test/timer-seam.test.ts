/**
 * Issue 11, "one timer seam": every timer of the resume server and the WebSocket transport runs on
 * the scheduler seam (engine/clock.ts), so fake time drives them: `vi.useFakeTimers()` through the
 * default scheduler, an injected `TestScheduler` through the `scheduler` option. Nothing here waits
 * on real time; the virtual spans (a 60 s session TTL, a 10 s connect timeout) would otherwise make
 * the tests take a minute.
 */
import { ConnectFailedError } from '@lifeline/core';
import { decodeFrame, encodeHello, frameBytes, type ResumeFrame } from '@lifeline/core/internal';
import { ResumeServer, type ServerLinkInput, type ServerLinkPort } from '@lifeline/core/resume/server';
import { webSocketTransport } from '@lifeline/core/websocket';
import { firstValueFrom, type SchedulerLike } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, describe, expect, test, vi } from 'vitest';

const TTL_MS = 60_000;
const HANDSHAKE_MS = 1_000;
// The sweep runs every min(timeouts)/4, clamped to [10, 1000] ms: 250 ms here.
const SWEEP_MS = 250;

const servers: ResumeServer[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** How to move time forward in each mode; `flush` settles the store's promises in between. */
interface Clock {
  readonly scheduler: SchedulerLike | undefined;
  advance(ms: number): Promise<void>;
}

function fakeTimersClock(): Clock {
  vi.useFakeTimers();
  return {
    scheduler: undefined,
    async advance(ms) {
      await vi.advanceTimersByTimeAsync(ms);
    },
  };
}

function testSchedulerClock(): Clock {
  const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  return {
    scheduler,
    async advance(ms) {
      // A VirtualTimeScheduler runs every action due up to `maxFrames`; the sweep reschedules
      // itself, so it must be bounded by a frame, not flushed to the end.
      const until = scheduler.now() + ms;
      do {
        scheduler.maxFrames = Math.min(until, scheduler.now() + SWEEP_MS);
        scheduler.flush();
        scheduler.frame = scheduler.maxFrames;
        // The store's promises settle between frames, as they would between real timer ticks.
        await new Promise<void>((resolve) => setImmediate(resolve));
      } while (scheduler.now() < until);
    },
  };
}

/** One link into the server, recording what the server did to it. */
function link(server: ResumeServer) {
  const sent: ResumeFrame[] = [];
  const closes: { code: number; reason: string }[] = [];
  const port: ServerLinkPort = {
    send(frame, written) {
      sent.push(decodeFrame(frameBytes(frame)));
      written?.();
    },
    close(code, reason) {
      closes.push({ code, reason });
      input.closed();
    },
  };
  const input: ServerLinkInput = server.accept(port);
  return { input, sent, closes };
}

function server(clock: Clock): ResumeServer {
  const created = new ResumeServer({
    sessionTtlMs: TTL_MS,
    handshakeTimeoutMs: HANDSHAKE_MS,
    pingIntervalMs: 10 * TTL_MS,
    idleTimeoutMs: 20 * TTL_MS,
    scheduler: clock.scheduler,
  });
  servers.push(created);
  return created;
}

for (const [mode, makeClock] of [
  ['vi.useFakeTimers()', fakeTimersClock],
  ['an injected TestScheduler', testSchedulerClock],
] as const) {
  describe(`resume server timers driven by ${mode}`, () => {
    test('a link that sends no HELLO is closed 1013 at the handshake timeout, not before', async () => {
      const clock = makeClock();
      const resumeServer = server(clock);
      const { closes } = link(resumeServer);
      await clock.advance(HANDSHAKE_MS - SWEEP_MS);
      expect(closes).toEqual([]);
      await clock.advance(SWEEP_MS);
      expect(closes).toEqual([{ code: 1013, reason: 'handshake timeout' }]);
      expect(resumeServer.stats.handshakeTimeouts).toBe(1);
    });

    test('a detached session expires at its TTL, not before', async () => {
      const clock = makeClock();
      const resumeServer = server(clock);
      const { input, sent, closes } = link(resumeServer);
      const created = firstValueFrom(resumeServer.sessions$);
      input.receive(encodeHello(undefined, 0));
      // Hashing the token (WebCrypto) is no timer: the session arrives without time moving.
      const session = await created;
      await clock.advance(0);
      expect(sent.map((frame) => frame.type)).toEqual(['welcome']);
      expect(resumeServer.sessions.size).toBe(1);
      const ends: string[] = [];
      session.events$.subscribe((event) => ends.push(event.type));

      input.closed(); // the client went away: the session waits TTL_MS for it to resume
      await clock.advance(TTL_MS - SWEEP_MS);
      expect(resumeServer.stats.expired).toBe(0);
      expect(resumeServer.sessions.size).toBe(1);
      await clock.advance(SWEEP_MS);
      expect(resumeServer.stats.expired).toBe(1);
      expect(resumeServer.sessions.size).toBe(0);
      expect(ends).toContain('expire');
      expect(closes).toEqual([]);
    });
  });
}

/** A WebSocket whose opening handshake never completes (a peer that accepted TCP and went silent). */
class SilentWebSocket {
  static opened: SilentWebSocket[] = [];
  readyState = 0;
  readonly protocol = '';
  readonly bufferedAmount = 0;
  binaryType = 'blob';
  closeCalls = 0;
  private readonly listeners = new Map<string, Set<(event: unknown) => void>>();
  constructor(readonly url: string) {
    SilentWebSocket.opened.push(this);
  }
  send(): void {
    throw new Error('not open');
  }
  close(): void {
    this.closeCalls++;
    if (this.readyState === 3) return;
    this.readyState = 3;
    for (const listener of this.listeners.get('close') ?? []) listener({ code: 1006, reason: '' });
  }
  addEventListener(type: string, listener: (event: unknown) => void): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(listener);
  }
  removeEventListener(type: string, listener: (event: unknown) => void): void {
    this.listeners.get(type)?.delete(listener);
  }
}

describe('WebSocket transport connect timeout on the seam', () => {
  for (const [mode, makeClock] of [
    ['vi.useFakeTimers()', fakeTimersClock],
    ['an injected TestScheduler', testSchedulerClock],
  ] as const) {
    test(`driven by ${mode}: the open fails with ConnectFailedError (ETIMEDOUT) at connectTimeoutMs, not before`, async () => {
      const clock = makeClock();
      SilentWebSocket.opened = [];
      const transport = webSocketTransport({
        url: 'ws://127.0.0.1:9/never',
        WebSocket: SilentWebSocket,
        connectTimeoutMs: 10_000,
        scheduler: clock.scheduler,
      });
      const outcome: unknown[] = [];
      transport.open().then(
        () => outcome.push('opened'),
        (error) => outcome.push(error),
      );
      await clock.advance(9_000);
      expect(outcome).toEqual([]);
      await clock.advance(1_000);
      expect(outcome).toHaveLength(1);
      expect(outcome[0]).toBeInstanceOf(ConnectFailedError);
      expect((outcome[0] as ConnectFailedError).syscallCode).toBe('ETIMEDOUT');
      expect(SilentWebSocket.opened).toHaveLength(1);
      expect(SilentWebSocket.opened[0]!.closeCalls).toBe(1);
    });

    test(`driven by ${mode}: a url function that never answers times out on the same seam`, async () => {
      const clock = makeClock();
      const transport = webSocketTransport({
        url: () => new Promise<string>(() => {}),
        WebSocket: SilentWebSocket,
        connectTimeoutMs: 10_000,
        scheduler: clock.scheduler,
      });
      const outcome: unknown[] = [];
      transport.open().then(
        () => outcome.push('opened'),
        (error) => outcome.push(error),
      );
      await clock.advance(9_999);
      expect(outcome).toEqual([]);
      await clock.advance(1);
      expect(outcome).toHaveLength(1);
      expect(outcome[0]).toBeInstanceOf(ConnectFailedError);
    });
  }
});
