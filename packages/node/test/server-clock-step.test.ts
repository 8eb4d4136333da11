/**
 * Issue 10 item 9, server side: the server's timeouts and session TTL do not follow the wall
 * clock. The server runs in a child process whose `Date` the test steps one hour forward or back
 * (support/stepped-clock-server-process.ts); the monotonic clock runs on, as with a real step.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bytesToHex, encodeHello } from '@lifeline/core/internal';
import { Redis } from 'ioredis';
import { afterEach, expect, test } from 'vitest';
import { RawResumeClient } from './support/raw-resume-client.js';
import { RedisServer } from './support/redis-server.js';

const script = fileURLToPath(new URL('./support/stepped-clock-server-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const HOUR_MS = 3_600_000;

const children = new Set<ChildProcess>();
const clients: RawResumeClient[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  children.clear();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface SteppedServer {
  readonly port: number;
  readonly events: { event: string; session: string }[];
  /** Sends a command and resolves with the first line after it that has `key`. */
  ask(command: string, key: string): Promise<Record<string, unknown>>;
}

async function startServer(
  options: Record<string, number>,
  setup: { redisUrl?: string; originOffsetMs?: number } = {},
): Promise<SteppedServer> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@lifeline/source',
      '--import',
      'tsx',
      script,
      JSON.stringify(options),
      JSON.stringify(setup),
    ],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.add(child);
  const events: SteppedServer['events'] = [];
  const waiting: { key: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  const reader = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server process exited with ${code} before listening`)));
    reader.on('line', (text) => {
      const line = JSON.parse(text) as Record<string, unknown>;
      if ('port' in line) resolve(line.port as number);
      if ('event' in line) events.push(line as SteppedServer['events'][number]);
      const index = waiting.findIndex((waiter) => waiter.key in line);
      if (index >= 0) waiting.splice(index, 1)[0]!.resolve(line);
    });
  });
  return {
    port,
    events,
    ask: (command, key) =>
      new Promise((resolve) => {
        waiting.push({ key, resolve });
        child.stdin!.write(`${command}\n`);
      }),
  };
}

/** The close code, or a string saying the link was still open after `ms`. */
async function closedWithin(client: RawResumeClient, ms: number): Promise<number | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(resolve, ms, `still open after ${ms} ms`);
  });
  try {
    return await Promise.race([client.closed, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function connectRaw(port: number): Promise<RawResumeClient> {
  const client = await RawResumeClient.connect(`ws://127.0.0.1:${port}`);
  clients.push(client);
  return client;
}

test('server clock stepped forward 1 h: a session detached for a moment does not expire, and resumes', async () => {
  const server = await startServer({ sessionTtlMs: 60_000 });
  const first = await connectRaw(server.port);
  first.send(encodeHello(undefined, 0));
  const welcome = await first.next('welcome');
  expect(welcome).toBeDefined();
  await first.close();
  // The server has seen the link go: the session is detached and its TTL runs.
  const deadline = Date.now() + 10_000;
  while (!server.events.some((line) => line.event === 'detach')) {
    if (Date.now() > deadline) throw new Error('the session never detached');
    await server.ask('sweeps 1', 'swept');
  }
  await server.ask(`step ${HOUR_MS}`, 'stepped');
  // Two sweeps after the step: the first may have read the clock before it.
  await server.ask('sweeps 2', 'swept');
  expect(server.events.map((line) => line.event)).toEqual(['connect', 'detach']);

  const second = await connectRaw(server.port);
  second.send(encodeHello({ id: welcome!.id, token: welcome!.token }, 0));
  const resumed = await second.next('welcome');
  expect(resumed).toMatchObject({ resumed: true });
  await server.ask('sweeps 1', 'swept');
  expect(server.events.map((line) => line.event)).toEqual(['connect', 'detach', 'resume']);
}, 30_000);

test('server clock stepped back 1 h: the handshake timeout still closes a link that never says HELLO', async () => {
  const server = await startServer({ handshakeTimeoutMs: 500 });
  const client = await connectRaw(server.port);
  await server.ask(`step ${-HOUR_MS}`, 'stepped');
  const started = performance.now();
  // Bounded: 10 s is 20 handshake timeouts, against the hour the stepped wall clock would need.
  const code = await closedWithin(client, 10_000);
  // The server drops the link without a close handshake (abrupt), which the client sees as 1006.
  expect(code).toBe(1006);
  expect(performance.now() - started).toBeLessThan(10_000);
}, 30_000);

test('server clock stepped back 1 h: the idle timeout still closes a silent attached link', async () => {
  const server = await startServer({ pingIntervalMs: 200, idleTimeoutMs: 600 });
  const client = await connectRaw(server.port);
  client.send(encodeHello(undefined, 0));
  expect(await client.next('welcome')).toBeDefined();
  await server.ask(`step ${-HOUR_MS}`, 'stepped');
  // The client answers nothing (not even the server's PINGs): the link is presumed half-open.
  const code = await closedWithin(client, 10_000);
  expect(code).toBe(1006);
}, 30_000);

for (const offset of [-HOUR_MS, HOUR_MS]) {
  test(`Redis: a server whose clock was 1 h ${offset < 0 ? 'behind' : 'ahead of'} Redis's: a detached session's keys live for the TTL as Redis measures it, and it resumes`, async () => {
    const TTL_MS = 60_000;
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const client = new Redis(redis.url);
    cleanups.push(async () => client.disconnect());
    const server = await startServer(
      { sessionTtlMs: TTL_MS },
      { redisUrl: redis.url, originOffsetMs: offset },
    );
    const first = await connectRaw(server.port);
    first.send(encodeHello(undefined, 0));
    const welcome = await first.next('welcome');
    expect(welcome).toBeDefined();
    await first.close();
    const deadline = Date.now() + 10_000;
    while (!server.events.some((line) => line.event === 'detach')) {
      if (Date.now() > deadline) throw new Error('the session never detached');
      await server.ask('sweeps 1', 'swept');
    }
    // The detach is stored after the event: two sweeps later, the keys carry the detached TTL.
    await server.ask('sweeps 2', 'swept');
    const ttl = await client.pttl(`lifeline:${bytesToHex(welcome!.id)}:m`);
    // Measured by Redis from the write: at most the TTL, neither an hour more nor already gone.
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_MS);

    const second = await connectRaw(server.port);
    second.send(encodeHello({ id: welcome!.id, token: welcome!.token }, 0));
    expect(await second.next('welcome')).toMatchObject({ resumed: true });
  }, 60_000);
}
