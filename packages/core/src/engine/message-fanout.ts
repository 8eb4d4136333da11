import { Observable, type Subscriber, type TeardownLogic } from 'rxjs';
import { reportException } from './report-exception.js';

/**
 * The subscriber list of every fanout without subscribers: lists are replaced, never mutated, so
 * one empty list serves all (an idle connection's three fanouts would otherwise keep 32 B each).
 */
const NONE: readonly never[] = [];

/**
 * A hot multicast: what a `Subject` does for `next`, `error` and `complete`, without its
 * per-value cost (rxjs 7 allocates an error-context closure and walks an iterator on every
 * `Subject.next`) and without a closure per instance. A connection's `messages$` and a WebSocket
 * link's `messages$` and `pongs$` are one each: every message goes through it, and an idle
 * connection keeps it for its whole life. A subscriber that comes after the end gets the end
 * (completion or the error), as from a stopped `Subject`.
 *
 * @example
 * ```ts
 * const fanout = new MessageFanout<string>();
 * fanout.observable.subscribe(console.log);
 * fanout.next('hello');
 * fanout.complete();
 * ```
 * @see HAConnection.messages$
 */
export class MessageFanout<T> {
  // Replaced, never mutated: a delivery loop keeps its snapshot when a subscriber leaves or
  // joins during a delivery (as a Subject does).
  /** @internal */
  subscribers_: readonly Subscriber<T>[] = NONE;
  /** 0 while open, 1 completed, 2 errored with `failure`. @internal */
  ended_: 0 | 1 | 2 = 0;
  private failure_: unknown;

  private observable_: Observable<T> | undefined;

  /**
   * Subscribers get the messages that arrive after they subscribe; after the end, just the end.
   * Made on first read: a fanout nobody subscribes to (a connection read through its sink) keeps none.
   */
  get observable(): Observable<T> {
    this.observable_ ??= new FanoutObservable(this);
    return this.observable_;
  }

  /** @internal */
  add(subscriber: Subscriber<T>): TeardownLogic {
    if (this.ended_) {
      if (this.ended_ === 2) subscriber.error(this.failure_);
      else subscriber.complete();
      return undefined;
    }
    // A literal of the exact length: a spread into an empty list reserves room for 16.
    const subscribers = this.subscribers_;
    this.subscribers_ = subscribers.length === 0 ? [subscriber] : [...subscribers, subscriber];
    return () => {
      this.subscribers_ = this.subscribers_.filter((other) => other !== subscriber);
    };
  }

  /** Delivers to every current subscriber; ignored after the end. */
  next(value: T): void {
    fanOut(this, value);
  }

  /** Completes every subscriber, once; later calls are ignored. */
  complete(): void {
    this.end_(1, undefined);
  }

  /** Errors every subscriber, once; later calls are ignored. */
  error(error: unknown): void {
    this.end_(2, error);
  }

  private end_(how: 1 | 2, error: unknown): void {
    if (this.ended_) return;
    this.ended_ = how;
    this.failure_ = error;
    const subscribers = this.subscribers_;
    this.subscribers_ = NONE;
    for (const subscriber of subscribers) {
      if (how === 2) subscriber.error(error);
      else subscriber.complete();
    }
  }
}

/**
 * A {@link MessageFanout} that keeps the last value and gives it to each subscriber as it
 * subscribes, as a `BehaviorSubject` does; a subscriber after the end gets the last value, then
 * the end (a completed `BehaviorSubject` would give it nothing). A connection's `state$`, whose
 * connection sets `value` before each delivery ({@link fanOut}): `next` does not.
 */
export class ValueFanout<T> extends MessageFanout<T> {
  constructor(public value: T) {
    super();
  }

  /** @internal */
  override add(subscriber: Subscriber<T>): TeardownLogic {
    const ended = this.ended_;
    if (ended) subscriber.next(this.value);
    // Added before it is given the value, as by a BehaviorSubject: a state set from its handler reaches it.
    const teardown = super.add(subscriber);
    if (!ended) subscriber.next(this.value);
    return teardown;
  }
}

/**
 * Delivers a value to a fanout's subscribers (none if it was not made, nothing after its end),
 * telling `first` before them (a drop-in socket's method, called on `self`: the socket's own
 * dispatch, without a subscription, subscriber, observer and teardown per connection), as their
 * first subscriber would be told: one that joins from inside it gets the next value, not this one.
 * `first` calls the application (a socket's `onmessage`): a throw there is reported, and the
 * subscribers still get the value (as a Subject's other observers would).
 */
export function fanOut<T>(
  fanout: MessageFanout<T> | undefined,
  value: T,
  first?: (value: T) => void,
  self?: unknown,
): void {
  if (fanout?.ended_) return;
  const subscribers = fanout ? fanout.subscribers_ : NONE;
  try {
    first?.call(self, value);
  } catch (error) {
    reportException(error);
  }
  for (let i = 0; i < subscribers.length; i++) subscribers[i]!.next(value);
}

/**
 * A fanout made on first use (a connection's `messages$`, `state$`, `events$`: most connections
 * never have a subscriber), ended at once if what it reports already ended: a subscriber after the
 * close gets the completion, as from a fanout that saw it.
 */
export function lateFanout<F extends { complete(): void }>(ended: boolean, fanout: F): F {
  if (ended) fanout.complete();
  return fanout;
}

/**
 * An observable whose subscriptions are a method call on its source (`source.add(subscriber)`),
 * not a closure kept per instance: a fanout's, a connection's `state$`, a WebSocket link's
 * `messages$`. One class for all of them (one copy in a bundle). @internal
 */
export class FanoutObservable<
  T,
  S extends { add(subscriber: Subscriber<T>): TeardownLogic } = MessageFanout<T>,
> extends Observable<T> {
  /** @internal */
  readonly fanout_: S;

  constructor(fanout: S) {
    super();
    this.fanout_ = fanout;
  }

  /** Called by rxjs for every subscription (`Observable._subscribe`). @internal */
  protected _subscribe(subscriber: Subscriber<T>): TeardownLogic {
    return this.fanout_.add(subscriber);
  }
}
