// Issue 16 (break16 review): option values are checked where they are passed. Every public
// constructor and factory throws an InvalidOptionError, synchronously, naming the option as the
// caller wrote it, for NaN, a negative, a value too large for its kind (a timer of 2^31 ms or
// more runs after 1 ms in Node; a count beyond 2^53 is not an integer) and a wrong type, instead
// of a busy loop, a link that never opens or a limit that is none. And sends of data that is not
// message data: HAWebSocket converts it as WebSocket.send does, a resume session refuses it with
// an InvalidMessageError, never sending "" in its place.
import { once } from 'node:events';
import { createServer } from 'node:net';
import { attach, InvalidMessageError, InvalidOptionError } from '@lifeline/core/internal';
import { resume } from '@lifeline/core/resume';
import { createMemoryTransport } from '@lifeline/core/testing';
import { createHAFetch, HAEventSource } from '@lifeline/node/fetch';
import { createResumeServer, type ServerSession } from '@lifeline/node/server';
import { HATcpSocket } from '@lifeline/node/tcp';
import { HAWebSocket, haWebSocket } from '@lifeline/node/ws';
import { describe, expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

/** `{ a: { b: value } }` for the path 'a.b'. */
function at(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  let result: unknown = value;
  for (const key of keys.reverse()) result = { [key]: result };
  return result as Record<string, unknown>;
}

/** A port nothing listens on: a constructor that wrongly accepts an option connects nowhere. */
async function refusedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

const BAD = [
  ['NaN', Number.NaN],
  ['-1', -1],
  ['2^53 (too large)', 2 ** 53],
  ['the string "10"', '10'],
] as const;

/** The recovery policy, the queue and the heartbeat: what attach and every drop-in take. */
const CONNECTION_OPTIONS = [
  'maxAttemptsPerFailure',
  'maxRecoveries',
  'minUptimeMs',
  'backoff.initialDelayMs',
  'backoff.maxDelayMs',
  'backoff.ratio',
  'backoff.factor',
  'backoff.strategy',
  'backoff.jitter',
  'retryAfter.maxDelayMs',
  'heartbeat.intervalMs',
  'heartbeat.timeoutMs',
  'queue.maxMessages',
  'queue.maxBytes',
  'queue.overflow',
];
const RECOVERY_OPTIONS = CONNECTION_OPTIONS.filter((name) => !/^(queue|heartbeat)\./.test(name));

function cases(names: readonly string[]) {
  return names.flatMap((name) => BAD.map(([label, value]) => [name, label, value] as const));
}

/** Expects `make` to throw an InvalidOptionError whose message names `name`. */
function expectRefused(name: string, make: () => unknown): void {
  let made: unknown;
  const call = () => {
    made = make();
  };
  // A constructor that accepted the value made something that must not outlive the test.
  cleanups.push(() => {
    const thing = made as { close?: () => unknown; destroy?: () => unknown } | undefined;
    if (typeof thing?.close === 'function') return thing.close();
    thing?.destroy?.();
    return undefined;
  });
  expect(call).toThrow(InvalidOptionError);
  expect(call).toThrow(name);
}

describe('connection options: every option x NaN / -1 / too large / wrong type throws from the call', () => {
  test.each(cases(['connectTimeoutMs', ...CONNECTION_OPTIONS]))(
    'HAWebSocket %s = %s',
    async (name, _label, value) => {
      const url = `ws://127.0.0.1:${await refusedPort()}/`;
      expectRefused(name, () => new HAWebSocket(url, at(name, value) as never));
    },
  );

  test.each(cases(['connectTimeoutMs', ...CONNECTION_OPTIONS]))(
    'haWebSocket %s = %s',
    async (name, _label, value) => {
      const url = `ws://127.0.0.1:${await refusedPort()}/`;
      expectRefused(name, () => haWebSocket({ url, ...at(name, value) } as never));
    },
  );

  test.each(cases(['connectTimeoutMs', ...CONNECTION_OPTIONS]))(
    'HATcpSocket %s = %s',
    async (name, _label, value) => {
      const port = await refusedPort();
      expectRefused(name, () => new HATcpSocket({ port, ...at(name, value) } as never));
    },
  );

  test.each(cases(CONNECTION_OPTIONS))('attach %s = %s', (name, _label, value) => {
    const transport = createMemoryTransport();
    expectRefused(name, () => attach(transport, at(name, value) as never));
  });

  test.each(cases(['maxHeldBytes', ...RECOVERY_OPTIONS]))('createHAFetch %s = %s', (name, _label, value) => {
    expectRefused(name, () => createHAFetch(at(name, value) as never));
  });

  test.each(cases(['maxHeldBytes', ...RECOVERY_OPTIONS]))(
    'HAEventSource %s = %s',
    async (name, _label, value) => {
      const url = `http://127.0.0.1:${await refusedPort()}/`;
      expectRefused(name, () => new HAEventSource(url, at(name, value) as never));
    },
  );
});

const SESSION_OPTIONS = [
  'ackEvery',
  'ackDelayMs',
  'maxFrameBytes',
  'maxReplayMessages',
  'maxReplayBytes',
  'maxWaitingMessages',
  'maxWaitingBytes',
  'maxUnreadMessages',
  'maxUnreadBytes',
  'outputHighWaterBytes',
  'onWindowFull',
];

describe('resume options: every option x NaN / -1 / too large / wrong type throws from the call', () => {
  test.each(cases(['handshakeTimeoutMs', ...SESSION_OPTIONS]))('resume() %s = %s', (name, _label, value) => {
    expectRefused(name, () => resume(at(name, value) as never));
  });

  test.each(
    cases([
      'sessionTtlMs',
      'maxSessions',
      'maxSessionsPerAddress',
      'handshakeTimeoutMs',
      'pingIntervalMs',
      'idleTimeoutMs',
      'ack',
      ...SESSION_OPTIONS,
    ]),
  )('createResumeServer %s = %s', (name, _label, value) => {
    expectRefused(name, () => createResumeServer(at(name, value) as never));
  });
});

describe("the reviewer's cases", () => {
  test.each([
    ['connectTimeoutMs', Number.POSITIVE_INFINITY],
    ['connectTimeoutMs', 2 ** 31],
    ['connectTimeoutMs', 1e12],
    ['connectTimeoutMs', 0],
    ['backoff.maxDelayMs', 1e12],
    ['heartbeat.intervalMs', 0],
    ['heartbeat.timeoutMs', 0],
  ] as const)('HAWebSocket %s = %s throws, naming it', async (name, value) => {
    const url = `ws://127.0.0.1:${await refusedPort()}/`;
    expectRefused(name, () => new HAWebSocket(url, at(name, value) as never));
  });

  test('with resume, connectTimeoutMs 0 is reported as connectTimeoutMs (not handshakeTimeoutMs)', async () => {
    const url = `ws://127.0.0.1:${await refusedPort()}/`;
    expectRefused('connectTimeoutMs', () => new HAWebSocket(url, { resume: true, connectTimeoutMs: 0 }));
  });

  test('HATcpSocket connectTimeoutMs 1e12 throws', async () => {
    const port = await refusedPort();
    expectRefused('connectTimeoutMs', () => new HATcpSocket({ port, connectTimeoutMs: 1e12 }));
  });

  test.each([
    ['handshakeTimeoutMs', 1e12],
    ['handshakeTimeoutMs', -1],
    ['idleTimeoutMs', -1],
    ['maxSessions', Number.NaN],
    ['maxFrameBytes', Number.NaN],
  ] as const)('createResumeServer %s = %s throws, naming it', (name, value) => {
    expectRefused(name, () => createResumeServer(at(name, value)));
  });

  test('documented meanings stay accepted: Infinity for budgets and the per-address limit, 0 delays', () => {
    const transport = createMemoryTransport();
    const conn = attach(transport, {
      maxRecoveries: Number.POSITIVE_INFINITY,
      maxAttemptsPerFailure: Number.POSITIVE_INFINITY,
      minUptimeMs: 0,
      backoff: { initialDelayMs: 0, maxDelayMs: 0 },
      queue: { maxMessages: Number.POSITIVE_INFINITY },
      heartbeat: false,
    });
    cleanups.push(() => conn.close());
    const server = createResumeServer({ maxSessionsPerAddress: Number.POSITIVE_INFINITY, ackDelayMs: 0 });
    cleanups.push(() => server.close());
  });
});

describe('sends of data that is not message data', () => {
  /** A resume server whose first session is handed to the test; an HAWebSocket connected to it. */
  async function resumePair() {
    const server = createResumeServer();
    cleanups.push(() => server.close());
    const received: unknown[] = [];
    const session = new Promise<ServerSession>((resolve) => {
      server.sessions$.subscribe((session) => {
        session.messages$.subscribe(({ data }) => received.push(data));
        resolve(session);
      });
    });
    const { url } = await server.listen({ port: 0, host: '127.0.0.1' });
    const socket = new HAWebSocket(url, { resume: true });
    cleanups.push(() => socket.close());
    return { server, socket, session: await session, received };
  }

  test('server session: send() throws and sendAsync() rejects with InvalidMessageError; nothing reaches the client', async () => {
    const { socket, session } = await resumePair();
    const clientGot: unknown[] = [];
    socket.addEventListener('message', (event) => clientGot.push((event as MessageEvent).data));
    const bad = [undefined, null, { a: 1 }, 42, [1, 2], Symbol('s'), 10n];
    for (const value of bad) {
      expect(() => session.send(value as never)).toThrow(InvalidMessageError);
      await expect(session.sendAsync(value as never)).rejects.toBeInstanceOf(InvalidMessageError);
    }
    expect(session.stats.framesWritten).toBe(0);
    // The session still works, and the first thing the client receives is the good message.
    await session.sendAsync('after');
    await expect.poll(() => clientGot, { timeout: 10_000 }).toEqual(['after']);
  }, 30_000);

  test('HAWebSocket.send converts as WebSocket.send does (String(data)); a Symbol throws TypeError', async () => {
    const { socket, received } = await resumePair();
    await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
    const values = [{ a: 1 }, 42, null, undefined, 10n, [1, 2], true];
    for (const value of values) socket.send(value as never);
    expect(() => socket.send(Symbol('s') as never)).toThrow(TypeError);
    await expect(socket.sendAsync(Symbol('s') as never)).rejects.toBeInstanceOf(TypeError);
    const expected = ['[object Object]', '42', 'null', 'undefined', '10', '1,2', 'true'];
    await expect.poll(() => received, { timeout: 10_000 }).toEqual(expected);
  }, 30_000);

  test('plain HAWebSocket (no resume): the same conversion, every message echoed as text, in order', async () => {
    const server = await EchoServer.start();
    cleanups.push(() => server.close());
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    const echoed: unknown[] = [];
    socket.addEventListener('message', (event) => echoed.push((event as MessageEvent).data));
    // Sent while connecting, too: queued as the strings they convert to.
    for (const value of [{ a: 1 }, 42, null, undefined, 10n]) socket.send(value as never);
    expect(() => socket.send(Symbol('s') as never)).toThrow(TypeError);
    await expect
      .poll(() => echoed, { timeout: 10_000 })
      .toEqual(['[object Object]', '42', 'null', 'undefined', '10']);
  }, 30_000);

  test('HATcpSocket.write of a value that is not bytes or a string throws Node’s typed error', async () => {
    const port = await refusedPort();
    const socket = new HATcpSocket({ port, maxAttemptsPerFailure: 0 });
    socket.on('error', () => {});
    cleanups.push(() => socket.destroy());
    for (const value of [{ a: 1 }, 42, 10n]) {
      expect(() => socket.write(value as never)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
      );
    }
    expect(() => socket.write(null as never)).toThrow(
      expect.objectContaining({ code: 'ERR_STREAM_NULL_VALUES' }),
    );
  });
});
