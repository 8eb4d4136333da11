// A logger (or metrics hook) that throws is the application's bug: it is reported (an uncaught
// exception in Node, as a throwing event listener's), never thrown into the connection or the
// session, which must go on recovering and delivering exactly once.
import { resume } from '@lifeline/core/resume';
import { SequenceCounter, waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { expect, it, onTestFinished } from 'vitest';

const fast = { backoff: { initialDelayMs: 20, maxDelayMs: 200 }, minUptimeMs: 100 } as const;

it('a logger and a metrics hook that throw on every call: the resuming connection recovers from each reset and delivers exactly once, in order', async () => {
  const server = createResumeServer();
  onTestFinished(() => server.close());
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      session
        .send(`echo:${typeof data === 'string' ? data : new TextDecoder().decode(data)}`)
        .catch(() => {});
    });
  });
  const { port } = await server.listen();
  const proxy = await FaultProxy.start({ target: { port } });
  onTestFinished(() => proxy.close());
  let calls = 0;
  const thrower = () => {
    calls++;
    throw new Error('logger bug');
  };
  const logger = { debug: thrower, info: thrower, warn: thrower, error: thrower };
  const metrics = { counter: thrower, gauge: thrower };
  const reported: unknown[] = [];
  const onUncaught = (error: unknown) => reported.push(error);
  process.on('uncaughtException', onUncaught);
  onTestFinished(() => {
    process.off('uncaughtException', onUncaught);
  });
  const socket = new HAWebSocket(`ws://127.0.0.1:${proxy.port}`, {
    ...fast,
    logger,
    metrics,
    resume: resume({ logger, metrics }),
  });
  onTestFinished(() => socket.close());
  const echoes = new SequenceCounter();
  const TOTAL = 600;
  const RESETS = 3;
  socket.onmessage = (message) => echoes.record(Number(String(message.data).slice(5)));
  let recovered = 0;
  socket.addEventListener('recovered', () => recovered++);
  await waitFor(() => socket.readyState === 1, { timeoutMs: 20_000, what: 'open' });
  for (let i = 0; i < TOTAL; i++) {
    socket.send(String(i));
    if (i % 200 === 100) {
      const before = recovered;
      proxy.resetAll();
      await waitFor(() => recovered > before, {
        timeoutMs: 20_000,
        what: `recovery from reset ${before + 1}`,
        state: () => ({ recovered, calls, state: socket.session?.state }),
      });
    }
  }
  await waitFor(() => echoes.uniqueCount === TOTAL, {
    timeoutMs: 20_000,
    what: 'every echo',
    state: () => ({ received: echoes.uniqueCount }),
  });
  expect(echoes.counts(TOTAL)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, received: TOTAL });
  expect(socket.session?.stats).toMatchObject({ resumes: RESETS, sessionsLost: 0 });
  // close() reads the link until the server acknowledged what it took and closed the link: the
  // session's `closed` event, and its logger's throw, come after close() returns. Waited for
  // here, while this test still catches the reported throws (after it, one would be uncaught).
  const sessionClosed = firstValueFrom(
    socket.session!.events$.pipe(filter((event) => event.type === 'closed')),
  );
  socket.close();
  await sessionClosed;
  expect(calls).toBeGreaterThan(0);
  await waitFor(() => reported.length === calls, { timeoutMs: 5_000, what: 'every throw reported' });
  expect(reported.every((error) => (error as Error).message === 'logger bug')).toBe(true);
});
