/** The bounded outgoing queue and its overflow policies, through `attach`. */
import { type ConnectionEvent, type QueueOptions, QueueOverflowError } from '@lifeline/core';
import { QUEUE_ENTRY_OVERHEAD_BYTES as OVERHEAD } from '@lifeline/core/internal';
import { describe, expect, test } from 'vitest';
import { gatedConnection, messages, settleAll, tally } from './support.js';

/** A connection held in recovery until `release()`, with every `dropped` event recorded. */
async function recoveringConnection(queue: QueueOptions) {
  const held = await gatedConnection({ queue });
  const dropped: Extract<ConnectionEvent<string, string>, { type: 'dropped' }>[] = [];
  held.conn.events$.subscribe((event) => {
    if (event.type === 'dropped') dropped.push(event);
  });
  held.transport.current!.fail();
  expect(held.conn.state$.value.status).toBe('recovering');
  return { ...held, dropped };
}

describe("overflow: 'reject'", () => {
  test('by messages: the send past maxMessages rejects with a typed QueueOverflowError; the rest go through', async () => {
    const { transport, conn, dropped, release } = await recoveringConnection({ maxMessages: 3 });
    const sent = messages('m', 5);
    const settled = settleAll(sent.map((message) => conn.send(message)));
    expect(conn.pending.messages).toBe(3);
    await release();
    const outcome = await settled;
    expect(outcome.fulfilled).toBe(3);
    expect(outcome.rejections).toHaveLength(2);
    for (const error of outcome.rejections) {
      expect(error).toBeInstanceOf(QueueOverflowError);
      expect(error).toMatchObject({ code: 'ERR_QUEUE_OVERFLOW', limit: 'messages' });
    }
    expect(dropped).toHaveLength(0);
    expect(tally(sent.slice(0, 3), transport.current!.received)).toMatchObject({
      received: 3,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      unexpected: 0,
    });
  });

  test('by bytes: strings count two bytes per UTF-16 unit, each message its bookkeeping too', async () => {
    const { transport, conn, release } = await recoveringConnection({ maxBytes: 2 * OVERHEAD + 12 });
    const first = conn.send('abc'); // 6 bytes + overhead
    const second = conn.send('def'); // 12 bytes + 2 x overhead: at the limit, accepted
    const third = conn.send('g'); // 14 bytes + 3 x overhead: over
    expect(conn.pending).toEqual({ messages: 2, bytes: 12 });
    await expect(third).rejects.toMatchObject({ code: 'ERR_QUEUE_OVERFLOW', limit: 'bytes' });
    await release();
    await Promise.all([first, second]);
    expect(transport.current!.received).toEqual(['abc', 'def']);
  });

  test('maxMessages: 0 refuses every send, while recovering and on an open link alike', async () => {
    const { conn, release } = await recoveringConnection({ maxMessages: 0 });
    await expect(conn.send('m')).rejects.toBeInstanceOf(QueueOverflowError);
    await release();
    await expect(conn.send('after')).rejects.toBeInstanceOf(QueueOverflowError);
  });

  test('sends in flight when the link broke count toward the limit', async () => {
    const { transport, conn, release } = await gatedConnection({ queue: { maxMessages: 3 } });
    // The three unconfirmed writes go back to waiting when the link breaks, still counted.
    const inFlight = messages('in-flight', 3).map((message) => conn.send(message));
    transport.current!.fail();
    expect(conn.pending.messages).toBe(3);
    await expect(conn.send('one too many')).rejects.toMatchObject({ limit: 'messages' });
    await release();
    await Promise.all(inFlight);
    expect(transport.current!.received).toEqual(messages('in-flight', 3));
  });
});

describe("overflow: 'drop-oldest'", () => {
  test('by messages: each dropped send rejects AND is reported; nothing is dropped silently', async () => {
    const { transport, conn, dropped, release } = await recoveringConnection({
      maxMessages: 3,
      overflow: 'drop-oldest',
    });
    const sent = messages('m', 10);
    const settled = settleAll(sent.map((message) => conn.send(message)));
    expect(conn.pending.messages).toBe(3);
    await release();
    const outcome = await settled;

    expect(outcome.fulfilled).toBe(3);
    expect(outcome.rejections).toHaveLength(7);
    for (const error of outcome.rejections)
      expect(error).toMatchObject({ code: 'ERR_QUEUE_OVERFLOW', limit: 'messages' });
    expect(dropped.map((event) => event.data)).toEqual(sent.slice(0, 7));
    // The event carries the very error the send rejected with.
    expect(dropped.map((event) => event.error)).toEqual(outcome.rejections);
    expect(tally(sent.slice(7), transport.current!.received)).toMatchObject({
      received: 3,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      unexpected: 0,
    });
    // Every send is accounted for: written, or rejected and reported.
    expect(outcome.fulfilled + dropped.length).toBe(sent.length);
  });

  test('by bytes: as many of the oldest as needed are dropped', async () => {
    const { transport, conn, dropped, release } = await recoveringConnection({
      maxBytes: 3 * OVERHEAD + 12,
      overflow: 'drop-oldest',
    });
    // 4 + 4 + 4 bytes fill it; 8 more need two of them to go.
    const settled = settleAll(['aa', 'bb', 'cc', 'dddd'].map((message) => conn.send(message)));
    await release();
    const outcome = await settled;
    expect(dropped.map((event) => event.data)).toEqual(['aa', 'bb']);
    expect(dropped.every((event) => event.error.limit === 'bytes')).toBe(true);
    expect(outcome.rejections).toHaveLength(2);
    expect(transport.current!.received).toEqual(['cc', 'dddd']);
  });

  test('a message larger than maxBytes is refused without dropping anything', async () => {
    const { transport, conn, dropped, release } = await recoveringConnection({
      maxBytes: OVERHEAD + 8,
      overflow: 'drop-oldest',
    });
    const kept = conn.send('ab');
    await expect(conn.send('too large')).rejects.toMatchObject({ limit: 'bytes' });
    expect(dropped).toHaveLength(0);
    await release();
    await kept;
    expect(transport.current!.received).toEqual(['ab']);
  });

  test('maxMessages: 0 refuses the new send itself (there is nothing older to drop)', async () => {
    const { conn, dropped, release } = await recoveringConnection({
      maxMessages: 0,
      overflow: 'drop-oldest',
    });
    await expect(conn.send('m')).rejects.toBeInstanceOf(QueueOverflowError);
    expect(dropped).toHaveLength(0);
    expect(conn.pending.messages).toBe(0);
    await release();
  });
});
