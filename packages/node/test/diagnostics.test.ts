// Diagnostics (issue 16): a logger, Node's diagnostics_channel and a metrics hook say why a
// connection is recovering, what each retry decision was and why a session was refused, against
// real servers; and neither a payload nor a session token ever appears in any of them.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  attach,
  DIAGNOSTIC_CHANNELS,
  type LinkData,
  type LogFields,
  type Logger,
  type Metrics,
  type Transport,
} from '@lifeline/core';
import { bytesToHex, decodeFrame } from '@lifeline/core/internal';
import { resumable } from '@lifeline/core/resume';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';

interface Captured {
  readonly records: { level: string; message: string; fields: LogFields }[];
  readonly metrics: { kind: string; name: string; value: number; attributes: Record<string, unknown> }[];
  readonly logger: Logger;
  readonly hook: Metrics;
  /** Called with each new record; a waiter that returns true is done. */
  readonly waiters: ((record: Captured['records'][number]) => boolean)[];
}

function capture(): Captured {
  const records: Captured['records'] = [];
  const metrics: Captured['metrics'] = [];
  const waiters: Captured['waiters'] = [];
  const at = (level: string) => (message: string, fields: LogFields) => {
    const record = { level, message, fields };
    records.push(record);
    for (const waiter of [...waiters]) if (waiter(record)) waiters.splice(waiters.indexOf(waiter), 1);
  };
  return {
    records,
    waiters,
    metrics,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    hook: {
      counter: (name, value, attributes) => metrics.push({ kind: 'counter', name, value, attributes }),
      gauge: (name, value, attributes) => metrics.push({ kind: 'gauge', name, value, attributes }),
    },
  };
}

