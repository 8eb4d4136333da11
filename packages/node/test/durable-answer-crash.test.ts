// Request/response across a SIGKILL: the server must never store that it received a request
// (and so acknowledge it for good) while its answer exists only in memory. A burst far beyond
// the server's replay window makes most answers wait for room when the requests are acknowledged;
// the server is killed right then, and every answer must still arrive, exactly once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attach } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import {
  DurableServer,
  type DurableServerOptions,
  ProcessedLedger,
  readServerLog,
} from './support/durable-harness.js';
import { RedisServer } from './support/redis-server.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

/** Requests sent at once. */
const BURST = 3_000;
/**
 * The server's replay window: small, so that answers wait for room for certain (at the default
 * 1,024 they wait too, see examples/demo-server.ts, but how many depends on the machine's speed).
 */
const WINDOW = 64;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function burstThenKill(store: string, dir: string) {
  const log = join(dir, 'server.log');
  const options: DurableServerOptions = {
    store,
    log,
    upstream: { total: 0, rate: 1, start: Date.now() },
    app: 'echo',
    // A loaded machine can hold a Redis write up for more than the process's default 500 ms.
    serverOptions: { maxReplayMessages: WINDOW, maxWaitingMessages: BURST },
  };
  let server = await DurableServer.start(options);
  cleanups.push(() => server.kill());
  const port = server.port;

  const transport = resumable(wsTransport(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 2_000 }), {
    maxReplayMessages: BURST,
    maxWaitingMessages: BURST,
  });
  const events: SessionEvent[] = [];
  transport.session$.subscribe((event) => events.push(event));
  const conn = attach(transport, {
    backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    maxAttemptsPerFailure: 1_000,
    minUptimeMs: 0,
    queue: { maxMessages: BURST },
  });
  cleanups.push(async () => conn.close());

  let poke = () => {};
  const answers = new NumberedStream('e');
  conn.messages$.subscribe((message) => {
    answers.add(message);
    poke();
  });
  let acknowledged = 0;
  let rejected = 0;
  for (let n = 1; n <= BURST; n++) {
    conn.send(`c${n}`).then(
      () => {
        acknowledged++;
        poke();
      },
      () => rejected++,
    );
  }
  const waitFor = async (check: () => boolean, timeoutMs: number, what: string) => {
    const waiting = waiter();
    poke = waiting.poke;
    try {
      await waiting.until(check, timeoutMs, what);
    } finally {
      poke = () => {};
    }
  };

  // Every request acknowledged: the server stored that it received them all.
  await waitFor(() => acknowledged === BURST, 60_000, `${BURST} acknowledgements`);
  const answeredAtKill = answers.received;
  await server.kill();
  server = await DurableServer.start({ ...options, port });

  // Until every answer arrived; on a timeout the counts below say what is missing.
  await waitFor(() => answers.tally(BURST).lost === 0, 30_000, 'every answer').catch(() => {});

  const records = readServerLog(log);
  const ledger = new ProcessedLedger('c');
  for (const record of records) if (record.t === 'in') ledger.add(record.d, record.r === 1);
  return {
    answeredAtKill,
    clientToServer: ledger.tally(BURST),
    serverToClient: answers.tally(BURST),
    acknowledged,
    rejected,
    refused: records.filter((record) => record.t === 'refused'),
    storeErrors: records.filter((record) => record.t === 'store'),
    events,
  };
}

function check(result: Awaited<ReturnType<typeof burstThenKill>>, label: string) {
  console.log(
    `[${label}] burst ${BURST}, window ${WINDOW}, SIGKILL once all acknowledged with ${result.answeredAtKill} answers in: client->server ${JSON.stringify(result.clientToServer)}; server->client ${JSON.stringify(result.serverToClient)}`,
  );
  // The kill came while most answers still waited for room in the server's window.
  expect(result.answeredAtKill).toBeLessThan(BURST - WINDOW);
  expect(result.serverToClient).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(result.clientToServer).toMatchObject({ processed: BURST, lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(result.acknowledged).toBe(BURST);
  expect(result.rejected).toBe(0);
  expect(result.refused).toEqual([]);
  expect(result.storeErrors).toEqual([]);
  expect(result.events.filter((event) => event.type === 'lost')).toEqual([]);
  expect(result.events.filter((event) => event.type === 'resumed').length).toBeGreaterThanOrEqual(1);
}

test('SQLite: a burst of requests beyond the replay window, the server SIGKILLed once it acknowledged them all: every answer arrives, once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-answers-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  check(await burstThenKill(`sqlite:${join(dir, 'sessions.db')}`, dir), 'answers sqlite');
}, 120_000);

test('Redis: the same burst and SIGKILL of the server, its Redis kept: every answer arrives, once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-answers-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  check(await burstThenKill(`redis:${redis.url}`, dir), 'answers redis');
}, 120_000);
