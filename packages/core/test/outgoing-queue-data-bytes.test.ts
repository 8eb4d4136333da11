/**
 * The outgoing queue's count of unconfirmed application data (`HAWebSocket.bufferedAmount`): each
 * unsettled entry once, text by its UTF-8 bytes, measured lazily on read. Checked against a model
 * through every way an entry leaves the queue (settled in order or not, withdrawn, drained with
 * some kept) and across the queue's compactions, reading at random moments.
 */
import { type OutgoingEntry, OutgoingQueue } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

const onDrop = { queueDropped_() {} };
const utf8 = (data: unknown) =>
  typeof data === 'string' ? new TextEncoder().encode(data).length : (data as Uint8Array).byteLength;
/** What the model counts of each sample. */
const sizes = new Map<unknown, number>();

/** A deterministic pseudo-random sequence (xorshift32). */
function random(seed: number) {
  let state = seed;
  return (below: number) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

const samples = [
  '',
  'a',
  'é',
  '€uro',
  '😀!',
  'x\ud800',
  '\udc00y',
  new Uint8Array(5),
  new Uint8Array(0),
  new Uint8Array(70),
];
for (const sample of samples) sizes.set(sample, utf8(sample));
const sum = (entries: readonly OutgoingEntry<unknown>[]) =>
  entries.reduce((total, entry) => total + sizes.get(entry.data)!, 0);

test('the count equals the sum of the unsettled entries, whatever settles them and whenever it is read', () => {
  const next = random(0x5eed);
  const queue = new OutgoingQueue<unknown>({ maxBytes: Number.MAX_SAFE_INTEGER });
  let live: OutgoingEntry<unknown>[] = [];
  let reads = 0;
  // The list's private fields, to see its compactions happen.
  const list = queue as unknown as { head: number; entries: unknown[] };
  let slices = 0;
  let emptied = 0;
  // 20,000 steps, in phases that grow and shrink the queue: past the 1,024 settled entries after
  // which the queue slices its list off, and down to empty, where it starts its list again.
  for (let step = 0; step < 20_000; step++) {
    const growing = Math.floor(step / 2_500) % 2 === 0;
    const headBefore = list.head;
    const op = next(100);
    if (op < (growing ? 70 : 25)) {
      const entry = queue.enqueue(
        samples[next(samples.length)],
        () => {},
        () => {},
        onDrop,
        false,
      );
      if (!('settled' in entry)) throw entry;
      live.push(entry);
    } else if (op < 85 && live.length > 0) {
      // Mostly the oldest (confirmations come in write order), sometimes any.
      const index = next(4) === 0 ? next(live.length) : 0;
      queue.settle(live[index]!);
      live.splice(index, 1);
    } else if (op < 90 && live.length > 0) {
      const index = next(live.length);
      if (queue.withdraw(live[index]!)) live.splice(index, 1);
    }
    if (list.head < headBefore) {
      if (list.entries.length > 0) slices++;
      else emptied++;
    }
    if (step % 5_000 === 4_999) {
      // A close: what was written on generation 1 is kept (for its link to confirm), the rest drained.
      for (const entry of live) if (next(2) === 0) entry.generation = 1;
      const drained = queue.drain(1);
      live = live.filter((entry) => !drained.includes(entry));
      // Some kept ones are confirmed before the next read, the rest after it: the queue is empty.
      for (const entry of live.splice(0, live.length >> 1)) queue.settle(entry);
      expect(queue.dataBytes_()).toBe(sum(live));
      for (const entry of live.splice(0)) queue.settle(entry);
    }
    if (next(3) === 0) {
      reads++;
      expect(queue.dataBytes_()).toBe(sum(live));
    }
  }
  expect(reads).toBeGreaterThan(5_000);
  expect(slices).toBeGreaterThan(0);
  expect(emptied).toBeGreaterThan(0);
  for (const entry of live) queue.settle(entry);
  expect(queue.dataBytes_()).toBe(0);
  expect(queue.size).toBe(0);
});
