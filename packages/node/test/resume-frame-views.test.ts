/**
 * Received resume frames on Node are `Buffer`s: `ws` hands each message out as a view of the socket
 * chunk it arrived in (up to 64 KiB holding many frames), and a `Buffer`'s own `slice` is a VIEW, not
 * a copy. The decoder copies a small binary payload out of a large buffer (`ownBytes`) so a message
 * waiting unread (the unread-bytes limit counts its bytes) does not keep the whole chunk alive; with
 * `view.slice()` on a Buffer it copied nothing. Here, every small binary payload delivered to a
 * HAWebSocket's `onmessage` and to a server session holds a buffer of its own size (at most twice),
 * all bytes compared and the stream counted (lost, duplicated, out of order).
 */
import { decodeFrame, encodeHello } from '@lifeline/core/internal';
import { SequenceCounter, waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, it, onTestFinished } from 'vitest';

const WAIT = { timeoutMs: 30_000 };
const COUNT = 2_000;
const SIZE = 24;

/** A 24-byte payload: the number in its first 4 bytes, then bytes derived from it. */
function payload(n: number): Uint8Array {
  const bytes = new Uint8Array(SIZE);
  new DataView(bytes.buffer).setUint32(0, n);
  for (let i = 4; i < SIZE; i++) bytes[i] = (n * 31 + i) & 0xff;
  return bytes;
}

/** The payload's number if every byte is what `payload(n)` wrote, else -1. */
function check(data: Uint8Array): number {
  if (data.byteLength !== SIZE) return -1;
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  for (let i = 4; i < SIZE; i++) if (data[i] !== ((n * 31 + i) & 0xff)) return -1;
  return n;
}

it('small binary payloads a resuming HAWebSocket receives do not pin the socket chunk they came in (Node ws delivers Buffers)', async () => {
  const server = createResumeServer();
  onTestFinished(() => server.close());
  server.sessions$.subscribe((session) => {
    // A burst: the frames leave corked, so each socket chunk the client reads holds many of them.
    for (let i = 0; i < COUNT; i++) session.send(payload(i)).catch(() => {});
  });
  const { port } = await server.listen();
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, { resume: true });
  onTestFinished(() => socket.close());
  const counter = new SequenceCounter();
  let corrupt = 0;
  let pinning = 0;
  let largestBuffer = 0;
  socket.onmessage = (event) => {
    const data = event.data as Uint8Array;
    const n = check(data);
    if (n < 0) corrupt++;
    else counter.record(n);
    largestBuffer = Math.max(largestBuffer, data.buffer.byteLength);
    if (data.buffer.byteLength > 2 * data.byteLength) pinning++;
  };
  await waitFor(() => counter.uniqueCount + corrupt >= COUNT, { ...WAIT, what: `${COUNT} messages` });
  expect({ ...counter.counts(COUNT), corrupt }).toEqual({
    sent: COUNT,
    received: COUNT,
    unique: COUNT,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    corrupt: 0,
  });
  expect(pinning, `largest buffer behind a payload: ${largestBuffer} B`).toBe(0);
  expect(largestBuffer).toBeLessThanOrEqual(2 * SIZE);
});

it('small binary payloads a server session receives from a resuming client do not pin the socket chunk', async () => {
  const server = createResumeServer();
  onTestFinished(() => server.close());
  const counter = new SequenceCounter();
  let corrupt = 0;
  let pinning = 0;
  let largestBuffer = 0;
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      const bytes = data as Uint8Array;
      const n = typeof data === 'string' ? -1 : check(bytes);
      if (n < 0) corrupt++;
      else counter.record(n);
      largestBuffer = Math.max(largestBuffer, bytes.buffer.byteLength);
      if (bytes.buffer.byteLength > 2 * bytes.byteLength) pinning++;
    });
  });
  const { port } = await server.listen();
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, { resume: true });
  onTestFinished(() => socket.close());
  await waitFor(() => socket.readyState === 1, { ...WAIT, what: 'open' });
  for (let i = 0; i < COUNT; i++) socket.send(payload(i));
  await waitFor(() => counter.uniqueCount + corrupt >= COUNT, { ...WAIT, what: `${COUNT} messages` });
  expect({ ...counter.counts(COUNT), corrupt }).toEqual({
    sent: COUNT,
    received: COUNT,
    unique: COUNT,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    corrupt: 0,
  });
  expect(pinning, `largest buffer behind a payload: ${largestBuffer} B`).toBe(0);
  expect(largestBuffer).toBeLessThanOrEqual(2 * SIZE);
});

it("a decoded HELLO's session id and token are copies, not views of the Buffer the frame arrived in", () => {
  const id = new Uint8Array(16).fill(7);
  const token = new Uint8Array(16).fill(9);
  const frame = encodeHello({ id, token }, 5);
  // The frame in the middle of a larger Buffer, as `ws` delivers a message inside a socket chunk.
  const chunk = Buffer.alloc(frame.length + 4_096);
  chunk.set(frame, 100);
  const decoded = decodeFrame(chunk.subarray(100, 100 + frame.length));
  if (decoded.type !== 'hello' || !decoded.resume) throw new Error('not a resuming HELLO');
  chunk.fill(0);
  expect([...decoded.resume.id]).toEqual([...id]);
  expect([...decoded.resume.token]).toEqual([...token]);
  expect(decoded.resume.id.buffer.byteLength).toBe(16);
});
