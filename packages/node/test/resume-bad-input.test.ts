import {
  attach,
  FrameTooLargeError,
  LifelineError,
  MalformedFrameError,
  ProtocolError,
} from '@lifeline/core';
import {
  encodeAck,
  encodeClose,
  encodeData,
  encodeHello,
  encodePing,
  encodeWelcome,
  ResumeFrameType,
  resumable,
} from '@lifeline/core/internal';
import {
  createResumeServer,
  type NodeResumeServer,
  type ResumeServerEvent,
  type ServerSession,
} from '@lifeline/node/server';
import { tcpTransport } from '@lifeline/node/tcp';
import { FaultProxy } from '@lifeline/node/testing';
import { wsTransport } from '@lifeline/node/ws';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { RawResumeClient } from './support/raw-resume-client.js';
import { NumberedStream } from './support/resume-tally.js';

let server: NodeResumeServer;
let wss: WebSocketServer;
let url: string;
let events: ResumeServerEvent[];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = createResumeServer({ maxFrameBytes: 4_096, sessionTtlMs: 100, handshakeTimeoutMs: 2_000 });
  events = [];
  server.events$.subscribe((event) => events.push(event));
  server.sessions$.subscribe((session) => session.messages$.subscribe());
  // An existing ws server (no maxPayload of ours), so oversized frames reach the resume layer.
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  server.attach(wss);
  url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
});
afterEach(async () => {
  await server.close();
  for (const socket of wss.clients) socket.terminate();
  await new Promise((resolve) => wss.close(resolve));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

/** A client with a confirmed new session, ready for DATA. */
async function opened(): Promise<RawResumeClient> {
  const client = await RawResumeClient.connect(url);
  client.send(encodeHello(undefined, 0));
  await client.next('welcome');
  client.send(encodeAck(0));
  return client;
}

function linkErrors(): unknown[] {
  return events.flatMap((event) => (event.type === 'link-error' ? [event.error] : []));
}

describe('the server under bad input: a typed error and a closed link, never a crash', () => {
  const cases: [string, (client: RawResumeClient) => void, Function, number][] = [
    ['a malformed frame', (c) => c.send(Uint8Array.of(0x7f, 1, 2)), MalformedFrameError, 1002],
    ['a text message', (c) => c.send('hello'), MalformedFrameError, 1002],
    [
      'an oversized frame',
      (c) => c.send(encodeData(1, 0, 'x'.repeat(5_000)).frame),
      FrameTooLargeError,
      1009,
    ],
    ['an ack beyond what was sent', (c) => c.send(encodeAck(10)), ProtocolError, 1002],
    ['a sequence gap', (c) => c.send(encodeData(3, 0, 'gap').frame), ProtocolError, 1002],
    ['a second HELLO', (c) => c.send(encodeHello(undefined, 0)), ProtocolError, 1002],
    [
      'a WELCOME from the client',
      (c) => c.send(encodeWelcome(false, new Uint8Array(16), new Uint8Array(16), 0)),
      ProtocolError,
      1002,
    ],
  ];
  for (const [name, misbehave, errorClass, closeCode] of cases) {
    test(name, async () => {
      const client = await opened();
      misbehave(client);
      expect(await client.closed).toBe(closeCode);
      const errors = linkErrors();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(errorClass);
      // The session outlives the link: detached, then expired by the sweep, not leaked.
      const [session] = server.sessions.values();
      expect(session?.connected).toBe(false);
      await new Promise<void>((resolve) => session!.events$.subscribe({ complete: resolve }));
      expect(server.sessions.size).toBe(0);
      expect(server.stats.expired).toBe(1);
    });
  }

  test('DATA before the handshake', async () => {
    const client = await RawResumeClient.connect(url);
    client.send(encodeData(1, 0, 'early').frame);
    expect(await client.closed).toBe(1002);
    expect(linkErrors()[0]).toBeInstanceOf(ProtocolError);
  });

  test('500 random and mutated frame sequences on live links: each link closed with a typed error or still serving', async () => {
    const valid = [
      encodeAck(0),
      encodeData(1, 0, 'ok').frame,
      encodePing(),
      encodeClose(0, 'bye'),
      encodeHello(undefined, 0),
    ];
    const junk = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc
        .record({
          frame: fc.constantFrom(...valid),
          at: fc.nat(),
          value: fc.integer({ min: 0, max: 255 }),
          type: fc.constantFrom(...Object.values(ResumeFrameType)),
          retype: fc.boolean(),
        })
        .map(({ frame, at, value, type, retype }) => {
          const bytes = frame.slice();
          bytes[at % bytes.length] = value;
          if (retype) bytes[0] = type;
          return bytes;
        }),
    );
    let closedTyped = 0;
    let stillServing = 0;
    const created: ServerSession[] = [];
    server.sessions$.subscribe((session) => created.push(session));
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(junk, { minLength: 1, maxLength: 4 }),
        async (handshake, frames) => {
          events.length = 0;
          const client = handshake ? await opened() : await RawResumeClient.connect(url);
          for (const frame of frames) client.send(frame);
          // A PING after the junk: answered if the link survived it, else the close tells.
          client.send(encodePing());
          const from = client.frames.length;
          const pong = await client.next('pong', from === 0 ? 0 : from - 1, 5_000).catch(() => undefined);
          if (pong && client.closeCode === undefined) {
            stillServing++;
            await client.close();
            return;
          }
          const code = await client.closed;
          const errors = linkErrors();
          const closedByRejection = events.some((event) => event.type === 'rejected');
          const closedBySession = code === 1000; // a CLOSE frame ended the session on purpose
          if (!closedByRejection && !closedBySession) {
            expect([1002, 1009, 1006]).toContain(code);
            expect(errors.length).toBeGreaterThan(0);
            for (const error of errors) expect(error).toBeInstanceOf(LifelineError);
          }
          closedTyped++;
        },
      ),
      { numRuns: 500 },
    );
    expect(closedTyped + stillServing).toBe(500);
    expect(closedTyped).toBeGreaterThan(100);
    // No session is leaked: every one the fuzz created expires once its link is gone.
    await Promise.all(
      created.map(
        (session) => new Promise<void>((resolve) => session.events$.subscribe({ complete: resolve })),
      ),
    );
    expect(server.sessions.size).toBe(0);
    // After all that, a real client is served as usual.
    const conn = attach(resumable(wsTransport(url)));
    try {
      await conn.send('after the fuzz');
    } finally {
      conn.close();
    }
  }, 60_000);
});

