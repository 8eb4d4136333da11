/**
 * Nothing is dropped silently and nothing given up on is delivered later: refusals are thrown by
 * `enqueue` (rejected by `send`) at the moment they happen, `send(data, { signal })` withdraws a
 * waiting message, `clearQueue()` withdraws them all, and bytes are copied on enqueue.
 */
import { ClosedByUserError, QueueOverflowError, SendWithdrawnError } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, test } from 'vitest';
import { connect, FAST, gatedConnection, settleAll, waitForState } from './support.js';

/** A connection held in recovery until `release()`. */
async function recovering(queue?: { maxMessages?: number }) {
  const held = await gatedConnection<string | Uint8Array>({ queue });
  held.transport.current!.fail();
  return held;
}

describe('enqueue: refusals are synchronous throws', () => {
  test('a full queue throws a typed QueueOverflowError for exactly the refused message', async () => {
    const { transport, conn, release } = await recovering({ maxMessages: 2 });
    const accepted = [conn.enqueue('a'), conn.enqueue('b')];
    expect(() => conn.enqueue('c')).toThrow(QueueOverflowError);
    await release();
    await Promise.all(accepted);
    expect(transport.current!.received).toEqual(['a', 'b']);
  });

  test('after close() it throws ClosedByUserError; send() rejects with the same instead', async () => {
    const { conn } = await recovering();
    conn.close();
    expect(() => conn.enqueue('late')).toThrow(ClosedByUserError);
    await expect(conn.send('late')).rejects.toBeInstanceOf(ClosedByUserError);
  });
});

describe('withdrawal', () => {
  test('an aborted signal withdraws a waiting send: it rejects with the reason and is never written', async () => {
    const { transport, conn, release } = await recovering();
    const controller = new AbortController();
    const kept = conn.send('kept-1');
    const withdrawn = conn.send('given up', { signal: controller.signal });
    const kept2 = conn.send('kept-2');
    const reason = new Error('timed out waiting');
    controller.abort(reason);
    await expect(withdrawn).rejects.toBe(reason);
    expect(conn.pending.messages).toBe(2);
    await release();
    await Promise.all([kept, kept2]);
    expect(transport.current!.received).toEqual(['kept-1', 'kept-2']);
  });

  test('a signal aborted before the send refuses it at once', async () => {
    const { conn } = await recovering();
    const reason = new Error('already over');
    await expect(conn.send('x', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(conn.pending.messages).toBe(0);
  });

  test('once written, aborting changes nothing: the send settles by its write', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const controller = new AbortController();
    const sent = conn.send('written', { signal: controller.signal });
    controller.abort();
    await expect(sent).resolves.toBeUndefined();
    expect(transport.current!.received).toEqual(['written']);
    conn.close();
  });

  test('clearQueue() withdraws every waiting send, each rejecting with a typed error', async () => {
    const { transport, conn, release } = await recovering();
    const sends = settleAll(['a', 'b', 'c'].map((m) => conn.send(m)));
    expect(conn.clearQueue()).toBe(3);
    const outcome = await sends;
    expect(outcome.rejections).toHaveLength(3);
    for (const error of outcome.rejections) expect(error).toBeInstanceOf(SendWithdrawnError);
    await release();
    await conn.send('after');
    expect(transport.current!.received).toEqual(['after']);
  });

  test('no abort listener outlives its send', async () => {
    const { conn, release } = await recovering();
    const controller = new AbortController();
    const added: unknown[] = [];
    const removed: unknown[] = [];
    const signal = controller.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((type: string, listener: EventListener, options?: AddEventListenerOptions) => {
      added.push(listener);
      add(type, listener, options);
    }) as typeof signal.addEventListener;
    signal.removeEventListener = ((type: string, listener: EventListener) => {
      removed.push(listener);
      remove(type, listener);
    }) as typeof signal.removeEventListener;
    const sends = Array.from({ length: 5 }, (_, i) => conn.send(`m${i}`, { signal }));
    await release();
    await Promise.all(sends);
    expect(added).toHaveLength(5);
    expect(removed).toEqual(added);
  });
});

describe('bytes are copied on enqueue, as WebSocket.send does', () => {
  test('reusing the buffer after send() while recovering does not change what is sent', async () => {
    const { transport, conn, release } = await recovering();
    const buffer = new Uint8Array([1, 2, 3]);
    const sent = conn.send(buffer);
    buffer.fill(9);
    const view = new DataView(new ArrayBuffer(8), 2, 2);
    view.setUint16(0, 0x0102);
    const sentView = conn.send(view as unknown as Uint8Array);
    view.setUint16(0, 0xffff);
    await release();
    await Promise.all([sent, sentView]);
    const [first, second] = transport.current!.received as [Uint8Array, DataView];
    expect([...first]).toEqual([1, 2, 3]);
    expect(second.getUint16(0)).toBe(0x0102);
  });
});

describe('found by review', () => {
  test('a send made from an open listener waits behind the sends queued before it', async () => {
    const { transport, conn, release } = await gatedConnection();
    transport.current!.fail();
    const queued = ['q0', 'q1', 'q2'].map((m) => conn.send(m));
    const fromListener: Promise<void>[] = [];
    conn.events$.subscribe((event) => {
      if (event.type === 'link-open' && event.recovered) fromListener.push(conn.send('from-listener'));
    });
    await release();
    await Promise.all([...queued, ...fromListener]);
    expect(transport.current!.received).toEqual(['q0', 'q1', 'q2', 'from-listener']);
  });

  test("a 'dropped' listener that sends again does not loop: each send is taken or refused once", async () => {
    const { transport, conn, release } = await gatedConnection({
      queue: { maxMessages: 3, overflow: 'drop-oldest' },
    });
    transport.current!.fail();
    let resends = 0;
    conn.events$.subscribe((event) => {
      if (event.type === 'dropped' && resends < 1_000) {
        resends++;
        conn.send(`again ${String(event.data)}`).catch(() => {});
      }
    });
    const sends = ['a', 'b', 'c', 'd'].map((m) => conn.send(m).catch(() => {}));
    expect(resends).toBeLessThan(10);
    expect(conn.pending.messages).toBe(3);
    await release();
    await Promise.all(sends);
  });

  test('a send written once and requeued by a break can no longer be withdrawn: the peer may have it', async () => {
    const { transport, conn, release } = await gatedConnection();
    const controller = new AbortController();
    // Written, but the link breaks before its confirmation is read.
    const written = conn.send('A', { signal: controller.signal });
    transport.current!.fail();
    controller.abort(new Error('too late'));
    expect(conn.clearQueue()).toBe(0);
    await release();
    await expect(written).resolves.toBeUndefined();
    expect(transport.current!.received).toEqual(['A']);
  });
});
