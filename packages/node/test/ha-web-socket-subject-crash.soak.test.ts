/**
 * haWebSocket() through a crash loop: a real server process SIGKILLed and restarted on the same
 * port, at least 8 times, while the client calls next() 500 times a second.
 *
 * Plain (an echo server): every value given to next() is either written to a socket or refused
 * loudly on refused$; none vanishes. What a kill takes with it (written, never echoed) is counted
 * and bounded. With resume (a resume server on SQLite): 0 lost and 0 duplicated both ways, and
 * three multiplexed streams each get every event exactly once, with no re-subscribe.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Link, type LinkData, QueueOverflowError, type Transport } from '@lifeline/core';
import type { HAWebSocketRefusal, SessionEvent } from '@lifeline/core/internal';
import { haWebSocket } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { ProcessedLedger } from './support/durable-harness.js';
import { waiter } from './support/resume-tally.js';
import { ChildStreamServer } from './support/ws-servers.js';

const KILLS = 8;
const RATE = 500;

/** Every guarantee is tested at default options: the defaults are the product. */
const CRASH_LOOP = {} as const;

/** Calls `send(n)` for n = 1, 2... at `rate` per second, paced by the clock; returns the stop function. */
function pace(rate: number, send: (n: number) => void): { stop(): void; readonly sent: number } {
  const start = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * rate) / 1_000);
    while (sent < due) send(++sent);
  }, 5);
  const pacer = {
    stop: () => clearInterval(timer),
    get sent() {
      return sent;
    },
  };
  cleanups.push(pacer.stop);
  return pacer;
}

test(`plain: an echo server SIGKILLed ${KILLS} times under 500 next()/s, every value is written or refused loudly`, async () => {
  const server = new ChildStreamServer(1_000);
  await server.start();
  cleanups.push(() => server.kill());
  // Counts what each link confirmed written: the client's own record of what left it.
  const written = new Set<string>();
  const countWrites = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) =>
        link.send(data).then(() => {
          written.add(String(data));
        });
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
  const subject = haWebSocket<string>({
    url: server.url,
    serializer: String,
    deserializer: (event) => String(event.data),
    wrapTransport: countWrites,
    ...CRASH_LOOP,
  });
  cleanups.push(() => subject.unsubscribe());
  const refused: HAWebSocketRefusal<string>[] = [];
  subject.refused$.subscribe((refusal) => refused.push(refusal));
  const wait = waiter();
  const echoed = new Map<string, number>();
  const ended: string[] = [];
  subject.subscribe({
    next: (message) => {
      if (message.startsWith('echo:')) {
        const value = message.slice(5);
        echoed.set(value, (echoed.get(value) ?? 0) + 1);
      }
      wait.poke();
    },
    error: (error) => ended.push(`error ${error}`),
    complete: () => ended.push('complete'),
  });
  const pacer = pace(RATE, (n) => subject.next(`c${n}`));
  const state = () => ({ sent: pacer.sent, echoed: echoed.size, refused: refused.length, ended });

  // What each kill may take with it: values written on the link and not echoed yet when the
  // client saw the link go down (after that, nothing is written until a new link is up).
  const inFlightAtKills = new Set<string>();
  for (let kill = 1; kill <= KILLS; kill++) {
    const before = echoed.size;
    await wait.until(() => echoed.size - before >= 300, 30_000, `300 echoes from server ${kill}`, state);
    await server.kill();
    await firstValueFrom(subject.state$.pipe(filter((s) => s.status === 'recovering')));
    for (const value of written) if (!echoed.has(value)) inFlightAtKills.add(value);
    await server.start();
  }
  await wait.until(() => echoed.size >= 300 * KILLS + 300, 30_000, 'echoes from the last server', state);
  pacer.stop();
  const sent = pacer.sent;
  // Everything given to next() has left the queue: written on a link, or refused.
  await wait.until(
    () => subject.connection?.pending.messages === 0 && written.size + refused.length >= sent,
    30_000,
    'the queue to drain',
    state,
  );
  const values = Array.from({ length: sent }, (_, i) => `c${i + 1}`);
  // The last values written are echoed by the server that is still running.
  await wait.until(
    () => values.every((value) => echoed.has(value) || inFlightAtKills.has(value) || !written.has(value)),
    30_000,
    'the echoes of the last server',
    state,
  );
  const refusedValues = new Set(refused.map((refusal) => refusal.value));
  const silent = values.filter((value) => !written.has(value) && !refusedValues.has(value)).length;
  const lostWithServer = values.filter((value) => written.has(value) && !echoed.has(value));
  const lostInFlight = lostWithServer.length;
  const lostOtherwise = lostWithServer.filter((value) => !inFlightAtKills.has(value)).length;
  const duplicated = [...echoed.values()].reduce((sum, count) => sum + count - 1, 0);
  console.log(
    `[haWebSocket plain] ${KILLS} SIGKILLs: sent ${sent}, written ${written.size}, refused ${refused.length}, silently lost ${silent}, written and never echoed ${lostInFlight} (written and not yet echoed at a kill: ${inFlightAtKills.size}), echoed twice ${duplicated}`,
  );
  expect(silent).toBe(0);
  // A plain WebSocket is at-most-once across a crash: what the server had not echoed when it
  // died is gone, and only that (no value written later, on a recovered link, is lost).
  expect(lostOtherwise).toBe(0);
  expect(refused.filter((refusal) => !(refusal.error instanceof QueueOverflowError))).toEqual([]);
  expect(ended).toEqual([]);
  expect(server.starts).toBe(KILLS + 1);
}, 120_000);

