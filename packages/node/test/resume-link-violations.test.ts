// WebSocket-level protocol violations by a client (issue 10, item 12): the link closes with the
// code RFC 6455 gives, and the server reports each as a typed event and counts it, without a token.
import type { Socket } from 'node:net';
import { ProtocolError } from '@lifeline/core';
import { bytesToHex, encodeAck, encodeHello, encodePing } from '@lifeline/core/internal';
import {
  createResumeServer,
  type LinkViolationReason,
  type NodeResumeServer,
  type ResumeServerEvent,
} from '@lifeline/node/server';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { RawResumeClient } from './support/raw-resume-client.js';

const MAX_FRAME_BYTES = 1_024;

let server: NodeResumeServer;
let url: string;
let events: ResumeServerEvent[];
const raws: RawResumeClient[] = [];

beforeEach(async () => {
  server = createResumeServer({ maxFrameBytes: MAX_FRAME_BYTES, handshakeTimeoutMs: 5_000 });
  events = [];
  server.events$.subscribe((event) => events.push(event));
  server.sessions$.subscribe((session) => session.messages$.subscribe());
  ({ url } = await server.listen());
});
afterEach(async () => {
  await Promise.all(raws.splice(0).map((raw) => raw.close()));
  await server.close();
});

/** Client frames written byte by byte on the socket under a `ws` client (mask key 0: payload as is). */
const masked = (first: number, payload: number[]) => [first, 0x80 | payload.length, 0, 0, 0, 0, ...payload];
const CASES: readonly { reason: LinkViolationReason; closeCode: number; bytes: number[] }[] = [
  { reason: 'invalid-utf8', closeCode: 1007, bytes: masked(0x81, [0x68, 0xff, 0xfe]) },
  // A binary frame announcing 2,048 bytes, above the server's limit: refused from its header.
  { reason: 'message-too-large', closeCode: 1009, bytes: [0x82, 0x80 | 126, 0x08, 0x00, 0, 0, 0, 0] },
  { reason: 'unmasked-frame', closeCode: 1002, bytes: [0x82, 0x02, 0x01, 0x02] },
  { reason: 'invalid-frame', closeCode: 1002, bytes: masked(0x83, []) },
];

test.each(CASES)(
  '$reason: link closed with $closeCode, reported with the session id and counted',
  async ({ reason, closeCode, bytes }) => {
    const client = await RawResumeClient.connect(url);
    raws.push(client);
    client.send(encodeHello(undefined, 0));
    const welcome = (await client.next('welcome'))!;
    client.send(encodeAck(0));
    client.send(encodePing());
    await client.next('pong');
    const session = [...server.sessions.values()][0]!;
    const reported = firstValueFrom(
      server.events$.pipe(
        filter((event) => event.type === 'link-violation'),
        timeout({ first: 5_000 }),
      ),
    );

    (client.socket as unknown as { _socket: Socket })._socket.write(Uint8Array.from(bytes));

    expect(await client.closed).toBe(closeCode);
    const event = await reported;
    expect(event).toMatchObject({ type: 'link-violation', reason, sessionId: session.id });
    expect((event as { error: unknown }).error).toBeInstanceOf(ProtocolError);
    expect(server.stats).toMatchObject({ linkViolations: 1, malformedFrames: 0, protocolErrors: 0 });
    // The session is kept, detached: its client may resume it on a new link.
    expect(session.connected).toBe(false);
    expect(session.closed).toBe(false);
    const token = bytesToHex(welcome.token);
    for (const seen of events) {
      // A 'shed' event has no error.
      const error = 'error' in seen ? seen.error : undefined;
      expect(JSON.stringify({ ...seen, error: String(error) })).not.toContain(token);
      expect(String((error as Error | undefined)?.cause)).not.toContain(token);
    }
  },
);

test('a violation before any HELLO is reported without a session id', async () => {
  const client = await RawResumeClient.connect(url);
  raws.push(client);
  const reported = firstValueFrom(
    server.events$.pipe(
      filter((event) => event.type === 'link-violation'),
      timeout({ first: 5_000 }),
    ),
  );
  (client.socket as unknown as { _socket: Socket })._socket.write(Uint8Array.from([0x82, 0x01, 0x00]));
  expect(await client.closed).toBe(1002);
  await reported;
  expect(events).toEqual([
    expect.objectContaining({ type: 'link-violation', reason: 'unmasked-frame', sessionId: undefined }),
  ]);
  expect(server.stats.linkViolations).toBe(1);
});
