import { asyncScheduler, type Observable, type SchedulerLike, Subject, timer } from 'rxjs';
import { ConnectFailedError, LinkClosedError, LinkFailedError, NotOpenError } from '../engine/errors.js';
import type { Link, LinkData, Transport } from '../engine/link.js';
import { CloseCode } from '../policy/close-codes.js';

/** Options of {@link createMemoryTransport}. */
export interface MemoryTransportOptions {
  /** Drives `delayOpens`. @default asyncScheduler */
  scheduler?: SchedulerLike;
}

/** The server's end of one in-memory link. */
export interface MemoryPeer<T = LinkData> {
  /** Sequence number of this link (1-based), in open order. */
  readonly id: number;
  /** What the client sent on this link, in order. */
  readonly messages$: Observable<T>;
  /** Every message the client sent on this link. */
  readonly received: readonly T[];
  /** Server → client. Ignored once the link is down or half-open. */
  send(data: T): void;
  /** The link fails under the client with `error` (default: a recoverable ECONNRESET). */
  fail(error?: unknown): void;
  /** The server closes the link with a close code (1000 is a deliberate, fatal close). */
  close(code?: number, reason?: string): void;
  /** Nothing gets through either way from now on, and nobody is told: a half-open link. */
  halfOpen(): void;
  readonly open: boolean;
}

/** An in-memory transport with fault injection, for the project's tests and for users' own. */
export interface MemoryTransport<T = LinkData> extends Transport<T, T> {
  /** Open calls so far (successful or not). */
  readonly openAttempts: number;
  /** Every link opened so far, oldest first. */
  readonly peers: readonly MemoryPeer<T>[];
  /** The most recently opened link's server end. */
  readonly current: MemoryPeer<T> | undefined;
  /** Emits each new link's server end. */
  readonly connections$: Observable<MemoryPeer<T>>;
  /** The next `count` opens reject with `error` (default: a recoverable ECONNREFUSED). */
  refuseOpens(count?: number, error?: unknown): void;
  /** Opens succeed again. */
  acceptOpens(): void;
  /** Each open takes `ms` (on the transport's scheduler). */
  delayOpens(ms: number): void;
  /** Waits for the link with the given id (1-based) to open. */
  waitForPeer(id: number): Promise<MemoryPeer<T>>;
}

/**
 * Creates an in-memory transport: each `open()` makes a link whose server end is a
 * {@link MemoryPeer}. Delivery is synchronous, so tests count exactly.
 *
 * @example
 * ```ts
 * const transport = createMemoryTransport<string>();
 * const conn = attach(transport);
 * transport.current!.fail(); // the engine recovers on a new link
 * ```
 */
export function createMemoryTransport<T = LinkData>(
  options: MemoryTransportOptions = {},
): MemoryTransport<T> {
  const scheduler = options.scheduler ?? asyncScheduler;
  const peers: MemoryPeer<T>[] = [];
  const connections = new Subject<MemoryPeer<T>>();
  let openAttempts = 0;
  let refusals = 0;
  let refusalError: unknown;
  let openDelayMs = 0;

  const makeLink = (): { link: Link<T, T>; peer: MemoryPeer<T> } => {
    const toClient = new Subject<T>();
    const toServer = new Subject<T>();
    const received: T[] = [];
    let open = true;
    let half = false;
    const down = (error: unknown) => {
      if (!open) return;
      open = false;
      toClient.error(error);
      toServer.complete();
    };
    const peer: MemoryPeer<T> = {
      id: peers.length + 1,
      messages$: toServer.asObservable(),
      received,
      send(data) {
        if (open && !half) toClient.next(data);
      },
      fail(error = new LinkFailedError('connection reset by peer', { syscallCode: 'ECONNRESET' })) {
        down(error);
      },
      close(code = CloseCode.NormalClosure, reason = '') {
        down(new LinkClosedError(code, reason));
      },
      halfOpen() {
        half = true;
      },
      get open() {
        return open;
      },
    };
    const link: Link<T, T> = {
      messages$: toClient.asObservable(),
      send(data) {
        if (!open) return Promise.reject(new NotOpenError());
        if (!half) {
          received.push(data);
          toServer.next(data);
        }
        return Promise.resolve();
      },
      close() {
        if (!open) return;
        open = false;
        toClient.complete();
        toServer.complete();
      },
      info: { peerId: peer.id },
    };
    return { link, peer };
  };

  const transport: MemoryTransport<T> = {
    get openAttempts() {
      return openAttempts;
    },
    get peers() {
      return peers;
    },
    get current() {
      return peers[peers.length - 1];
    },
    connections$: connections.asObservable(),
    async open(signal) {
      openAttempts++;
      if (openDelayMs > 0) await delay(openDelayMs, scheduler, signal);
      signal?.throwIfAborted();
      if (refusals > 0) {
        refusals--;
        throw refusalError ?? new ConnectFailedError('connection refused', { syscallCode: 'ECONNREFUSED' });
      }
      const { link, peer } = makeLink();
      peers.push(peer);
      connections.next(peer);
      return link;
    },
    refuseOpens(count = Number.POSITIVE_INFINITY, error) {
      refusals = count;
      refusalError = error;
    },
    acceptOpens() {
      refusals = 0;
    },
    delayOpens(ms) {
      openDelayMs = ms;
    },
    async waitForPeer(id) {
      const existing = peers[id - 1];
      if (existing) return existing;
      return new Promise((resolve) => {
        const sub = connections.subscribe((peer) => {
          if (peer.id === id) {
            sub.unsubscribe();
            resolve(peer);
          }
        });
      });
    },
  };
  return transport;
}

/** Waits `ms` on `scheduler`; an abort ends the wait at once, so a closed connection leaves no timer. */
function delay(ms: number, scheduler: SchedulerLike, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      wait.unsubscribe();
      reject(signal?.reason);
    };
    const wait = timer(ms, scheduler).subscribe(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
