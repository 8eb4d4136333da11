import { FrameTooLargeError, MalformedFrameError } from '@lifeline/core';
import {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
} from '@lifeline/core/internal';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

interface Decoded {
  type: FrameType;
  payload: number[];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Feeds `chunks` to a fresh decoder; copies each payload out, since views may alias the chunk. */
function decodeAll(chunks: Uint8Array[], decoder = new FrameDecoder()): Decoded[] {
  const out: Decoded[] = [];
  for (const chunk of chunks)
    decoder.push(chunk, (payload, type) => out.push({ type, payload: [...payload] }));
  return out;
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => Math.min(cut, bytes.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

describe('length-prefixed framing', () => {
  const frames = [
    { type: FrameType.Data, payload: [1, 2, 3] },
    { type: FrameType.Ping, payload: [] },
    { type: FrameType.Data, payload: [] },
    { type: FrameType.Pong, payload: [9] },
    { type: FrameType.Data, payload: Array.from({ length: 300 }, (_, i) => i & 0xff) },
  ];
  const wire = concat(frames.map((frame) => encodeFrame(Uint8Array.from(frame.payload), frame.type)));

  it('encodes a 4-byte big-endian payload length, then the type byte, then the payload', () => {
    expect([...encodeFrame(Uint8Array.of(0xaa, 0xbb), FrameType.Pong)]).toEqual([0, 0, 0, 2, 2, 0xaa, 0xbb]);
    expect([...encodeFrame(new Uint8Array(0x010203))].slice(0, FRAME_HEADER_BYTES)).toEqual([0, 1, 2, 3, 0]);
    expect(DEFAULT_MAX_FRAME_SIZE).toBe(16 * 1024 * 1024);
  });

  it('decodes many frames from one chunk', () => {
    expect(decodeAll([wire])).toEqual(frames);
  });

  it('decodes the same frames when the stream is split at every single byte position', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      expect(decodeAll(splitAt(wire, [cut])), `split at ${cut}`).toEqual(frames);
    }
  });

  it('decodes the same frames fed one byte at a time, holding back only the incomplete frame', () => {
    const decoder = new FrameDecoder();
    const out: Decoded[] = [];
    for (let i = 0; i < wire.length; i++) {
      decoder.push(wire.subarray(i, i + 1), (payload, type) => out.push({ type, payload: [...payload] }));
    }
    expect(out).toEqual(frames);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('hands a frame that lies whole in a chunk out as a view of that chunk, without copying', () => {
    const chunk = encodeFrame(Uint8Array.of(7, 8, 9));
    let payload: Uint8Array | undefined;
    new FrameDecoder().push(chunk, (p) => {
      payload = p;
    });
    expect(payload!.buffer).toBe(chunk.buffer);
    expect(payload!.byteOffset).toBe(FRAME_HEADER_BYTES);
  });

  it('fails with FrameTooLargeError as soon as the header announces too much, before the body arrives', () => {
    const decoder = new FrameDecoder({ maxFrameSize: 1024 });
    const header = encodeFrame(new Uint8Array(1025)).subarray(0, FRAME_HEADER_BYTES);
    const delivered: Uint8Array[] = [];
    decoder.push(header.subarray(0, 4), (p) => delivered.push(p));
    let error: unknown;
    try {
      decoder.push(header.subarray(4), (p) => delivered.push(p));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(FrameTooLargeError);
    expect(error).toMatchObject({
      code: 'ERR_FRAME_TOO_LARGE',
      size: 1025,
      maxSize: 1024,
      recoverable: false,
    });
    expect(decoder.bufferedBytes).toBe(0);
    expect(delivered).toHaveLength(0);
    // Poisoned: the rest of the stream is not looked at.
    expect(() => decoder.push(encodeFrame(Uint8Array.of(1)), () => {})).toThrow(FrameTooLargeError);
  });

  it('accepts a frame of exactly maxFrameSize', () => {
    const out = decodeAll(
      [encodeFrame(new Uint8Array(1024).fill(5))],
      new FrameDecoder({ maxFrameSize: 1024 }),
    );
    expect(out).toHaveLength(1);
    expect(out[0]!.payload).toHaveLength(1024);
  });

  it('announces up to 4 GiB - 1 without overflowing: a 3 GiB header is too large, not negative', () => {
    const header = Uint8Array.of(0xc0, 0, 0, 0, FrameType.Data);
    expect(() => new FrameDecoder().push(header, () => {})).toThrow(
      expect.objectContaining({ size: 0xc000_0000, code: 'ERR_FRAME_TOO_LARGE' }),
    );
  });

  it('fails with MalformedFrameError on an unknown frame type, after delivering the good frames before it', () => {
    const bad = encodeFrame(Uint8Array.of(1));
    bad[4] = 3;
    const good = encodeFrame(Uint8Array.of(42));
    const delivered: number[][] = [];
    const decoder = new FrameDecoder();
    expect(() => decoder.push(concat([good, bad]), (p) => delivered.push([...p]))).toThrow(
      MalformedFrameError,
    );
    expect(delivered).toEqual([[42]]);
    expect(() => decoder.push(good, () => {})).toThrow(MalformedFrameError);
  });

  it('property: any payloads, encoded and re-chunked arbitrarily, decode to the same sequence', () => {
    const frameArb = fc.oneof(
      fc.record({
        type: fc.constant(FrameType.Data),
        payload: fc.oneof(
          fc.uint8Array({ maxLength: 16 }),
          fc.uint8Array({ minLength: 100, maxLength: 5_000 }),
        ),
      }),
      // Ping and pong payloads are at most 125 bytes (MAX_CONTROL_PAYLOAD_BYTES).
      fc.record({
        type: fc.constantFrom(FrameType.Ping, FrameType.Pong),
        payload: fc.uint8Array({ maxLength: 125 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (input, rawCuts) => {
          const bytes = concat(input.map((frame) => encodeFrame(frame.payload, frame.type)));
          const cuts = rawCuts.map((cut) => (bytes.length === 0 ? 0 : cut % (bytes.length + 1)));
          const decoder = new FrameDecoder();
          const out = decodeAll(splitAt(bytes, cuts), decoder);
          expect(out).toEqual(input.map((frame) => ({ type: frame.type, payload: [...frame.payload] })));
          expect(decoder.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
