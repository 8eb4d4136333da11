/**
 * What the replay buffer and the outbox keep once a message is released: nothing. Both keep their
 * entries in an array read from a head index and compacted in bulk; until then the released
 * prefix stayed in the array, reachable (a resume message's frame, its slab, its sender's token
 * and data), however long the messages behind it waited. A flood the server is slower to
 * acknowledge (`pnpm bench ws`, resume) held ~1,000 such messages beside a backlog of ~9,000.
 */
import { OutgoingQueue, ReplayBuffer } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

/** The array behind a buffer or queue (a private field, read for this count only). */
const slots = (holder: object) => (holder as unknown as { entries: readonly unknown[] }).entries;

test('the replay buffer keeps no acknowledged entry: 3,000 pushed, acknowledged 32 at a time, none left in its array', () => {
  const buffer = new ReplayBuffer<{ seq: number; size: number }>({
    maxReplayMessages: 1_024,
    maxWaitingMessages: 4_096,
  });
  const released: object[] = [];
  for (let seq = 1; seq <= 3_000; seq++) buffer.push({ seq, size: 64 });
  let kept = 0;
  let checks = 0;
  for (let ack = 32; ack <= 2_976; ack += 32) {
    let inOrder = true;
    const count = buffer.acknowledge(ack, (entry) => {
      inOrder &&= entry.seq === released.length + 1;
      released.push(entry);
    });
    expect(count).toBe(32);
    expect(inOrder).toBe(true);
    // Every 8th ack (11 checks), so the test stays linear: how many released entries are still in the array.
    if (ack % 256 === 0) {
      const held = new Set(slots(buffer));
      kept += released.filter((entry) => held.has(entry)).length;
      checks++;
    }
  }
  expect(checks).toBe(11);
  expect(released).toHaveLength(2_976);
  expect(kept).toBe(0);
  // What is still held is intact, in order.
  expect(buffer.size).toBe(24);
  expect(buffer.get(2_977)?.seq).toBe(2_977);
  expect(buffer.drain().map((entry) => entry.seq)).toEqual(Array.from({ length: 24 }, (_, i) => 2_977 + i));
});

test('the outbox keeps no settled entry: 100 queued, the first 60 settled in order, none of them left in its array', () => {
  const queue = new OutgoingQueue<Uint8Array>();
  const noop = () => {};
  const onDrop = { queueDropped_: noop };
  const entries = Array.from({ length: 100 }, () => {
    const entry = queue.enqueue(new Uint8Array(64), noop, noop, onDrop);
    if (!('settled' in entry)) throw entry;
    return entry;
  });
  for (const entry of entries.slice(0, 60)) queue.settle(entry);
  const held = new Set(slots(queue));
  expect(entries.slice(0, 60).filter((entry) => held.has(entry))).toHaveLength(0);
  expect(entries.slice(60).filter((entry) => held.has(entry))).toHaveLength(40);
  expect(queue.size).toBe(40);
  // Settling out of order: an entry behind an unsettled one is released with the prefix later.
  queue.settle(entries[70]!);
  expect(new Set(slots(queue)).has(entries[70]!)).toBe(true);
  for (const entry of entries.slice(60, 70)) queue.settle(entry);
  const after = new Set(slots(queue));
  expect(entries.slice(0, 71).filter((entry) => after.has(entry))).toHaveLength(0);
  expect(queue.size).toBe(29);
});
