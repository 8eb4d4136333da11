/**
 * Shared fixtures for the core tests: connection bookkeeping (every connection a test makes is
 * closed when it finishes, through `onTestFinished`, the one disposal style of the tests), state
 * recorders, and transports that count what the engine does to them.
 */
import {
  type AttachOptions,
  attach,
  type ConnectionState,
  type HAConnection,
  type Link,
  LinkFailedError,
  type Transport,
} from '@lifeline/core';
import type { StoredSession } from '@lifeline/core/resume/server';
import { createMemoryTransport, type MemoryTransport } from '@lifeline/core/testing';
import { filter, firstValueFrom, Observable } from 'rxjs';
import { onTestFinished } from 'vitest';

/** `attach`, closed when the test finishes (`onTestFinished`) whatever the test did. */
export function connect<T, H = undefined>(
  transport: Transport<T, T>,
  options: AttachOptions<T, T, H> = {},
): HAConnection<T, T> {
  const conn = attach(transport, options);
  onTestFinished(() => conn.close());
  return conn;
}

/** Options that make recovery immediate (no backoff, no uptime window), for tests that are not about time. */
export const FAST: AttachOptions<any, any, any> = Object.freeze<AttachOptions<any, any, any>>({
  backoff: { initialDelayMs: 0, maxDelayMs: 0, jitter: 'none' },
  minUptimeMs: 0,
});

/** Every state the connection goes through, from the one current at the call. */
export function recordStates(conn: HAConnection<any, any>): ConnectionState[] {
  const states: ConnectionState[] = [];
  conn.state$.subscribe((state) => states.push(state));
  return states;
}

/** Resolves with the first state (current one included) that has `status` and passes `match`. */
export function waitForState<S extends ConnectionState['status']>(
  conn: HAConnection<any, any>,
  status: S,
  match: (state: Extract<ConnectionState, { status: S }>) => boolean = () => true,
): Promise<Extract<ConnectionState, { status: S }>> {
  return firstValueFrom(
    conn.state$.pipe(
      filter(
        (state): state is Extract<ConnectionState, { status: S }> =>
          state.status === status && match(state as Extract<ConnectionState, { status: S }>),
      ),
    ),
  );
}

/** A recoverable link failure with a recognisable message. */
export function reset(label: string): LinkFailedError {
  return new LinkFailedError(`reset ${label}`, { syscallCode: 'ECONNRESET' });
}

/** Counts messages in `received` against `sent`: what is missing, doubled, or out of order. */
export function tally(sent: readonly string[], received: readonly string[]) {
  const seen = new Map<string, number>();
  let outOfOrder = 0;
  let last = -1;
  for (const message of received) {
    seen.set(message, (seen.get(message) ?? 0) + 1);
    const index = sent.indexOf(message);
    if (index < last) outOfOrder++;
    last = Math.max(last, index);
  }
  let lost = 0;
  let duplicated = 0;
  for (const message of sent) {
    const count = seen.get(message) ?? 0;
    if (count === 0) lost++;
    if (count > 1) duplicated += count - 1;
  }
  const unexpected = received.filter((message) => !sent.includes(message)).length;
  return { sent: sent.length, received: received.length, lost, duplicated, outOfOrder, unexpected };
}

/** `count` messages named `prefix-0`... */
export function messages(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
}

/**
 * A memory transport whose links count subscriptions to `messages$` and their teardowns, so a
 * test can assert that nothing is left subscribed to a link.
 */
export function countingTransport<T = string>(inner: MemoryTransport<T> = createMemoryTransport<T>()) {
  const counts = { subscribed: 0, unsubscribed: 0 };
  const links: Link<T, T>[] = [];
  const transport: Transport<T, T> = {
    async open(signal) {
      const link = await inner.open(signal);
      const counted: Link<T, T> = {
        ...link,
        messages$: new Observable<T>((subscriber) => {
          counts.subscribed++;
          const subscription = link.messages$.subscribe(subscriber);
          return () => {
            counts.unsubscribed++;
            subscription.unsubscribe();
          };
        }),
      };
      links.push(counted);
      return counted;
    },
  };
  return {
    transport,
    memory: inner,
    links,
    counts,
    /** Subscriptions to any link's `messages$` not yet torn down. */
    get active() {
      return counts.subscribed - counts.unsubscribed;
    },
  };
}

/** The server end of a {@link heldTransport} link. */
export interface HeldPeer {
  /** What reached the server on this link, in order. */
  readonly received: string[];
  /** Writes accepted by the link but not yet on the wire. */
  readonly held: number;
  /** Puts every held write on the wire and confirms it. */
  flush(): void;
  /** The link breaks: held writes are lost (their sends reject) and `messages$` errors. */
  fail(error?: unknown): void;
  readonly open: boolean;
}

