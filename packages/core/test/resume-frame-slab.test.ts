// DATA frames cut from a shared slab (issue 13): the client's frames are views of one 8 KiB
// buffer, never overwritten once handed out, never oversized; what a client store keeps and what
// the application receives are exactly the message's bytes, never a view of a slab.
import { attach, type LinkData } from '@lifeline/core';
import {
  type ClientSessionChange,
  decodeFrame,
  encodeData,
  FRAME_SLAB_BYTES,
  frameBytes,
  MAX_DATA_HEADER_BYTES,
  MAX_SLAB_FRAME_BYTES,
  MemoryClientSessionStore,
  resumable,
  type StoredOutgoingMessage,
} from '@lifeline/core/internal';
import { createMemoryTransport, waitFor } from '@lifeline/core/testing';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';
import { opened } from './support.js';

const fast = { backoff: { initialDelayMs: 0, maxDelayMs: 10 }, minUptimeMs: 0 } as const;

function payloadOf(frame: Uint8Array): string | Uint8Array {
  const decoded = decodeFrame(frame);
  if (decoded.type !== 'data') throw new Error(`not a DATA frame: ${decoded.type}`);
  return decoded.data;
}

test('frames under half a slab are views of one 8 KiB slab, back to back, never written again', () => {
  const messages: (string | Uint8Array)[] = [];
  const frames: Uint8Array[] = [];
  // Enough to fill several slabs: ASCII, multi-byte text and binary of varied lengths.
  for (let i = 0; i < 600; i++) {
    const data =
      i % 3 === 0
        ? `m${i}-${'x'.repeat(i % 97)}`
        : i % 3 === 1
          ? `é€😀${i}`.repeat(1 + (i % 5))
          : Uint8Array.from({ length: 1 + (i % 200) }, (_, k) => (i + k) & 0xff);
    messages.push(data);
    frames.push(encodeData(i + 1, i, data, true).frame);
  }
  const buffers = new Set(frames.map((frame) => frame.buffer));
  for (const buffer of buffers) expect(buffer.byteLength).toBe(FRAME_SLAB_BYTES);
  expect(buffers.size).toBeGreaterThan(1);
  expect(buffers.size).toBeLessThan(frames.length / 10);
  // Every frame still decodes to its message after all the later ones were cut: nothing overlaps.
  frames.forEach((frame, i) => {
    expect(payloadOf(frame)).toEqual(messages[i]);
  });
  // A string's frame takes what was written, not 3 bytes per UTF-16 unit.
  const text = encodeData(1, 0, 'a'.repeat(100), true).frame;
  expect(text.byteLength).toBe(3 + 100);
  const next = encodeData(2, 0, 'b', true).frame;
  expect(next.buffer).toBe(text.buffer);
  expect(next.byteOffset).toBe(text.byteOffset + text.byteLength);
});

test('a binary frame is cut from the slab without subarray (its species lookup doubled the cost of a view)', () => {
  const subarray = Uint8Array.prototype.subarray;
  let calls = 0;
  Uint8Array.prototype.subarray = function (this: Uint8Array, ...args: [number?, number?]) {
    calls++;
    return subarray.apply(this, args);
  } as typeof subarray;
  const frames: Uint8Array[] = [];
  const payload = new Uint8Array(64).fill(7);
  try {
    for (let i = 0; i < 1_000; i++) frames.push(encodeData(i + 1, 0, payload, true).frame);
  } finally {
    Uint8Array.prototype.subarray = subarray;
  }
  // One per frame before.
  expect(calls).toBe(0);
  for (const frame of frames) {
    expect(frame.buffer.byteLength).toBe(FRAME_SLAB_BYTES);
    expect(payloadOf(frame)).toEqual(payload);
  }
});

