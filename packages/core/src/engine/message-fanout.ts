import { Observable, type Subscriber } from 'rxjs';

/**
 * The hot multicast behind a connection's `messages$`: what a `Subject` does for `next` and
 * `complete`, without its per-value cost (rxjs 7 allocates an error-context closure and walks an
 * iterator on every `Subject.next`). Every message a connection receives goes through it, which
 * is why it is not a `Subject`. It never errors: a connection's message stream completes.
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
  private subscribers: readonly Subscriber<T>[] = [];
  private completed = false;

  /** Subscribers get the messages that arrive after they subscribe; after `complete()`, just completion. */
  readonly observable: Observable<T> = new Observable<T>((subscriber) => {
    if (this.completed) {
      subscriber.complete();
      return undefined;
    }
    this.subscribers = [...this.subscribers, subscriber];
    return () => {
      this.subscribers = this.subscribers.filter((other) => other !== subscriber);
    };
  });

  /** Delivers to every current subscriber. A bound function, so it can be handed over as an observer's `next`. */
  readonly next = (value: T): void => {
    const subscribers = this.subscribers;
    for (let i = 0; i < subscribers.length; i++) subscribers[i]!.next(value);
  };

  /** Completes every subscriber, once; later `next` calls are ignored. */
  complete(): void {
    if (this.completed) return;
    this.completed = true;
    const subscribers = this.subscribers;
    this.subscribers = [];
    for (const subscriber of subscribers) subscriber.complete();
  }
}
