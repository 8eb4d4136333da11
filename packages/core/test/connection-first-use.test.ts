/**
 * What a connection makes on first use, so that an idle one keeps none of it.
 *
 * Its `messages$`, `state$` and `events$` are fanouts made on first read: a drop-in
 * socket reads the connection through its sink and never subscribes. What a subscriber sees must not depend on when its fanout was made: one
 * that first reads them after the close gets the end; one that joins from the sink's handler (the
 * sink is told first, as a first subscriber would be) gets the state once, and the next message,
 * not the one being handled.
 *
 * Its outgoing queue is made at its first send: until then it shares one empty queue with every
 * connection that has not sent, which nothing may write into.
 */
import { type ConnectionState, QueueOverflowError } from '@lifeline/core';
import type { PostingConnection, PostSink } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, onTestFinished, test, vi } from 'vitest';
import { connect, FAST, waitForState } from './support.js';

describe('messages$, state$ and events$ made on first read', () => {
  test('read for the first time after the close: the final state, then completion; messages$ and events$ complete at once', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await transport.waitForPeer(1);
    conn.close();
    await conn.closed;
    const heard: string[] = [];
    conn.state$.subscribe({
      next: (state) => heard.push(`state ${state.status}`),
      complete: () => heard.push('state complete'),
    });
    conn.messages$.subscribe({
      next: (message) => heard.push(`message ${message}`),
      complete: () => heard.push('messages complete'),
    });
    conn.events$.subscribe({
      next: (event) => heard.push(`event ${event.type}`),
      complete: () => heard.push('events complete'),
    });
    expect(heard).toEqual(['state closed', 'state complete', 'messages complete', 'events complete']);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'user' });
  });

  test('subscribers that join from the sink: the current state once, then each later one; the next message, not this one', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST) as PostingConnection<string, string>;
    const heard: string[] = [];
    const sink: PostSink<string, string> = {
      sendFailed_: () => {},
      dropped_: () => {},
      closing_: () => {},
      received_(message) {
        heard.push(`sink ${message}`);
        if (message === 'm1') conn.messages$.subscribe((late) => heard.push(`subscriber ${late}`));
      },
      stateChanged_(state: ConnectionState) {
        heard.push(`sink ${state.status}`);
        if (state.status === 'open') {
          conn.state$.subscribe((late) => heard.push(`subscriber ${late.status}`));
        }
      },
    };
    conn.sink_ = sink;
    await waitForState(conn, 'open');
    const peer = transport.current!;
    for (const message of ['m1', 'm2', 'm3']) peer.send(message);
    conn.close();
    expect(heard).toEqual([
      'sink open',
      'subscriber open',
      'sink m1',
      'sink m2',
      'subscriber m2',
      'sink m3',
      'subscriber m3',
      'sink closed',
      'subscriber closed',
    ]);
  });

  test('a sink that throws: reported, and the subscribers still get the message', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST) as PostingConnection<string, string>;
    const reported: unknown[] = [];
    // Where the runtime has no `reportError` (Node), the report is an uncaught exception.
    vi.stubGlobal('reportError', (error: unknown) => reported.push(error));
    onTestFinished(() => {
      vi.unstubAllGlobals();
    });
    const received: string[] = [];
    conn.messages$.subscribe((message) => received.push(message));
    const bug = new Error('app bug');
    conn.sink_ = {
      sendFailed_: () => {},
      dropped_: () => {},
      closing_: () => {},
      received_: () => {
        throw bug;
      },
      stateChanged_: () => {},
    };
    await waitForState(conn, 'open');
    transport.current!.send('m1');
    transport.current!.send('m2');
    expect(received).toEqual(['m1', 'm2']);
    expect(reported).toEqual([bug, bug]);
  });
});

describe('the outgoing queue made at the first send', () => {
  test('connections that never sent share nothing: sends queued on one, closes and drops on others, each pending its own', async () => {
    // Closing (which drains the queue) and sending while no link is up (queued) on connections
    // that had not sent: if any of them wrote into the shared empty queue, the others' `pending`,
    // and the limits of each, would show it.
    const idle = connect(createMemoryTransport<string>(), FAST);
    const closedUnused = connect(createMemoryTransport<string>(), FAST);
    closedUnused.close();
    const refused = createMemoryTransport<string>();
    refused.refuseOpens(Number.POSITIVE_INFINITY);
    const queued = connect(refused, { ...FAST, maxAttemptsPerFailure: 1_000, queue: { maxMessages: 2 } });
    const sends = [queued.send('q1'), queued.send('q2')];
    for (const send of sends) send.catch(() => {});
    expect(() => queued.enqueue('q3')).toThrow(QueueOverflowError);
    const other = createMemoryTransport<string>();
    other.refuseOpens(Number.POSITIVE_INFINITY);
    const sender = connect(other, { ...FAST, maxAttemptsPerFailure: 1_000, queue: { maxMessages: 3 } });
    for (const data of ['s1', 's2', 's3']) sender.send(data).catch(() => {});
    expect(idle.pending).toEqual({ messages: 0, bytes: 0 });
    expect(closedUnused.pending).toEqual({ messages: 0, bytes: 0 });
    expect(queued.pending.messages).toBe(2);
    expect(sender.pending.messages).toBe(3);
    // A connection that had not sent, closed after the others queued: its drain empties nothing of theirs.
    idle.close();
    expect(queued.pending.messages).toBe(2);
    expect(sender.pending.messages).toBe(3);
    // And the next new connection starts empty.
    const next = connect(createMemoryTransport<string>(), FAST);
    expect(next.pending).toEqual({ messages: 0, bytes: 0 });
    await waitForState(next, 'open');
    await next.send('n1');
    expect(next.pending).toEqual({ messages: 0, bytes: 0 });
    expect(queued.pending.messages).toBe(2);
  });
});