/**
 * A transport whose writes stay "in the socket buffer" until the test flushes them, like a real
 * socket under load. Breaking a link loses what it held: the case where a send failed because
 * the link broke, which the engine must write again on the recovered link.
 */
export function heldTransport() {
  const peers: HeldPeer[] = [];
  let openAttempts = 0;
  const transport: Transport<string, string> = {
    async open() {
      openAttempts++;
      const received: string[] = [];
      let held: { data: string; resolve: () => void; reject: (error: unknown) => void }[] = [];
      let open = true;
      let fail!: (error: unknown) => void;
      const messages$ = new Observable<string>((subscriber) => {
        fail = (error) => subscriber.error(error);
      });
      const peer: HeldPeer = {
        received,
        get held() {
          return held.length;
        },
        get open() {
          return open;
        },
        flush() {
          const batch = held;
          held = [];
          for (const write of batch) {
            received.push(write.data);
            write.resolve();
          }
        },
        fail(error = reset(`held link ${peers.length}`)) {
          if (!open) return;
          open = false;
          const lost = held;
          held = [];
          for (const write of lost) write.reject(error);
          fail(error);
        },
      };
      peers.push(peer);
      return {
        messages$,
        send(data) {
          if (!open) return Promise.reject(new LinkFailedError('link is down'));
          return new Promise<void>((resolve, reject) => held.push({ data, resolve, reject }));
        },
        close() {
          open = false;
        },
      };
    },
  };
  return {
    transport,
    peers,
    get openAttempts() {
      return openAttempts;
    },
  };
}

/** A promise with its settlement exposed. */
export function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown; rejected: boolean } = {
    settled: false,
    rejected: false,
  };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error) => {
      state.settled = true;
      state.rejected = true;
      state.error = error;
    },
  );
  return state;
}

/** Resolves once every promise has settled; returns how many fulfilled and the rejections. */
export async function settleAll(promises: readonly Promise<unknown>[]) {
  const results = await Promise.allSettled(promises);
  const rejections = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
  return { fulfilled: results.length - rejections.length, rejections };
}

/** `Promise.withResolvers`, which Node 20 lacks. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A connection on a memory transport (zero backoff) whose recovery waits until `release()`:
 * open when returned; fail `transport.current` to hold it in `recovering`.
 */
export async function gatedConnection<T = string>(options: AttachOptions<T, T, undefined> = {}) {
  const transport = createMemoryTransport<T>();
  const gate = deferred();
  const conn = connect(transport, {
    ...FAST,
    ...options,
    recover: async (ctx) => {
      await gate.promise;
      return ctx.reopen();
    },
  });
  await waitForState(conn, 'open');
  return {
    transport,
    conn,
    /** Lets recovery reopen, and waits until the connection counts the recovery. */
    async release() {
      gate.resolve();
      await waitForState(conn, 'open', (state) => state.recoveries === 1);
    },
  };
}

/** Resolves when `conn` is next (or already) open. */
export const opened = (conn: HAConnection<any, any>) =>
  firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));

/** Resolves when `conn` has closed (given up or closed by the caller). */
export const closed = (conn: HAConnection<any, any>) =>
  firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'closed')));

/** A recoverable link failure: the server is down. */
export const down = () => new LinkFailedError('the server is down', { recoverable: true });

/**
 * Counts a received stream of `<prefix><k>` texts (any non-digit prefix) against the numbers
 * expected: `1..expected` when a count is given.
 */
export function tallyNumbered(received: readonly string[], expected: number | readonly number[]) {
  const wanted = typeof expected === 'number' ? Array.from({ length: expected }, (_, i) => i + 1) : expected;
  const seen = new Set<number>();
  let duplicated = 0;
  let reordered = 0;
  let last = 0;
  for (const text of received) {
    const k = Number(text.replace(/^\D+/, ''));
    if (seen.has(k)) duplicated++;
    else if (k < last) reordered++;
    seen.add(k);
    last = Math.max(last, k);
  }
  const lost = wanted.filter((k) => !seen.has(k)).length;
  return { sent: wanted.length, received: received.length, lost, duplicated, reordered };
}

/** A stored session with nothing sent, received or held: what a store holds for a new one. */
export function storedSession(id: string, fields: Partial<StoredSession> = {}): StoredSession {
  return {
    id,
    tokenHash: new Uint8Array(32),
    retiredTokenHash: null,
    tokenConfirmed: false,
    createdAt: 0,
    expiresAt: null,
    lastSent: 0,
    peerAcked: 0,
    received: 0,
    replay: [],
    ...fields,
  };
}
