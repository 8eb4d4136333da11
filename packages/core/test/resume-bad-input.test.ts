import {
  FrameTooLargeError,
  LifelineError,
  type LinkData,
  MalformedFrameError,
  ProtocolError,
} from '@lifeline/core';
import {
  decodeFrame,
  encodeAck,
  encodeClose,
  encodeData,
  encodeHello,
  encodePing,
  encodeReject,
  encodeWelcome,
  ResumeFrameType,
  resumable,
} from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ScriptedServer } from './resume-peer.js';

const id = new Uint8Array(16).fill(7);
const token = new Uint8Array(16).fill(9);
const validFrames: Uint8Array[] = [
  encodeHello(undefined, 0),
  encodeHello({ id, token }, 12_345),
  encodeWelcome(true, id, token, 2 ** 40),
  encodeReject('unknown-session', 'no such session'),
  encodeData(1, 0, 'hello').frame,
  encodeData(300, 2 ** 21, new Uint8Array([1, 2, 3])).frame,
  encodeAck(Number.MAX_SAFE_INTEGER),
  encodePing(),
  encodeClose(7, 'bye'),
];

function decodesOrFailsTyped(bytes: Uint8Array, maxFrameBytes?: number): void {
  try {
    decodeFrame(bytes, maxFrameBytes);
  } catch (error) {
    if (!(error instanceof MalformedFrameError) && !(error instanceof FrameTooLargeError)) throw error;
  }
}

