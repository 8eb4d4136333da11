// Processing guarantees (issue 14): examples/exactly-once-server.ts, a resume server with
// `ack: 'manual'` whose application commits each message's effect and its idempotency record in
// one SQLite transaction, is killed with SIGKILL mid-stream again and again. Counted from the
// application's own tables: every client message's effect exists exactly once, and every message
// handed to the application a second time was flagged `redelivered`.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { openSqliteDatabase } from '@lifeline/node/stores/sqlite';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import { pace } from './support/durable-harness.js';
import { condition } from './support/resume-tally.js';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
const RATE = 1_000;
const KILLS = 8;
/** Client messages acknowledged by each server process (so: committed by its application) before it is killed. */
const PER_PROCESS = 250;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts the example; resolves with the process and its port once it listens. */
async function startServer(dir: string, port: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@lifeline/source',
      '--import',
      'tsx',
      'exactly-once-server.ts',
      '--port',
      String(port),
      '--sessions',
      join(dir, 'sessions.db'),
      '--app',
      join(dir, 'app.db'),
    ],
    { cwd: examples, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`server exited (${code ?? signal}) before listening`)),
    );
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
  });
  lines.close();
  child.stdout!.resume();
  return { child, port: Number(new URL(url).port) };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

test(`ack: 'manual', effect and idempotency record in one SQLite transaction, server SIGKILLed ${KILLS} times: every effect exactly once, every redelivery flagged`, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-effects-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  let server = await startServer(dir, 0);
  cleanups.push(() => kill(server.child));
  const { port } = server;

  const transport = resumable(wsTransport(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 2_000 }));
  const events: SessionEvent[] = [];
  transport.session$.subscribe((event) => events.push(event));
  const conn = attach(transport, {
    backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    maxAttemptsPerFailure: 1_000,
    maxRecoveries: 1_000,
    minUptimeMs: 0,
  });
  cleanups.push(async () => conn.close());

  // c1, c2... at RATE; a send resolves once the server acknowledged it, which in manual mode
  // means its application committed the effect.
  const start = performance.now();
  let poke = () => {};
  const due = () => Math.floor(((performance.now() - start) * RATE) / 1_000);
  const traffic = pace(conn, due, () => poke(), 2_000);
  cleanups.push(async () => traffic.stop());
  const waitFor = async (check: () => boolean, timeoutMs: number, what: string) => {
    const waiting = condition(check, timeoutMs, what);
    poke = waiting.poke;
    try {
      await waiting.promise;
    } finally {
      poke = () => {};
    }
  };

  for (let round = 1; round <= KILLS; round++) {
    const before = traffic.counts().acknowledged;
    await waitFor(
      () => traffic.counts().acknowledged - before >= PER_PROCESS,
      30_000,
      `${PER_PROCESS} acks from process ${round}`,
    );
    await kill(server.child);
    server = await startServer(dir, port);
  }
  traffic.stop();
  await waitFor(
    () => traffic.counts().acknowledged === traffic.counts().sent,
    60_000,
    'every message acknowledged',
  );
  const { sent, rejected } = traffic.counts();
  await kill(server.child);

  // The application's own tables, read after its last process is gone.
  const app = await openSqliteDatabase(join(dir, 'app.db'));
  cleanups.push(async () => app.close());
  const orders = app.prepare('SELECT seq, body FROM orders ORDER BY rowid').all() as {
    seq: number;
    body: string;
  }[];
  const deliveries = app.prepare('SELECT seq, redelivered, pid FROM deliveries ORDER BY rowid').all() as {
    seq: number;
    redelivered: number;
    pid: number;
  }[];
  const unflagged = app.prepare('SELECT COUNT(*) AS n FROM unflagged_duplicates').get() as { n: number };

  const effects = new Map<number, number>();
  for (const { seq, body } of orders) {
    expect(body).toBe(`c${seq}`);
    effects.set(seq, (effects.get(seq) ?? 0) + 1);
  }
  const duplicatedEffects = [...effects.values()].filter((count) => count > 1).length;
  const lostEffects = sent - [...effects.keys()].filter((seq) => seq >= 1 && seq <= sent).length;

  // Per seq, in the order the application saw them: every hand-over after the first must be flagged.
  const seen = new Set<number>();
  let redeliveries = 0;
  let unflaggedRedeliveries = 0;
  let flagged = 0;
  for (const { seq, redelivered } of deliveries) {
    if (redelivered) flagged++;
    if (seen.has(seq)) {
      redeliveries++;
      if (!redelivered) unflaggedRedeliveries++;
    }
    seen.add(seq);
  }
  const processes = new Set(deliveries.map((delivery) => delivery.pid)).size;
  console.log(
    `[exactly-once effects] ${KILLS} SIGKILLs, ${processes} server processes: sent ${sent}, effects ${orders.length} (lost ${lostEffects}, duplicated ${duplicatedEffects}); deliveries ${deliveries.length}, redeliveries ${redeliveries} (unflagged ${unflaggedRedeliveries}), flagged ${flagged}`,
  );

  expect(rejected).toBe(0);
  expect(sent).toBeGreaterThan(KILLS * PER_PROCESS);
  expect({ effects: orders.length, lostEffects, duplicatedEffects }).toEqual({
    effects: sent,
    lostEffects: 0,
    duplicatedEffects: 0,
  });
  expect(unflaggedRedeliveries).toBe(0);
  expect(unflagged.n).toBe(0);
  // The kills did land between commits and acknowledgements: the guarantee was exercised.
  expect(redeliveries).toBeGreaterThan(0);
  expect(processes).toBe(KILLS + 1);
  // One session throughout, resumed after every kill.
  expect(events.filter((event) => event.type === 'lost')).toEqual([]);
  expect(events.filter((event) => event.type === 'resumed').length).toBeGreaterThanOrEqual(KILLS);
}, 180_000);
