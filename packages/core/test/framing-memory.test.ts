import { encodeFrame, FrameDecoder } from '@lifeline/core';
import { expect, test } from 'vitest';

test('a header announcing a large frame reserves memory for the bytes that arrived, not the announced length', () => {
  const announced = 16 * 1024 * 1024;
  const header = encodeFrame(new Uint8Array(announced)).subarray(0, 6); // 5-byte header + 1 body byte
  const before = process.memoryUsage().arrayBuffers;
  const decoders = Array.from({ length: 20 }, () => {
    const decoder = new FrameDecoder({ maxFrameSize: announced });
    decoder.push(header, () => {});
    return decoder;
  });
  const grown = process.memoryUsage().arrayBuffers - before;
  // 20 x 16 MiB would be 320 MiB; 20 x the initial 64 KiB is 1.25 MiB.
  expect(grown).toBeLessThan(4 * 1024 * 1024);
  expect(decoders).toHaveLength(20);
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
