/** The multicast behind `messages$` keeps a Subject's semantics for next and complete. */
import { describe, expect, test } from 'vitest';
import { MessageFanout } from '../src/engine/message-fanout.js';

describe('MessageFanout', () => {
  test('delivers to every subscriber, in subscription order, only what arrives after it subscribed', () => {
    const fanout = new MessageFanout<number>();
    const seen: string[] = [];
    fanout.next(0);
    fanout.observable.subscribe((value) => seen.push(`a${value}`));
    fanout.next(1);
    fanout.observable.subscribe((value) => seen.push(`b${value}`));
    fanout.next(2);
    expect(seen).toEqual(['a1', 'a2', 'b2']);
  });

  test('a subscriber that leaves or joins during a delivery does not disturb that delivery', () => {
    const fanout = new MessageFanout<number>();
    const seen: string[] = [];
    const first = fanout.observable.subscribe((value) => {
      seen.push(`first ${value}`);
      first.unsubscribe();
      fanout.observable.subscribe((later) => seen.push(`late ${later}`));
    });
    fanout.observable.subscribe((value) => seen.push(`second ${value}`));
    fanout.next(1);
    fanout.next(2);
    expect(seen).toEqual(['first 1', 'second 1', 'second 2', 'late 2']);
  });

  test('complete() completes everyone once; later subscribers complete at once; later values are ignored', () => {
    const fanout = new MessageFanout<number>();
    const events: string[] = [];
    fanout.observable.subscribe({
      next: (v) => events.push(`next ${v}`),
      complete: () => events.push('complete'),
    });
    fanout.complete();
    fanout.complete();
    fanout.next(1);
    fanout.observable.subscribe({
      next: (v) => events.push(`late next ${v}`),
      complete: () => events.push('late complete'),
    });
    expect(events).toEqual(['complete', 'late complete']);
  });

  test('unsubscribing removes the subscriber', () => {
    const fanout = new MessageFanout<number>();
    const seen: number[] = [];
    const subscription = fanout.observable.subscribe((value) => seen.push(value));
    fanout.next(1);
    subscription.unsubscribe();
    fanout.next(2);
    expect(seen).toEqual([1]);
  });
});