describe('frame decoder under random and mutated input', () => {
  test('10,000 random byte strings: a frame or a typed error, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => decodesOrFailsTyped(bytes)),
      { numRuns: 10_000 },
    );
  });

  test('10,000 mutations of valid frames: a frame or a typed error, nothing else', () => {
    const mutation = fc.record({
      frame: fc.constantFrom(...validFrames),
      flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      extra: fc.uint8Array({ maxLength: 4 }),
      type: fc.option(fc.constantFrom(...Object.values(ResumeFrameType))),
    });
    fc.assert(
      fc.property(mutation, ({ frame, flips, cut, extra, type }) => {
        let bytes = new Uint8Array([...frame, ...extra]);
        for (const { at, value } of flips) bytes[at % bytes.length] = value;
        if (type !== null) bytes[0] = type;
        if (cut !== null) bytes = bytes.subarray(0, cut % (bytes.length + 1));
        decodesOrFailsTyped(bytes, 64);
      }),
      { numRuns: 10_000 },
    );
  });

  test('valid frames survive the round trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.oneof(fc.string(), fc.uint8Array()),
        fc.boolean(),
        (seq, ack, data, lazy) => {
          const frame = encodeData(seq, ack, data, false, lazy).frame;
          // Version 3's "the ack may wait": its own type bytes, 0x12 and 0x13.
          expect(frame[0]).toBe((typeof data === 'string' ? 0x10 : 0x11) + (lazy ? 2 : 0));
          expect(decodeFrame(frame)).toEqual({ type: 'data', seq, ack, data, lazy });
          // On a link that negotiated version 2, a flagged frame is an unknown type.
          if (lazy) expect(() => decodeFrame(frame, undefined, 2)).toThrow(MalformedFrameError);
          else expect(decodeFrame(frame, undefined, 2)).toEqual({ type: 'data', seq, ack, data, lazy });
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test('hand-written malformed frames', () => {
    const malformed: [string, Uint8Array][] = [
      ['empty', new Uint8Array()],
      ['unknown type', Uint8Array.of(0x7f)],
      ['type next to the flagged DATA types', Uint8Array.of(0x14, 0x01, 0x00)],
      ['flagged DATA without its ack', Uint8Array.of(0x13, 0x01)],
      ['flagged DATA with seq 0', Uint8Array.of(0x12, 0x00, 0x00)],
      ['flagged DATA with a truncated varint', Uint8Array.of(0x13, 0x81)],
      ['truncated varint', Uint8Array.of(ResumeFrameType.Ack, 0x80)],
      ['varint over 8 bytes', Uint8Array.of(ResumeFrameType.Ack, ...new Array(9).fill(0xff), 0x01)],
      ['non-minimal varint', Uint8Array.of(ResumeFrameType.Ack, 0x81, 0x00)],
      [
        'varint above 2^53',
        Uint8Array.of(ResumeFrameType.Ack, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
      ],
      ['seq 0', Uint8Array.of(ResumeFrameType.DataBinary, 0x00, 0x00)],
      ['invalid UTF-8', Uint8Array.of(ResumeFrameType.DataText, 0x01, 0x00, 0xff, 0xfe)],
      ['trailing bytes after ACK', Uint8Array.of(ResumeFrameType.Ack, 0x01, 0x00)],
      ['unknown flags', Uint8Array.of(ResumeFrameType.Hello, 1, 0x02, 0x00)],
      ['short session id', Uint8Array.of(ResumeFrameType.Hello, 1, 0x01, 1, 2, 3)],
      ['unknown REJECT code', Uint8Array.of(ResumeFrameType.Reject, 99)],
      ['new HELLO with lastReceived', Uint8Array.of(ResumeFrameType.Hello, 1, 0x00, 0x05)],
    ];
    for (const [name, bytes] of malformed) {
      expect(() => decodeFrame(bytes), name).toThrow(MalformedFrameError);
    }
    expect(() => decodeFrame(new Uint8Array(65), 64)).toThrow(FrameTooLargeError);
  });
});

describe('the client under a misbehaving server', () => {
  async function connect() {
    const transport = createMemoryTransport<LinkData>();
    let server: ScriptedServer | undefined;
    transport.connections$.subscribe((peer) => {
      server = new ScriptedServer(peer);
    });
    const client = resumable(transport, { maxFrameBytes: 1_024 });
    const link = await client.open();
    const failure = new Promise<unknown>((resolve) =>
      link.messages$.subscribe({ error: resolve, complete: () => resolve('completed') }),
    );
    return { client, link, server: server!, failure, transport };
  }

  const cases: [string, (server: ScriptedServer) => void, Function, number][] = [
    ['a malformed frame', (s) => s.send(Uint8Array.of(0x7f)), MalformedFrameError, 1002],
    ['a text message', (s) => s.send('not a frame'), MalformedFrameError, 1002],
    [
      'a frame above maxFrameBytes',
      (s) => s.send(encodeData(1, 0, 'x'.repeat(2_000)).frame),
      FrameTooLargeError,
      1009,
    ],
    ['an ack beyond what was sent', (s) => s.send(encodeAck(5)), ProtocolError, 1002],
    ['a sequence gap', (s) => s.send(encodeData(2, 0, 'skipped one').frame), ProtocolError, 1002],
    ['a WELCOME after the handshake', (s) => s.send(encodeWelcome(false, id, token, 0)), ProtocolError, 1002],
    // Only a client sends HELLO: the client's decoder (decodeServerSent) has no HELLO parser.
    ['a HELLO from the server', (s) => s.send(encodeHello({ id, token }, 0)), MalformedFrameError, 1002],
  ];
  for (const [name, misbehave, errorClass] of cases) {
    test(`${name}: a typed error on the link, the link closed, the session kept`, async () => {
      const { client, link, server, failure, transport } = await connect();
      const pending = link.send('kept');
      misbehave(server);
      const error = await failure;
      expect(error).toBeInstanceOf(errorClass);
      expect(error).toBeInstanceOf(LifelineError);
      expect((error as LifelineError).recoverable).toBe(false);
      expect(transport.current!.open).toBe(false);
      // The session outlives the broken link: the send is still pending, to be replayed on resume.
      expect(client.session).toMatchObject({ connected: false, pending: 1 });
      client.close();
      await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED_BY_USER' });
    });
  }

  test('DATA before WELCOME fails the open with a ProtocolError', async () => {
    const transport = createMemoryTransport<LinkData>();
    transport.connections$.subscribe(
      (peer) =>
        new ScriptedServer(peer, { onHello: (server) => server.send(encodeData(1, 0, 'too early').frame) }),
    );
    const client = resumable(transport);
    const opening = client.open();
    await expect(opening).rejects.toBeInstanceOf(ProtocolError);
    expect(transport.current!.open).toBe(false);
  });

  test('a HELLO in place of the WELCOME fails the open with a MalformedFrameError', async () => {
    const transport = createMemoryTransport<LinkData>();
    transport.connections$.subscribe(
      (peer) => new ScriptedServer(peer, { onHello: (server) => server.send(encodeHello(undefined, 0)) }),
    );
    const client = resumable(transport);
    const opening = client.open();
    await expect(opening).rejects.toBeInstanceOf(MalformedFrameError);
    expect(transport.current!.open).toBe(false);
  });

  test('a REJECT invalid-token ends the session with a SessionRejectedError and a lost event', async () => {
    const transport = createMemoryTransport<LinkData>();
    const servers: ScriptedServer[] = [];
    transport.connections$.subscribe((peer) =>
      servers.push(
        new ScriptedServer(
          peer,
          servers.length === 0
            ? {}
            : { onHello: (server) => server.send(encodeReject('invalid-token', 'wrong token')) },
        ),
      ),
    );
    const client = resumable(transport);
    const lost: string[] = [];
    client.session$.subscribe((event) => event.type === 'lost' && lost.push(event.reason));
    const link = await client.open();
    link.messages$.subscribe({ error: () => {} });
    transport.current!.fail();
    const opening = client.open();
    await expect(opening).rejects.toMatchObject({
      code: 'ERR_SESSION_REJECTED',
      rejectCode: 'invalid-token',
      recoverable: false,
    });
    expect(lost).toEqual(['invalid-token']);
  });

  test('no WELCOME within handshakeTimeoutMs: a recoverable timeout, the link closed', async () => {
    const { VirtualTimeScheduler } = await import('rxjs');
    const scheduler = new VirtualTimeScheduler();
    const transport = createMemoryTransport<LinkData>();
    transport.connections$.subscribe((peer) => new ScriptedServer(peer, { welcome: false }));
    const client = resumable(transport, { handshakeTimeoutMs: 500, scheduler });
    const opening = client.open();
    await Promise.resolve();
    await Promise.resolve();
    scheduler.flush();
    await expect(opening).rejects.toMatchObject({ code: 'ERR_LINK_FAILED', syscallCode: 'ETIMEDOUT' });
    expect(transport.current!.open).toBe(false);
  });
});
