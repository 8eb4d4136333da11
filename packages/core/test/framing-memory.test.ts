import { FrameTooLargeError } from '@lifeline/core';
import { decodeFrame, encodeData, encodeFrame, FrameDecoder, FrameType } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

test('a header announcing a large frame reserves memory for the bytes that arrived, not the announced length', () => {
  const announced = 16 * 1024 * 1024;
  const header = encodeFrame(new Uint8Array(announced)).subarray(0, 6); // 5-byte header + 1 body byte
  const before = process.memoryUsage().arrayBuffers;
  const decoders = Array.from({ length: 200 }, () => {
    const decoder = new FrameDecoder({ maxFrameSize: announced });
    decoder.push(header, () => {});
    return decoder;
  });
  const grown = process.memoryUsage().arrayBuffers - before;
  // 200 x 16 MiB would be 3.1 GiB, 200 x a fixed 64 KiB first buffer 12.5 MiB; 200 x 256 B is 50 KiB.
  expect(grown).toBeLessThan(2 * 1024 * 1024);
  expect(decoders).toHaveLength(200);
});

test('a frame body split into many chunks still decodes byte for byte as it grows its buffer', () => {
  const payload = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
  const frame = encodeFrame(payload);
  const decoder = new FrameDecoder();
  const frames: Uint8Array[] = [];
  for (let offset = 0; offset < frame.length; offset += 1_000) {
    decoder.push(frame.subarray(offset, offset + 1_000), (body) => frames.push(body));
  }
  expect(frames).toHaveLength(1);
  expect(Buffer.from(frames[0]!).equals(Buffer.from(payload))).toBe(true);
});

test('ping and pong payloads are capped at 125 bytes (RFC 6455 control frames): a larger one fails the stream', () => {
  const decoder = new FrameDecoder();
  const pongs: number[] = [];
  decoder.push(encodeFrame(new Uint8Array(125), FrameType.Ping), (body) => pongs.push(body.length));
  expect(pongs).toEqual([125]);
  expect(() => decoder.push(encodeFrame(new Uint8Array(126), FrameType.Ping), () => {})).toThrow(
    FrameTooLargeError,
  );
});

test('a small binary DATA payload inside a large chunk does not keep the chunk alive', () => {
  const chunk = new Uint8Array(64 * 1024);
  const frame = encodeData(1, 0, new Uint8Array([1, 2, 3])).frame;
  chunk.set(frame, 100);
  const decoded = decodeFrame(chunk.subarray(100, 100 + frame.length));
  expect(decoded.type === 'data' && (decoded.data as Uint8Array).buffer.byteLength).toBeLessThan(1024);
});
