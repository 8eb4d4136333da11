import { attach, type ConnectionState } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { createResumeServer, type ServerSession } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { wsTransport } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

const RESETS = 100;
const BLACKHOLES = 10;
const PER_TICK = 20; // every 10 ms: 2,000 messages/s each way

test(`exactly once, in order, both ways at 2,000 msg/s through ${RESETS} resets and ${BLACKHOLES} black-holes`, async () => {
  const server = createResumeServer({ pingIntervalMs: 200, idleTimeoutMs: 1_500, handshakeTimeoutMs: 2_000 });
  cleanups.push(() => server.close());
  const upstream = new NumberedStream('c');
  let serverSent = 0;
  let serverAcked = 0;
  const serverErrors: unknown[] = [];
  const sessions: ServerSession[] = [];
  const wait = waiter();
  const progress = wait.poke;
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe(({ data }) => {
      upstream.add(data);
      progress();
    });
  });
  const { port } = await server.listen();
  const proxy = await FaultProxy.start({ target: { port } });
  cleanups.push(() => proxy.close());

  const client = resumable(wsTransport(`ws://127.0.0.1:${proxy.port}`, { connectTimeoutMs: 1_000 }), {
    handshakeTimeoutMs: 1_000,
  });
  const events: SessionEvent['type'][] = [];
  client.session$.subscribe((event) => {
    events.push(event.type);
    progress();
  });
  const conn = attach(client, {
    heartbeat: { intervalMs: 100, timeoutMs: 400 },
    backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    maxAttemptsPerFailure: 1_000,
    minUptimeMs: 50,
    queue: { maxMessages: 1_000_000, maxBytes: 1 << 30 },
  });
  cleanups.push(() => conn.close());
  const downstream = new NumberedStream('s');
  conn.messages$.subscribe((message) => {
    downstream.add(message);
    progress();
  });
  let state: ConnectionState = conn.state$.value;
  conn.state$.subscribe((next) => {
    state = next;
    progress();
  });

  let clientSent = 0;
  let clientAcked = 0;
  const clientErrors: unknown[] = [];
  const load = setInterval(() => {
    for (let i = 0; i < PER_TICK; i++) {
      conn.send(`c${++clientSent}`).then(
        () => clientAcked++,
        (error: unknown) => clientErrors.push(error),
      );
      const session = sessions[0];
      if (session) {
        session.send(`s${++serverSent}`).then(
          () => serverAcked++,
          (error: unknown) => serverErrors.push(error),
        );
      }
    }
  }, 10);
  cleanups.push(() => clearInterval(load));

  /** Waits (on message and state events) until `check` holds. */
  const until = (check: () => boolean, what: string, timeoutMs = 10_000) =>
    wait.until(check, timeoutMs, what);

  const faults: ('reset' | 'blackhole')[] = [];
  for (let i = 0; i < RESETS; i++) faults.push('reset');
  for (let i = 0; i < BLACKHOLES; i++)
    faults.splice(Math.floor(Math.random() * faults.length), 0, 'blackhole');
  let handshakes = 0;
  for (const fault of faults) {
    // Each fault hits a link of its own: the one resumed after the previous fault.
    await until(() => client.stats.handshakes > handshakes && state.status === 'open', 'a resumed link');
    handshakes = client.stats.handshakes;
    // A random moment: after a random number (1..150) of further messages arrived, either way.
    const mark = upstream.received + downstream.received + 1 + Math.floor(Math.random() * 150);
    await until(() => upstream.received + downstream.received >= mark, 'traffic');
    if (fault === 'reset') {
      proxy.resetAll();
      continue;
    }
    proxy.blackhole();
    // The heartbeat must notice the silence and give up on the link; only then is the network healed.
    await until(() => state.status === 'recovering', 'black-hole detection');
    proxy.pass();
  }
  clearInterval(load);
  await until(
    () =>
      clientAcked + clientErrors.length === clientSent && serverAcked + serverErrors.length === serverSent,
    'every send to settle',
    20_000,
  );
  await until(() => upstream.received >= clientSent && downstream.received >= serverSent, 'every delivery');

  expect(clientErrors).toEqual([]);
  expect(serverErrors).toEqual([]);
  expect(upstream.tally(clientSent)).toEqual({
    sent: clientSent,
    received: clientSent,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
  });
  expect(downstream.tally(serverSent)).toEqual({
    sent: serverSent,
    received: serverSent,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
  });
  expect(clientSent).toBeGreaterThan(5_000);
  expect(serverSent).toBeGreaterThan(5_000);
  // One session throughout, resumed at least once per fault, never lost.
  expect(sessions).toHaveLength(1);
  expect(events.filter((type) => type === 'new')).toHaveLength(1);
  expect(events).not.toContain('lost');
  expect(client.stats.resumes).toBeGreaterThanOrEqual(RESETS + BLACKHOLES);
  expect(proxy.resetCount).toBeGreaterThanOrEqual(RESETS);
  console.log(
    `sent ${clientSent} up / ${serverSent} down; resumes ${client.stats.resumes}; replayed up ${client.stats.replayed}, down ${sessions[0]!.stats.replayed}; duplicates dropped up ${sessions[0]!.stats.duplicatesDropped}, down ${client.stats.duplicatesDropped}`,
  );
}, 90_000);