const serverScript = fileURLToPath(new URL('./support/subject-server-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

/** The resume server of subject-server-process.ts, killable with SIGKILL and restartable on its port. */
async function startResumeServer(args: {
  port: number;
  db: string;
  rate: number;
  start: number;
  log: string;
}) {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=@lifeline/source',
      '--import',
      'tsx',
      serverScript,
      String(args.port),
      args.db,
      String(args.rate),
      String(args.start),
      args.log,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  cleanups.push(kill);
  const lines = createInterface({ input: child.stdout! });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code, signal) =>
        reject(new Error(`server exited (${code ?? signal}) before listening`)),
      );
      lines.once('line', (text) => resolve((JSON.parse(text) as { port: number }).port));
    });
    return { port, kill, pid: child.pid! };
  } finally {
    lines.close();
    child.stdout!.resume();
  }
}

test(`resume: a SQLite resume server SIGKILLed ${KILLS} times, 0 lost and 0 duplicated both ways, three multiplexed streams exactly once`, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lifeline-subject-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const db = join(dir, 'sessions.db');
  const log = join(dir, 'server.log');
  const streamRate = 100;
  const start = Date.now();
  const due = () => Math.floor(((Date.now() - start) * streamRate) / 1_000);
  let server = await startResumeServer({ port: 0, db, rate: streamRate, start, log });
  const port = server.port;

  type Message = { s: string; n: number };
  const subject = haWebSocket<Message | string | { sub: string } | { unsub: string }>({
    url: `ws://127.0.0.1:${port}`,
    resume: { maxReplayMessages: 8_192 },
    ...CRASH_LOOP,
  });
  cleanups.push(() => subject.unsubscribe());
  const refused: HAWebSocketRefusal<unknown>[] = [];
  subject.refused$.subscribe((refusal) => refused.push(refusal));
  const wait = waiter();
  const ended: string[] = [];
  const names = ['A', 'B', 'C'] as const;
  /** Per stream: every event number received, in order of arrival. */
  const received = new Map<string, number[]>(names.map((name) => [name, []]));
  const misrouted: unknown[] = [];
  for (const name of names) {
    subject
      .multiplex(
        () => ({ sub: name }),
        () => ({ unsub: name }),
        (message) => typeof message === 'object' && 's' in message && message.s === name,
      )
      .subscribe({
        next: (message) => {
          const { s, n } = message as Message;
          if (s === name) received.get(name)!.push(n);
          else misrouted.push(message);
          wait.poke();
        },
        error: (error) => ended.push(`${name} error ${error}`),
        complete: () => ended.push(`${name} complete`),
      });
  }
  const sessionEvents: SessionEvent[] = [];
  await wait.until(
    () => subject.session !== undefined,
    10_000,
    'the session',
    () => ({}),
  );
  subject.session!.events$.subscribe((event) => sessionEvents.push(event));
  const count = (name: string) => received.get(name)!.length;
  // Every stream has had an event appended (its subscription is in the session's cursor) before
  // the first kill: from then on, the session alone carries the subscriptions.
  await wait.until(
    () => names.every((name) => count(name) > 0),
    30_000,
    'each stream started',
    () => ({}),
  );
  const pacer = pace(RATE, (n) => subject.next(`c${n}`));
  const state = () => ({
    sent: pacer.sent,
    streams: names.map(count),
    due: due(),
    refused: refused.length,
    pending: subject.connection?.pending,
    ended,
  });

  for (let kill = 1; kill <= KILLS; kill++) {
    const before = names.map(count);
    await wait.until(
      () => names.every((name, i) => count(name) - before[i]! >= 100),
      30_000,
      `100 events per stream through server ${kill}`,
      state,
    );
    await server.kill();
    server = await startResumeServer({ port, db, rate: streamRate, start, log });
  }
  pacer.stop();
  const sent = pacer.sent;
  const target = due();
  // Every value acknowledged by the server (a resumed send settles on acknowledgement), and every
  // stream caught up with what was due when sending stopped.
  await wait.until(
    () => subject.connection?.pending.messages === 0 && names.every((name) => count(name) >= target),
    60_000,
    'every message each way',
    state,
  );

  const records = (await readFile(log, 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { s: string; q: number; d: string; p: number; r?: 1 });
  const ledger = new ProcessedLedger('c');
  const subscribes = new Map<string, Set<number>>();
  for (const record of records) {
    const value = JSON.parse(record.d) as string | { sub?: string };
    if (typeof value === 'string') ledger.add(value, record.r === 1);
    else if (value.sub !== undefined) {
      const seqs = subscribes.get(value.sub) ?? new Set();
      seqs.add(record.q);
      subscribes.set(value.sub, seqs);
    }
  }
  const streams = names.map((name) => {
    const numbers = received.get(name)!;
    const seen = new Set(numbers);
    let lost = 0;
    for (let n = 1; n <= target; n++) if (!seen.has(n)) lost++;
    const outOfOrder = numbers.filter((n, i) => i > 0 && n !== numbers[i - 1]! + 1).length;
    return { name, received: numbers.length, lost, duplicated: numbers.length - seen.size, outOfOrder };
  });
  const clientToServer = ledger.tally(sent);
  console.log(
    `[haWebSocket resume] ${KILLS} SIGKILLs: client->server ${JSON.stringify(clientToServer)}; streams (due ${target} each) ${JSON.stringify(streams)}; refused ${refused.length}; session events ${sessionEvents.map((e) => e.type).join(',')}`,
  );
  expect(clientToServer).toMatchObject({ sent, processed: sent, lost: 0, duplicated: 0, outOfOrder: 0 });
  for (const stream of streams) expect(stream).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
  expect(misrouted).toEqual([]);
  expect(refused).toEqual([]);
  expect(ended).toEqual([]);
  // Each stream subscribed once for the whole run: the session carried it across every kill.
  expect(names.map((name) => subscribes.get(name)?.size)).toEqual([1, 1, 1]);
  expect(sessionEvents.filter((event) => event.type === 'lost')).toEqual([]);
  expect(sessionEvents.filter((event) => event.type === 'new').length).toBeLessThanOrEqual(1);
  expect(sessionEvents.filter((event) => event.type === 'resumed').length).toBeGreaterThanOrEqual(KILLS);
}, 180_000);