test('the same server over framed TCP: exactly once both ways through link resets', async () => {
  const tcpServer = createResumeServer();
  const upstream = new NumberedStream('c');
  const sessions: ServerSession[] = [];
  tcpServer.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe(({ data }) => upstream.add(data));
  });
  const { port } = await tcpServer.listen({ transport: 'tcp' });
  const proxy = await FaultProxy.start({ target: { port } });
  const conn = attach(resumable(tcpTransport({ port: proxy.port, mode: 'framed' })), {
    backoff: { initialDelayMs: 5, maxDelayMs: 20 },
    minUptimeMs: 0,
  });
  const downstream = new NumberedStream('s');
  conn.messages$.subscribe((message) => downstream.add(new TextDecoder().decode(message as Uint8Array)));
  try {
    const sends: Promise<void>[] = [];
    let serverSent = 0;
    for (let round = 1; round <= 20; round++) {
      for (let i = 0; i < 50; i++) {
        const n = (round - 1) * 50 + i + 1;
        sends.push(conn.send(`c${n}`));
        if (sessions[0]) sends.push(sessions[0].send(new TextEncoder().encode(`s${++serverSent}`)));
      }
      await sends[sends.length - 1];
      // Reset the TCP connection mid-stream: the sends after the awaited one are in flight.
      proxy.resetAll();
    }
    await Promise.all(sends);
    expect(upstream.tally(1_000)).toEqual({
      sent: 1_000,
      received: 1_000,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(serverSent).toBeGreaterThan(900);
    expect(downstream.tally(serverSent)).toMatchObject({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      received: serverSent,
    });
    expect(sessions).toHaveLength(1);
    expect(proxy.resetCount).toBeGreaterThanOrEqual(15);
  } finally {
    conn.close();
    await proxy.close();
    await tcpServer.close();
  }
});