/** Every message published on every Lifeline channel while the test runs. */
function subscribeAll(): { messages: { channel: string; message: unknown }[]; stop(): void } {
  const messages: { channel: string; message: unknown }[] = [];
  const handlers = Object.values(DIAGNOSTIC_CHANNELS).map((channel) => {
    const handler = (message: unknown) => messages.push({ channel, message });
    diagnosticsChannel.subscribe(channel, handler);
    return () => diagnosticsChannel.unsubscribe(channel, handler);
  });
  return {
    messages,
    stop: () => {
      for (const stop of handlers) stop();
    },
  };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Resolves at the first record for which `predicate` holds, checked as each record arrives. */
function until(seen: Captured, predicate: (record: Captured['records'][number]) => boolean) {
  return new Promise<Captured['records'][number]>((resolve) => {
    const found = seen.records.find(predicate);
    if (found) resolve(found);
    else
      seen.waiters.push((record) => {
        if (!predicate(record)) return false;
        resolve(record);
        return true;
      });
  });
}

test('a recovery and a give-up are reported with their reasons to the logger, the channels and the metrics', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const { port } = wss.address() as AddressInfo;
  wss.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
  const channels = subscribeAll();
  cleanups.push(() => channels.stop());
  const seen = capture();
  const conn = attach(wsTransport(`ws://127.0.0.1:${port}`), {
    logger: seen.logger,
    metrics: seen.hook,
    name: 'feed',
    maxAttemptsPerFailure: 3,
    backoff: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  cleanups.push(() => conn.close());
  await conn.send('hello');
  // The server drops the link: one retry decision (recoverable, attempt 1), then recovered.
  for (const client of wss.clients) client.terminate();
  await until(seen, (record) => record.fields.event === 'recovered');
  const retry = seen.records.find((record) => record.fields.event === 'retry');
  expect(retry?.fields).toMatchObject({ decision: 'retry', attempt: 1, maxAttempts: 3, name: 'feed' });
  expect(typeof retry?.fields.delayMs).toBe('number');
  // The server goes away for good: connection refused three times, then the give-up and its reason.
  const stopped = new Promise((resolve) => wss.close(resolve));
  for (const client of wss.clients) client.terminate();
  await stopped;
  const closed = await conn.closed;
  expect(closed.reason).toBe('attempts-exhausted');
  const giveUp = seen.records.find((record) => record.fields.event === 'give-up');
  expect(giveUp).toMatchObject({
    level: 'warn',
    fields: { decision: 'give-up', reason: 'attempts-exhausted' },
  });
  expect(giveUp?.fields.errorCode).toBeDefined();
  // The same records reached diagnostics_channel subscribers.
  const published = channels.messages.filter((m) => m.channel === DIAGNOSTIC_CHANNELS.retry);
  expect(published.map((m) => (m.message as LogFields).event)).toEqual(
    expect.arrayContaining(['retry', 'recovered', 'give-up']),
  );
  expect(channels.messages.some((m) => m.channel === DIAGNOSTIC_CHANNELS.state)).toBe(true);
  // Counters: attempts (1 recovery + 3 refused), one recovery, one give-up with its reason.
  const total = (name: string) =>
    seen.metrics.filter((m) => m.name === name).reduce((sum, metric) => sum + metric.value, 0);
  expect(total('lifeline.connection.recoveries')).toBe(1);
  expect(total('lifeline.connection.attempts')).toBe(4);
  expect(seen.metrics.find((m) => m.name === 'lifeline.connection.gave_up')?.attributes).toEqual({
    name: 'feed',
    reason: 'attempts-exhausted',
  });
  expect(seen.metrics.some((m) => m.kind === 'gauge' && m.name === 'lifeline.connection.queue_depth')).toBe(
    true,
  );
});

test('an upgrade refused with 401 is reported as an irrecoverable give-up naming the HTTP status', async () => {
  const http = createServer((_request, response) => response.end());
  http.on('upgrade', (_request, socket) =>
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n'),
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => http.close(resolve)));
  const seen = capture();
  const conn = attach(wsTransport(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`), {
    logger: seen.logger,
  });
  const closed = await conn.closed;
  expect(closed.reason).toBe('irrecoverable');
  const giveUp = seen.records.find((record) => record.fields.event === 'give-up');
  expect(giveUp?.fields).toMatchObject({ reason: 'irrecoverable', errorName: 'HttpStatusError' });
  expect(String(giveUp?.fields.errorMessage)).toContain('401');
});

test('a resume session and a refused handshake are reported; no payload and no token appears anywhere', async () => {
  const serverSeen = capture();
  const server = createResumeServer({ logger: serverSeen.logger, metrics: serverSeen.hook, maxSessions: 1 });
  const { url: direct } = await server.listen();
  cleanups.push(() => server.close());
  const upstream = new URL(direct);
  const proxy = await FaultProxy.start({ target: { host: upstream.hostname, port: Number(upstream.port) } });
  cleanups.push(() => proxy.close());
  const url = `ws://127.0.0.1:${proxy.address().port}`;
  const marker = `payload-${crypto.randomUUID()}`;
  server.sessions$.subscribe((session) =>
    session.messages$.subscribe(({ data }) => void session.send(data).catch(() => {})),
  );
  const channels = subscribeAll();
  cleanups.push(() => channels.stop());
  // Every token the server hands out, read off the wire (the WELCOME frames), to look for later.
  const tokens: string[] = [];
  const tapped = (inner: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    ...inner,
    open: async (signal) => {
      const link = await inner.open(signal);
      link.messages$.subscribe({
        // The link's failure is attach's to handle; the tap only reads.
        error: () => {},
        next: (data) => {
          if (typeof data === 'string') return;
          const bytes = data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer);
          const frame = decodeFrame(bytes, 1 << 20);
          if (frame.type === 'welcome') tokens.push(bytesToHex(frame.token));
        },
      });
      return link;
    },
  });
  const clientSeen = capture();
  const transport = resumable(tapped(wsTransport(url)), {
    logger: clientSeen.logger,
    metrics: clientSeen.hook,
  });
  const conn = attach(transport, { logger: clientSeen.logger, metrics: clientSeen.hook });
  cleanups.push(() => conn.close());
  const echoed = new Promise((resolve) =>
    conn.messages$.subscribe((data) => String(data) === marker && resolve(data)),
  );
  await conn.send(marker);
  await echoed;
  // The server's link drops: the session resumes.
  const resumed = until(clientSeen, (record) => record.fields.event === 'resumed');
  proxy.resetAll();
  await resumed;
  // A second client is refused: the server holds one session at most.
  const refused = attach(resumable(wsTransport(url)), { maxAttemptsPerFailure: 1 });
  cleanups.push(() => refused.close());
  const rejection = await until(serverSeen, (record) => record.fields.event === 'rejected');
  expect(rejection.fields).toMatchObject({ code: 'too-many-sessions' });
  expect(serverSeen.metrics).toContainEqual(
    expect.objectContaining({
      name: 'lifeline.server.rejections',
      attributes: { code: 'too-many-sessions' },
    }),
  );
  expect(clientSeen.metrics.some((m) => m.name === 'lifeline.session.resumes')).toBe(true);
  expect(channels.messages.some((m) => m.channel === DIAGNOSTIC_CHANNELS.session)).toBe(true);
  expect(channels.messages.some((m) => m.channel === DIAGNOSTIC_CHANNELS.rejection)).toBe(true);

  expect(tokens.length).toBeGreaterThanOrEqual(2);
  const everything = JSON.stringify([clientSeen, serverSeen, channels.messages]).toLowerCase();
  expect(everything).not.toContain(marker.toLowerCase());
  for (const token of tokens) {
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(Buffer.from(token, 'hex').toString('base64').toLowerCase());
  }
});
