import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wsTransport } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import {
  DurableServer,
  durableClient,
  ProcessedLedger,
  pace,
  readServerLog,
} from './support/durable-harness.js';
import { NumberedStream, waiter } from './support/resume-tally.js';

const RATE = 2_000;
const KILLS = 20;
/** Messages each way through every server process before it is killed. */
const PER_PROCESS = 300;

test('a server killed with SIGKILL 20 times mid-stream at 2,000 msg/s each way, SQLite store: zero lost, zero duplicated, in order, upstream included', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-durable-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = `sqlite:${join(dir, 'sessions.db')}`;
  const log = join(dir, 'server.log');
  const start = Date.now();
  // An upstream that never ends: event n is due at start + n / RATE, whether a server runs or not.
  const upstream = { total: 1e9, rate: RATE, start };
  const due = () => Math.floor(((Date.now() - start) * RATE) / 1_000);

  const wait = waiter();
  const poke = wait.poke;
  let server = await DurableServer.start({ store, upstream, log });
  cleanups.push(() => server.kill());
  const port = server.port;

  const { conn, events } = durableClient(wsTransport(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 2_000 }), {
    backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    maxAttemptsPerFailure: 1_000,
  });
  cleanups.push(async () => conn.close());
  const received = new NumberedStream('u');
  conn.messages$.subscribe((message) => {
    received.add(message);
    poke();
  });

  // The client sends c1, c2... at RATE, paced by the clock; a send resolves when the server acknowledged it.
  const traffic = pace(conn, due, poke);
  cleanups.push(async () => traffic.stop());

  const waitFor = (check: () => boolean, timeoutMs: number, what: string) =>
    wait.until(check, timeoutMs, what, () => ({
      ...traffic.counts(),
      upstreamReceived: received.received,
      due: due(),
    }));

  let producedWhileDown = 0;
  for (let kill = 1; kill <= KILLS; kill++) {
    // Mid-stream: this process acknowledged (so processed) client messages and sent upstream events.
    const [upstreamBefore, acknowledgedBefore] = [received.received, traffic.counts().acknowledged];
    await waitFor(
      () =>
        traffic.counts().acknowledged - acknowledgedBefore >= PER_PROCESS &&
        received.received - upstreamBefore >= PER_PROCESS,
      30_000,
      `${PER_PROCESS} messages each way through server process ${kill}`,
    );
    const killedAt = due();
    await server.kill();
    server = await DurableServer.start({ port, store, upstream, log });
    producedWhileDown += due() - killedAt;
  }

  // Stop sending; everything sent is acknowledged, and the upstream due by now arrives.
  traffic.stop();
  const upstreamTarget = due();
  await waitFor(
    () => traffic.counts().acknowledged === traffic.counts().sent && received.received >= upstreamTarget,
    60_000,
    'every message each way',
  );
  // The server application's own record, written synchronously by every process it ran in.
  const records = readServerLog(log);
  const ledger = new ProcessedLedger('c');
  for (const record of records) if (record.t === 'in') ledger.add(record.d, record.r === 1);
  const sessionLines = records.filter((record) => record.t === 'session');
  const storeErrors = records.filter((record) => record.t === 'store');
  const { sent, rejected } = traffic.counts();
  const clientToServer = ledger.tally(sent);
  const serverToClient = received.tally(upstreamTarget);
  console.log(
    `[durable sqlite] ${KILLS} SIGKILLs: client->server ${JSON.stringify(clientToServer)}; server->client (upstream) ${JSON.stringify(serverToClient)}; upstream events produced while no server ran: ${producedWhileDown}`,
  );

  expect(clientToServer).toMatchObject({ sent, processed: sent, lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(serverToClient).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(sent).toBeGreaterThan(KILLS * PER_PROCESS);
  expect(rejected).toBe(0);
  expect(producedWhileDown).toBeGreaterThan(0);
  expect(storeErrors).toEqual([]);
  // One session throughout: never lost, resumed after every kill.
  expect(events.filter((event) => event.type === 'lost')).toEqual([]);
  expect(events.filter((event) => event.type === 'new')).toHaveLength(1);
  expect(events.filter((event) => event.type === 'resumed').length).toBeGreaterThanOrEqual(KILLS);
  // Each restarted process took the session over from the file and continued the upstream after its cursor.
  const restored = sessionLines.filter((line) => line.restored);
  expect(new Set(sessionLines.map((line) => line.s)).size).toBe(1);
  expect(new Set(restored.map((line) => line.p)).size).toBe(KILLS);
  expect(restored.every((line) => line.from > 1)).toBe(true);
}, 150_000);

test('examples/upstream-relay.ts: its server killed three times, every upstream event arrives exactly once', async () => {
  const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      '--conditions=@lifeline/source',
      '--import',
      'tsx',
      'upstream-relay.ts',
      '--events',
      '2000',
      '--rate',
      '800',
    ],
    { cwd: examples, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const number = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1]);
  expect(number('received \\(unique\\)'), output).toBe(2_000);
  expect(number('lost')).toBe(0);
  expect(number('duplicated')).toBe(0);
  expect(number('out of order')).toBe(0);
  expect(number('server kills')).toBe(3);
  expect(code).toBe(0);
}, 60_000);