test('a frame over half a slab gets its own buffer and leaves the slab where it was', () => {
  // Two frames of the largest pooled size leave at least 4 KiB of the current slab free, wherever
  // the shared pool stood.
  for (let i = 0; i < 2; i++) encodeData(1, 0, new Uint8Array(MAX_SLAB_FRAME_BYTES - 3), true);
  const first = encodeData(1, 0, 'a', true).frame;
  const big = encodeData(2, 0, new Uint8Array(MAX_SLAB_FRAME_BYTES), true).frame;
  expect(big.buffer.byteLength).toBe(big.byteLength);
  // Text is pooled when it fits at 3 bytes per UTF-16 unit, whatever it encodes to.
  const bigText = encodeData(3, 0, 'z'.repeat(MAX_SLAB_FRAME_BYTES / 3), true).frame;
  expect(bigText.buffer).not.toBe(first.buffer);
  expect(payloadOf(bigText)).toBe('z'.repeat(MAX_SLAB_FRAME_BYTES / 3));
  const next = encodeData(4, 0, 'b', true).frame;
  expect(next.buffer).toBe(first.buffer);
  expect(next.byteOffset).toBe(first.byteOffset + first.byteLength);
  // A frame of exactly the limit is pooled.
  const limit = encodeData(5, 0, new Uint8Array(MAX_SLAB_FRAME_BYTES - 3), true).frame;
  expect(limit.buffer.byteLength).toBe(FRAME_SLAB_BYTES);
});

/** A memory store that records every message it was asked to keep. */
class RecordingStore extends MemoryClientSessionStore {
  readonly appended: StoredOutgoingMessage[] = [];
  override async write(change: ClientSessionChange): Promise<void> {
    if (change.append) this.appended.push(...change.append);
    return super.write(change);
  }
}

test('a client cuts its frames from a slab; its store keeps exactly each payload, the server and the application get their own bytes', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const raw: Uint8Array[] = [];
  const watch = transport.connections$.subscribe((link) =>
    link.messages$.subscribe((message) => raw.push(frameBytes(message))),
  );
  const store = new RecordingStore();
  const client = resumable(transport, { ackDelayMs: 0, store });
  const conn = attach(client, fast);
  const received: LinkData[] = [];
  conn.messages$.subscribe((data) => received.push(data));
  try {
    await opened(conn);
    const sent: LinkData[] = [];
    for (let i = 0; i < 40; i++) {
      sent.push(
        i % 2 === 0 ? `text ${i} ${'t'.repeat(i * 3)}` : Uint8Array.from({ length: 70 + i }, (_, k) => k),
      );
    }
    await Promise.all(sent.map((data) => conn.send(data)));
    const server = peer.session;
    await waitFor(() => server.received.length === sent.length);
    expect(server.received.map((message) => message.data)).toEqual(sent);
    // The server's copy of a binary message is its own, not a view of the client's slab.
    for (const message of server.received) {
      if (typeof message.data !== 'string')
        expect(message.data.buffer.byteLength).toBe(message.data.byteLength);
    }
    // On the wire: DATA frames that are views of the shared slab (the link sends the view's bytes).
    const data = raw.filter((frame) => frame[0] === 0x10 || frame[0] === 0x11);
    expect(data).toHaveLength(sent.length);
    for (const frame of data) expect(frame.buffer.byteLength).toBe(FRAME_SLAB_BYTES);
    // The store kept each payload's bytes, not the slab (IndexedDB would clone a view's whole
    // ArrayBuffer): at most a DATA header more, and here exactly the payload.
    expect(store.appended).toHaveLength(sent.length);
    store.appended.forEach((message, i) => {
      expect(message.payload.buffer.byteLength).toBeLessThanOrEqual(
        message.payload.byteLength + MAX_DATA_HEADER_BYTES,
      );
      const bytes = sent[i];
      expect(message.kind).toBe(typeof bytes === 'string' ? 'text' : 'binary');
      expect(message.payload).toEqual(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes);
    });
    // What the application receives is decoded from the incoming frame (a view of it, past its
    // header), never of the client's slab.
    server.endpoint.send(Uint8Array.from({ length: 90 }, (_, k) => 255 - k));
    await waitFor(() => received.length === 1);
    const got = received[0] as Uint8Array;
    expect(got).toBeInstanceOf(Uint8Array);
    expect(got.buffer.byteLength).toBeLessThanOrEqual(got.byteLength + MAX_DATA_HEADER_BYTES);
  } finally {
    watch.unsubscribe();
    conn.close();
    peer.stop();
  }
});
