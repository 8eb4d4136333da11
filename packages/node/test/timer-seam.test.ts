// Issue 11, "one timer seam", Node side: the HTTP upgrade timeout of `createResumeServer` runs on
// the server's scheduler like the rest of its timers, so virtual time cuts a stalled upgrade.
// Before, it used `node:timers` directly: neither a TestScheduler nor fake timers could reach it.
import { once } from 'node:events';
import { connect } from 'node:net';
import { createResumeServer } from '@lifeline/node/server';
import { filter, firstValueFrom, type SchedulerAction, Subject, type Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, expect, test } from 'vitest';
import { within } from './support/tcp-servers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TestScheduler that reports each timer scheduled on it, so a test can wait for one. */
class WatchedScheduler extends TestScheduler {
  readonly scheduled$ = new Subject<number>();
  constructor() {
    super((actual, expected) => expect(actual).toEqual(expected));
  }
  override schedule<T>(
    work: (this: SchedulerAction<T>, state?: T) => void,
    delay = 0,
    state?: T,
  ): Subscription {
    const action = super.schedule(work, delay, state);
    this.scheduled$.next(delay);
    return action;
  }
  /** Runs every action due in the next `ms` virtual milliseconds. */
  advance(ms: number): void {
    this.maxFrames = this.now() + ms;
    this.flush();
    this.frame = this.maxFrames;
  }
}

test('an HTTP upgrade that never completes is cut at handshakeTimeoutMs of virtual time, not before', async () => {
  const HANDSHAKE_MS = 60_000;
  const scheduler = new WatchedScheduler();
  const server = createResumeServer({ handshakeTimeoutMs: HANDSHAKE_MS, scheduler });
  cleanups.push(() => server.close());
  const { port } = await server.listen({ port: 0 });
  const armed = firstValueFrom(scheduler.scheduled$.pipe(filter((delay) => delay === HANDSHAKE_MS)));
  const socket = connect({ port, host: '127.0.0.1' });
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {});
  // Not `once(socket, 'close')`: the cut reaches the client as ECONNRESET, which `once` rejects on.
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  await within(armed, 10_000, () => 'the server never started the upgrade timer on its scheduler');

  scheduler.advance(HANDSHAKE_MS - 1);
  expect(server.stats.handshakeTimeouts).toBe(0);
  expect(socket.destroyed).toBe(false);
  scheduler.advance(1);
  expect(server.stats.handshakeTimeouts).toBe(1);
  await within(closed, 10_000, () => 'the stalled upgrade is still open');
}, 20_000);
