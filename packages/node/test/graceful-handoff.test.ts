// Graceful handoff (issue 14): two resume server processes share a SQLite store; a client streams
// both ways through A; A gets SIGTERM and closes gracefully (GOAWAY naming B). The client must
// resume on B at once (the GOAWAY's hint replaces the backoff: the recovery's delay is 0), with
// nothing lost, duplicated or even redelivered, counted from both processes' records.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach, type ConnectionState } from '@lifeline/core';
import { failoverTransport, resumable, type SessionEvent } from '@lifeline/core/internal';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import { ProcessedLedger, pace, readServerLog } from './support/durable-harness.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

const script = fileURLToPath(new URL('./support/graceful-server-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../', import.meta.url));
const RATE = 1_000;
const PER_SERVER = 300;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, ...args],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`server exited (${code ?? signal}) before listening`)),
    );
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  lines.close();
  child.stdout!.resume();
  return { child, url: `ws://127.0.0.1:${port}` };
}

test('server A closed gracefully (SIGTERM): the client resumes on B at once, 0 lost, 0 duplicated, 0 redelivered, both ways', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-handoff-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = `sqlite:${join(dir, 'sessions.db')}`;
  const log = join(dir, 'server.log');
  // The upstream starts about when the client connects, not while the processes load: a catch-up
  // burst queued on A's link would have to be read before the GOAWAY behind it.
  const start = Date.now() + 4_000;
  const upstream = ['1000000000', String(RATE), String(start)];
  const b = await startServer(['0', store, ...upstream, log, '']);
  const a = await startServer(['0', store, ...upstream, log, b.url]);

  // Default recovery options: the point is that no backoff is waited out.
  const transport = resumable(failoverTransport([a.url, b.url], (url) => wsTransport(url)));
  const events: { event: SessionEvent; at: number }[] = [];
  transport.session$.subscribe((event) => events.push({ event, at: performance.now() }));
  const wall: Record<string, number> = {};
  transport.session$.subscribe((event) => {
    wall[event.type] = Date.now();
  });
  const conn = attach(transport);
  cleanups.push(async () => conn.close());
  const states: ConnectionState[] = [];
  conn.state$.subscribe((state) => states.push(state));
  const received = new NumberedStream('u');
  let poke = () => {};
  conn.messages$.subscribe((message) => {
    received.add(message);
    poke();
  });

  const started = performance.now();
  const due = () => Math.floor(((performance.now() - started) * RATE) / 1_000);
  const traffic = pace(conn, due, () => poke(), 4_000);
  cleanups.push(async () => traffic.stop());
  const waitFor = async (check: () => boolean, timeoutMs: number, what: string) => {
    const waiting = waiter();
    poke = waiting.poke;
    const wakes = transport.session$.subscribe(() => waiting.poke());
    try {
      await waiting.until(check, timeoutMs, what);
    } finally {
      poke = () => {};
      wakes.unsubscribe();
    }
  };

  await waitFor(
    () => traffic.counts().acknowledged >= PER_SERVER && received.received >= PER_SERVER,
    30_000,
    `${PER_SERVER} messages each way through A`,
  );
  const resumesBefore = events.filter(({ event }) => event.type === 'resumed').length;
  const statesBefore = states.length;
  const aExited = once(a.child, 'exit');
  const terminatedAt = performance.now();
  a.child.kill('SIGTERM');
  await waitFor(
    () => events.filter(({ event }) => event.type === 'resumed').length > resumesBefore,
    10_000,
    'the resume on B',
  );
  const resumedAt = events.filter(({ event }) => event.type === 'resumed').at(-1)!.at;
  const goAway = events.find(({ event }) => event.type === 'goaway');
  const [aCode] = (await aExited) as [number | null];

  // Streaming goes on through B.
  const [ackedAtHandoff, receivedAtHandoff] = [traffic.counts().acknowledged, received.received];
  await waitFor(
    () =>
      traffic.counts().acknowledged - ackedAtHandoff >= PER_SERVER &&
      received.received - receivedAtHandoff >= PER_SERVER,
    30_000,
    `${PER_SERVER} messages each way through B`,
  );
  traffic.stop();
  const upstreamTarget = Math.floor(((Date.now() - start) * RATE) / 1_000);
  await waitFor(
    () => traffic.counts().acknowledged === traffic.counts().sent && received.received >= upstreamTarget,
    30_000,
    'every message each way',
  );

  const records = readServerLog(log);
  const ledger = new ProcessedLedger('c');
  for (const record of records) if (record.t === 'in') ledger.add(record.d, record.r === 1);
  const { sent, rejected } = traffic.counts();
  const clientToServer = ledger.tally(sent);
  const serverToClient = received.tally(upstreamTarget);
  const closed = records.find((record) => (record as { t: string }).t === 'closed') as unknown as
    | { ms: number; p: number }
    | undefined;
  const recovering = states
    .slice(statesBefore)
    .filter(
      (state): state is Extract<ConnectionState, { status: 'recovering' }> => state.status === 'recovering',
    );
  const handoffMs = Math.round(resumedAt - terminatedAt);
  // The client's part: from being told to move to resumed on B (connect, handshake, B's claim).
  const moveMs = goAway ? Math.round(resumedAt - goAway.at) : Number.NaN;
  const sigterm = records.find((record) => (record as { t: string }).t === 'sigterm') as unknown as {
    at: number;
  };
  console.log(
    `[graceful handoff] wall clock from A's SIGTERM handler: GOAWAY at client +${(wall.goaway ?? 0) - sigterm.at} ms, resumed +${(wall.resumed ?? 0) - sigterm.at} ms, A closed +${((closed as { at?: number } | undefined)?.at ?? 0) - sigterm.at} ms`,
  );
  console.log(
    `[graceful handoff] SIGTERM to A -> resumed on B: ${handoffMs} ms; GOAWAY -> resumed: ${moveMs} ms (GOAWAY received ${goAway ? Math.round(goAway.at - terminatedAt) : '-'} ms after SIGTERM; A's close() took ${closed?.ms} ms); recovery delays ${JSON.stringify(recovering.map((state) => state.delayMs))}; client->server ${JSON.stringify(clientToServer)}; server->client ${JSON.stringify(serverToClient)}`,
  );

  expect(goAway?.event).toMatchObject({ type: 'goaway', url: b.url, delayMs: 0 });
  // The GOAWAY's hint replaced the backoff: one attempt, at once, and it went to B.
  expect(recovering.map((state) => [state.attempt, state.delayMs])).toEqual([[1, 0]]);
  // Bounds for a loaded 2-core machine; the figures are printed above.
  expect(moveMs).toBeLessThan(2_000);
  expect(handoffMs).toBeLessThan(5_000);
  expect(aCode).toBe(0);
  expect(closed?.p).toBe(a.child.pid);
  expect(clientToServer).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, redelivered: 0 });
  expect(serverToClient).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(rejected).toBe(0);
  expect(events.filter(({ event }) => event.type === 'lost')).toEqual([]);
  // B served the session after the handoff: messages were recorded by B's process.
  expect(new Set(records.filter((record) => record.t === 'in').map((record) => record.p))).toEqual(
    new Set([a.child.pid, b.child.pid]),
  );
}, 120_000);
