import { InvalidOptionError, ReplayWindowFullError } from '@lifeline/core';
import { ReplayBuffer } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

const entry = (seq: number, size: number) => ({ seq, size });

test('sends waiting for room in the window are limited in count: one more is refused with limit "messages"', () => {
  const buffer = new ReplayBuffer({ maxReplayMessages: 2, maxWaitingMessages: 3 });
  for (let seq = 1; seq <= 5; seq++) {
    expect(buffer.refusal(1)).toBeUndefined();
    buffer.push(entry(seq, 1));
  }
  expect(buffer.waiting).toEqual({ messages: 3, bytes: 3 });
  const refusal = buffer.refusal(1);
  expect(refusal).toBeInstanceOf(ReplayWindowFullError);
  expect(refusal!.limit).toBe('messages');
  // An ack admits waiting entries, which makes room among the waiting.
  buffer.acknowledge(1);
  expect(buffer.waiting).toEqual({ messages: 2, bytes: 2 });
  expect(buffer.refusal(1)).toBeUndefined();
});

test('sends waiting for room in the window are limited in bytes: one that would pass is refused with limit "bytes"', () => {
  const buffer = new ReplayBuffer({ maxReplayMessages: 1, maxWaitingBytes: 10 });
  buffer.push(entry(1, 100));
  buffer.push(entry(2, 6));
  expect(buffer.refusal(4)).toBeUndefined();
  const refusal = buffer.refusal(5);
  expect(refusal).toBeInstanceOf(ReplayWindowFullError);
  expect(refusal!.limit).toBe('bytes');
  buffer.drain();
  expect(buffer.waiting).toEqual({ messages: 0, bytes: 0 });
});

test('a send admitted at once never counts against the waiting limits; negative limits are refused', () => {
  const buffer = new ReplayBuffer({ maxWaitingMessages: 0, maxWaitingBytes: 0 });
  for (let seq = 1; seq <= 1_024; seq++) {
    expect(buffer.refusal(10)).toBeUndefined();
    buffer.push(entry(seq, 10));
  }
  expect(buffer.refusal(10)!.limit).toBe('messages');
  expect(() => new ReplayBuffer({ maxWaitingMessages: -1 })).toThrow(InvalidOptionError);
});
