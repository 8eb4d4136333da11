import { BackpressureError, InvalidOptionError } from '@lifeline/core';
import {
  encodeAck,
  encodeData,
  encodePing,
  encodePong,
  LinkOutput,
  type LinkOutputPort,
  outputHighWaterOf,
} from '@lifeline/core/internal';
import { resumable } from '@lifeline/core/resume';
import { ResumeServer } from '@lifeline/core/resume/server';
import { createMemoryTransport } from '@lifeline/core/testing';
import { expect, test } from 'vitest';

/** A port whose network takes nothing until told: `buffered` is what a stuck socket would report. */
function stuckPort() {
  const written: Uint8Array[] = [];
  const confirmations: (() => void)[] = [];
  const port: LinkOutputPort & { buffered: number } = {
    buffered: 0,
    write(frame) {
      written.push(frame);
      port.buffered += frame.length;
    },
    writeConfirmed(frame, done) {
      written.push(frame);
      port.buffered += frame.length;
      confirmations.push(done);
    },
    get bufferedAmount() {
      return port.buffered;
    },
  };
  return { port, written, confirmations };
}

test('while output is backed up, one PONG waits at most: later PINGs are not answered again until it leaves', () => {
  const { port, written, confirmations } = stuckPort();
  const output = new LinkOutput(port, 1 << 20, () => {});
  for (let i = 0; i < 10_000; i++) output.writer(encodePong());
  expect(written).toHaveLength(1);
  expect(output.dropped.pongs).toBe(9_999);
  port.buffered = 0;
  confirmations.shift()!();
  output.writer(encodePong());
  expect(written).toHaveLength(2);
});

test('while output is backed up, one standalone ACK waits at most and the newest replaces it: nothing is lost, acks being cumulative', () => {
  const { port, written, confirmations } = stuckPort();
  const output = new LinkOutput(port, 1 << 20, () => {});
  for (let ack = 1; ack <= 1_000; ack++) output.writer(encodeAck(ack));
  expect(written).toEqual([encodeAck(1)]);
  confirmations.shift()!();
  // The newest ack goes out once the pending one was written.
  expect(written).toEqual([encodeAck(1), encodeAck(1_000)]);
});

test('DATA and PING frames go straight through; with nothing buffered every frame leaves at once', () => {
  const { port, written } = stuckPort();
  const output = new LinkOutput(port, 1 << 20, () => {});
  output.writer(encodeData(1, 0, 'a').frame);
  output.writer(encodePing());
  port.buffered = 0;
  output.writer(encodeAck(1));
  port.buffered = 0;
  output.writer(encodeAck(2));
  expect(written).toHaveLength(4);
});

test('above the high-water mark the link is reported once, with a BackpressureError, after the write returns', async () => {
  const { port, written } = stuckPort();
  const errors: unknown[] = [];
  const output = new LinkOutput(port, 1_000, (error) => errors.push(error));
  output.writer(encodeData(1, 0, 'x'.repeat(2_000)).frame);
  expect(errors).toEqual([]);
  output.writer(encodeData(2, 0, 'y').frame);
  await Promise.resolve();
  expect(errors).toHaveLength(1);
  expect(errors[0]).toBeInstanceOf(BackpressureError);
  expect((errors[0] as BackpressureError).recoverable).toBe(true);
  // Writes after the overflow are dropped: the link is closing.
  expect(written).toHaveLength(1);
});

test('the default high-water mark holds a whole replay window with its framing', () => {
  expect(outputHighWaterOf({})).toBe(8 * 1024 * 1024 + 64 * 1_024 + 2 * 1_048_576);
  expect(outputHighWaterOf({ maxReplayBytes: 100, maxReplayMessages: 1, maxFrameBytes: 64 })).toBe(
    100 + 64 + 128,
  );
  expect(outputHighWaterOf({ outputHighWaterBytes: 64, maxFrameBytes: 64 })).toBe(64);
});

test('a byte limit below one frame is refused on the client and the server alike (InvalidOptionError naming both options)', () => {
  // outputHighWaterBytes below maxFrameBytes: one frame the network does not take at once closed
  // every link that wrote it, and the next link replayed it: a loop of reconnects. maxUnreadBytes
  // below it: a link lost for one message nobody read yet.
  const cases = [
    [{ outputHighWaterBytes: 1_000 }, 'outputHighWaterBytes (1000) must be >= maxFrameBytes (1048576)'],
    [
      { outputHighWaterBytes: 1_000, maxFrameBytes: 1_001 },
      'outputHighWaterBytes (1000) must be >= maxFrameBytes (1001)',
    ],
    [{ maxUnreadBytes: 1_000 }, 'maxUnreadBytes (1000) must be >= maxFrameBytes (1048576)'],
    [{ maxFrameBytes: 128 * 1024 * 1024 }, 'maxUnreadBytes (67108864) must be >= maxFrameBytes (134217728)'],
  ] as const;
  for (const [options, message] of cases) {
    expect(() => outputHighWaterOf(options)).toThrow(new InvalidOptionError(message));
    expect(() => resumable(createMemoryTransport(), options)).toThrow(InvalidOptionError);
    expect(() => new ResumeServer(options)).toThrow(message);
  }
  // At the line: accepted.
  expect(
    outputHighWaterOf({ outputHighWaterBytes: 1_000, maxFrameBytes: 1_000, maxUnreadBytes: 1_000 }),
  ).toBe(1_000);
});
