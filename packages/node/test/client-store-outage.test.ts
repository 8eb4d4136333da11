/**
 * Issue 15: sends made while a client with a `FileClientSessionStore` has no link. The server is
 * cut off (a fault proxy refuses and resets every connection), the client process sends K
 * numbered messages during the outage and is SIGKILLed still in it; restarted on the same file
 * once the server is reachable again, the server receives every message exactly once, in order.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@lifeline/core/testing';
import {
  type ClientSessionStore,
  FileClientSessionStore,
  MemoryClientSessionStore,
} from '@lifeline/node/client-store';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket, resume } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { ClientProcess } from './support/client-store-harness.js';

const script = fileURLToPath(new URL('./support/client-store-outage-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

function startClient(url: string, path: string): ClientProcess {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, url, path],
    {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const client = new ClientProcess(child);
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await client.exited;
  });
  return client;
}

/** Counts the server's stream `c:1, c:2...` against the expected `1..n`. */
function tally(received: readonly string[], n: number) {
  const seen = new Set<number>();
  let duplicated = 0;
  let reordered = 0;
  let last = 0;
  for (const text of received) {
    const k = Number(text.slice(2));
    if (seen.has(k)) duplicated++;
    else if (k < last) reordered++;
    seen.add(k);
    last = Math.max(last, k);
  }
  let lost = 0;
  for (let k = 1; k <= n; k++) if (!seen.has(k)) lost++;
  return { received: received.length, lost, duplicated, reordered };
}

test('a client SIGKILLed during an outage loses none of the messages it sent in it: after a restart on the same file the server gets each once, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-outage-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'session.json');
  const server = createResumeServer();
  const received: string[] = [];
  const sessions: string[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session.id);
    session.messages$.subscribe(({ data }) => {
      received.push(typeof data === 'string' ? data : new TextDecoder().decode(data));
    });
  });
  const { port } = await server.listen();
  cleanups.push(() => server.close());
  const proxy = await FaultProxy.start({ target: { port } });
  cleanups.push(() => proxy.close());
  const url = `ws://127.0.0.1:${proxy.port}`;

  // Online: 20 messages, acknowledged.
  const first = startClient(url, path);
  await first.line((line) => 'restored' in line, 'opening');
  first.child.stdin!.write('send 1 20\nacked 20\n');
  await first.line((line) => line.acked === 20, 'the first 20 acknowledged');

  // The outage: the server is unreachable; the client notices, then sends K messages.
  proxy.refuseNewConnections();
  proxy.resetAll();
  await first.line((line) => line.recovering === true, 'recovering');
  const K = 300;
  first.child.stdin!.write(`send 21 ${20 + K}\n`);
  await first.line((line) => line.sent === 20 + K, 'the outage sends');
  // The store holds them (the window a synchronous send() leaves is one write): then the kill.
  // Bounded, so that a client that never stores them fails on the counts below, not on a hang.
  const stored = await Promise.race([
    first.line((line) => line.stored === 20 + K, 'the outage sends stored'),
    new Promise<undefined>((resolve) => {
      const timer = setTimeout(resolve, 15_000);
      cleanups.push(() => clearTimeout(timer));
    }),
  ]);
  await first.kill();

  // Restarted on the same file, the server reachable again.
  proxy.refuseNewConnections(false);
  const second = startClient(url, path);
  const open = await second.line((line) => 'restored' in line, 'reopening');
  const restored = open.restored as { lastSent: number; pendingOutgoing: number } | null;
  // The application continues its numbering after what the store kept, as the docs say.
  const next = (restored?.lastSent ?? 0) + 1;
  second.child.stdin!.write(`send ${next} ${next + 9}\nacked ${next + 9}\n`);
  await second.line((line) => line.acked === next + 9, 'the new messages acknowledged');
  // Every message either process handed to send(): 1..20+K by the first, 10 more by the second.
  const n = Math.max(20 + K, next + 9);

  const counts = { sent: 20 + K + 10, ...tally(received, n) };
  expect(counts).toEqual({ sent: 30 + K, received: 30 + K, lost: 0, duplicated: 0, reordered: 0 });
  expect(stored).toBeDefined();
  expect(restored).toMatchObject({ lastSent: 20 + K, pendingOutgoing: K });
  expect(received).toEqual(Array.from({ length: n }, (_, i) => `c:${i + 1}`));
  expect(sessions).toHaveLength(1);
  await second.kill();
});

/**
 * A connection gives up during an outage holding 9 stored sends; a new socket, made as soon as the
 * first one's `close` event is seen, opens the store and re-sends them once the server is back.
 */
async function giveUpThenReopen(makeStore: () => ClientSessionStore) {
  const server = createResumeServer();
  const received: string[] = [];
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      received.push(typeof data === 'string' ? data : new TextDecoder().decode(data));
    });
  });
  const { port } = await server.listen();
  cleanups.push(() => server.close());
  const proxy = await FaultProxy.start({ target: { port } });
  cleanups.push(() => proxy.close());
  const url = `ws://127.0.0.1:${proxy.port}`;

  const first = new HAWebSocket(url, {
    resume: resume({ store: makeStore() }),
    maxAttemptsPerFailure: 2,
    backoff: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  cleanups.push(() => first.close());
  await new Promise((resolve) => first.addEventListener('open', resolve, { once: true }));
  await first.sendAsync('c:1');
  // The server becomes unreachable: the connection sends 9 more (stored), then gives up.
  proxy.refuseNewConnections();
  proxy.resetAll();
  for (let k = 2; k <= 10; k++) first.send(`c:${k}`);
  const gaveUp = await new Promise<CloseEvent>((resolve) =>
    first.addEventListener('close', resolve as (event: Event) => void, { once: true }),
  );
  expect(gaveUp.wasClean).toBe(false);
  // close() on a connection that already ended is a no-op, not an error.
  expect(() => first.close()).not.toThrow();

  // The server is back: a new socket on the store resumes the session and sends them once.
  proxy.refuseNewConnections(false);
  const second = new HAWebSocket(url, { resume: resume({ store: makeStore() }) });
  cleanups.push(() => second.close());
  const outcome = await new Promise<string>((resolve) => {
    second.addEventListener('open', () => resolve('open'), { once: true });
    second.addEventListener('error', (event) => resolve(`error ${String((event as ErrorEvent).error)}`), {
      once: true,
    });
  });
  expect(outcome).toBe('open');
  expect(second.session?.restored).toMatchObject({ pendingOutgoing: 9 });
  await waitFor(() => received.length >= 10 && second.session?.pending === 0, {
    timeoutMs: 20_000,
    what: 'the stored messages re-sent and acknowledged',
    state: () => ({ received: received.join(','), pending: second.session?.pending }),
  });
  expect(tally(received, 10)).toEqual({ received: 10, lost: 0, duplicated: 0, reordered: 0 });
  second.close();
}

test('a connection that gives up keeps its stored session but releases the store: a new socket on the same MemoryClientSessionStore re-sends the stored messages once', async () => {
  const store = new MemoryClientSessionStore();
  await giveUpThenReopen(() => store);
  await waitFor(() => !store.owned, { timeoutMs: 10_000, what: 'the store released after close()' });
});

test('the same with a FileClientSessionStore: a new store on the same file in this process takes the lock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-giveup-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'session.json');
  await giveUpThenReopen(() => new FileClientSessionStore(path));
  await waitFor(() => !existsSync(`${path}.lock`), {
    timeoutMs: 10_000,
    what: 'the lock removed after close()',
  });
});
