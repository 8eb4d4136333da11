/**
 * Received resume frames on Node are `Buffer`s: `ws` hands each message out as a view of the socket
 * chunk it arrived in (up to 64 KiB holding many frames), and a `Buffer`'s own `slice` is a VIEW, not
 * a copy. The decoder copies a small binary payload out of a large buffer (`ownBytes`) so a message
 * waiting unread (the unread-bytes limit counts its bytes) does not keep the whole chunk alive; with
 * `view.slice()` on a Buffer it copied nothing. Here, every small binary payload delivered to a
 * HAWebSocket's `onmessage` and to a server session holds a buffer of its own size (at most twice),
 * all bytes compared and the stream counted (lost, duplicated, out of order).
 */
import { dataPayload, decodeFrame, encodeData, encodeHello, FRAME_SLAB_BYTES } from '@lifeline/core/internal';
import { SequenceCounter, waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
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

/**
 * Counts received payloads: the stream (lost, duplicated, out of order), payloads whose bytes are not
 * `payload(n)`'s, and payloads whose buffer is more than twice their size (a view of a larger chunk).
 */
class PayloadTally {
  readonly counter = new SequenceCounter();
  corrupt = 0;
  pinning = 0;
  largestBuffer = 0;

  record(data: Uint8Array | string): void {
    const n = typeof data === 'string' ? -1 : check(data);
    if (n < 0) this.corrupt++;
    else this.counter.record(n);
    if (typeof data === 'string') return;
    this.largestBuffer = Math.max(this.largestBuffer, data.buffer.byteLength);
    if (data.buffer.byteLength > 2 * data.byteLength) this.pinning++;
  }

  async expectAllOwned(): Promise<void> {
    await waitFor(() => this.counter.uniqueCount + this.corrupt >= COUNT, {
      ...WAIT,
      what: `${COUNT} messages`,
    });
    expect({ ...this.counter.counts(COUNT), corrupt: this.corrupt }).toEqual({
      sent: COUNT,
      received: COUNT,
      unique: COUNT,
      lost: 0,
      duplicated: 0,
      reordered: 0,
      corrupt: 0,
    });
    expect(this.pinning, `largest buffer behind a payload: ${this.largestBuffer} B`).toBe(0);
    expect(this.largestBuffer).toBeLessThanOrEqual(2 * SIZE);
  }
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
  const tally = new PayloadTally();
  socket.onmessage = (event) => tally.record(event.data as Uint8Array);
  await tally.expectAllOwned();
});

it('small binary payloads a server session receives from a resuming client do not pin the socket chunk', async () => {
  const server = createResumeServer();
  onTestFinished(() => server.close());
  const tally = new PayloadTally();
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => tally.record(data as Uint8Array | string));
  });
  const { port } = await server.listen();
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, { resume: true });
  onTestFinished(() => socket.close());
  await waitFor(() => socket.readyState === 1, { ...WAIT, what: 'open' });
  for (let i = 0; i < COUNT; i++) socket.send(payload(i));
  await tally.expectAllOwned();
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

/** A payload of `size(n)` bytes: the number in its first 4 bytes, then bytes derived from it. */
function sized(n: number): Uint8Array {
  // Mostly slab-sized frames (up to 600 B), every 97th above the slab's largest (its own buffer).
  const size = n % 97 === 0 ? 5_000 : 4 + ((n * 7) % 600);
  const bytes = new Uint8Array(size);
  new DataView(bytes.buffer).setUint32(0, n);
  for (let i = 4; i < size; i++) bytes[i] = (n * 13 + i * 7) & 0xff;
  return bytes;
}

function checkSized(data: Uint8Array): number {
  if (data.byteLength < 4) return -1;
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  const want = sized(n);
  if (want.byteLength !== data.byteLength) return -1;
  for (let i = 4; i < want.byteLength; i++) if (data[i] !== want[i]) return -1;
  return n;
}

it('10,000 binary messages each way through slab frames, links cut 5 times: every payload byte arrives, exactly once, in order', async () => {
  const TOTAL = 10_000;
  const server = createResumeServer();
  onTestFinished(() => server.close());
  const atServer = new SequenceCounter();
  let serverCorrupt = 0;
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      const n = typeof data === 'string' ? -1 : checkSized(data);
      if (n < 0) serverCorrupt++;
      else atServer.record(n);
      // Echoed as received: the server's frame keeps the bytes the decoder handed out.
      session.send(data).catch(() => {});
    });
  });
  const { port } = await server.listen();
  const proxy = await FaultProxy.start({ target: { port } });
  onTestFinished(() => proxy.close());
  const socket = new HAWebSocket(`ws://127.0.0.1:${proxy.port}`, {
    resume: true,
    backoff: { initialDelayMs: 20, maxDelayMs: 200 },
    minUptimeMs: 100,
  });
  onTestFinished(() => socket.close());
  const atClient = new SequenceCounter();
  let clientCorrupt = 0;
  socket.onmessage = (event) => {
    const n = checkSized(event.data as Uint8Array);
    if (n < 0) clientCorrupt++;
    else atClient.record(n);
  };
  let recovered = 0;
  socket.addEventListener('recovered', () => recovered++);
  await waitFor(() => socket.readyState === 1, { ...WAIT, what: 'open' });
  for (let i = 0; i < TOTAL; i++) {
    // The sender's bytes are reused at once: a frame that kept a view of them would change.
    const bytes = sized(i);
    socket.send(bytes);
    bytes.fill(0xee);
    if (i % 2_000 === 1_000) {
      const before = recovered;
      proxy.resetAll();
      await waitFor(() => recovered > before, { ...WAIT, what: `recovery ${before + 1}` });
    }
  }
  await waitFor(() => atClient.uniqueCount + clientCorrupt >= TOTAL, {
    ...WAIT,
    what: `${TOTAL} echoes`,
    state: () => ({ server: atServer.uniqueCount, client: atClient.uniqueCount }),
  });
  expect(recovered).toBe(5);
  const clean = { sent: TOTAL, received: TOTAL, unique: TOTAL, lost: 0, duplicated: 0, reordered: 0 };
  expect({ server: atServer.counts(TOTAL), serverCorrupt }).toEqual({ server: clean, serverCorrupt: 0 });
  expect({ client: atClient.counts(TOTAL), clientCorrupt }).toEqual({ client: clean, clientCorrupt: 0 });
});

it('a pooled frame is a Buffer view of the slab (Node), and the payload a lost session reports is a copy of exactly its bytes', () => {
  const frames = Array.from({ length: 300 }, (_, n) => encodeData(n + 1, 0, sized(n + 1), true));
  // @lifeline/node/ws (imported above) has frames made as Buffers of the shared slab.
  expect(Buffer.isBuffer(frames[0]!.frame)).toBe(true);
  expect(frames[0]!.frame.buffer.byteLength).toBe(FRAME_SLAB_BYTES);
  for (const [i, encoded] of frames.entries()) {
    const payload = dataPayload(encoded) as Uint8Array;
    expect(Buffer.isBuffer(payload)).toBe(false);
    expect(payload.buffer.byteLength).toBe(payload.byteLength);
    expect(checkSized(payload)).toBe(i + 1);
  }
});
