/**
 * How the engine finds the next send waiting for a link (OutgoingQueue.firstWaiting_), counted
 * rather than timed. Two defects of the search it replaced, a generator over the whole list:
 * - after every send made from inside a link's own send (a wrapper that sends), the flush
 *   searched from the oldest unconfirmed send on, over every one written and awaiting its
 *   confirmation: n re-entrant sends among n unconfirmed cost O(n²) reads of the list;
 * - it kept a live index into the list: a send settled from inside a write (a link confirming
 *   synchronously, which the `sendWith` contract forbids but nothing enforced) compacted the list
 *   under it, and the flush skipped the sends the compaction moved (1,499 of 3,000 left waiting).
 */
import type { HAConnection, Link, Transport } from '@lifeline/core';
import { Observable } from 'rxjs';
import { expect, test } from 'vitest';
import { connect, deferred, settleAll, waitForState } from './support.js';

/** Reads of the queue's list by index (entries looked at), counted through a Proxy on the list. */
function countReads(conn: HAConnection<string, string>) {
  const queue = (conn as unknown as { outbox_: { entries: unknown[] } }).outbox_;
  const counter = { reads: 0 };
  queue.entries = new Proxy(queue.entries, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) counter.reads++;
      return Reflect.get(target, key, receiver);
    },
  });
  return counter;
}

test('sends made from inside a link send, among thousands unconfirmed: each finds the next waiting send in O(1) reads, in order', async () => {
  const N = 2_000;
  const wire: string[] = [];
  let conn!: HAConnection<string, string>;
  const link: Link<string, string> = {
    messages$: new Observable<string>(() => {}),
    // A wrapper's own send that sends once more from inside (as a logging or counting layer
    // might), and a link that confirms nothing during the test: every send stays unconfirmed.
    send(data) {
      if (data.startsWith('m')) conn.send(`r${data.slice(1)}`).catch(() => {});
      wire.push(data);
      return new Promise<void>(() => {});
    },
    close() {},
  };
  conn = connect({ open: async () => link } satisfies Transport<string, string>);
  await waitForState(conn, 'open');
  conn.send('first').catch(() => {});
  const counter = countReads(conn);
  for (let i = 0; i < N; i++) conn.send(`m${i}`).catch(() => {});

  const expected = ['first'];
  for (let i = 0; i < N; i++) expected.push(`m${i}`, `r${i}`);
  expect(wire).toEqual(expected);
  expect(conn.pending.messages).toBe(2 * N + 1);
  // Bounded work: a few reads per send (the search resumes where the last one stopped), where
  // the whole-list search made about N² (4,000,000 here).
  expect(counter.reads).toBeLessThanOrEqual(3 * 2 * N);
});

test('a link that confirms synchronously inside sendWith, while the queued sends are flushed: all 3,000 written once, in order', async () => {
  const N = 3_000;
  const wire: string[] = [];
  const opened = deferred<Link<string, string>>();
  const link: Link<string, string> = {
    messages$: new Observable<string>(() => {}),
    send: () => Promise.reject(new Error('not used: the link has sendWith')),
    // Breaks the contract ("never synchronously from sendWith itself"): each send settles from
    // inside its own write, and the queue compacts its settled prefix meanwhile.
    sendWith(data, confirmed, token) {
      wire.push(data);
      confirmed(undefined, token);
    },
    close() {},
  };
  const conn = connect({ open: () => opened.promise } satisfies Transport<string, string>);
  const sends: Promise<void>[] = [];
  for (let i = 0; i < N; i++) sends.push(conn.send(`m${i}`));
  expect(conn.pending.messages).toBe(N);
  opened.resolve(link);
  await waitForState(conn, 'open');

  expect(wire.length).toBe(N);
  expect(wire).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
  expect(conn.pending).toEqual({ messages: 0, bytes: 0 });
  expect(await settleAll(sends)).toEqual({ fulfilled: N, rejections: [] });
});
