import { defer, type Observable, type SchedulerLike, tap } from 'rxjs';
import type { Link, Transport } from '../engine/link.js';
import { durationMs } from '../engine/options.js';
import { resolveWithin } from './endpoint-provider.js';

/** Where to connect: a fixed list, or a function asked before every attempt (service discovery). */
export type EndpointSource<E> = readonly E[] | (() => E | Promise<E>);

/**
 * Rotates through endpoints, one per (re)subscription, starting again from the last endpoint that
 * worked. Combine with {@link recoverWith} so each attempt tries the next endpoint.
 *
 * @example
 * ```ts
 * failover(['wss://a.example/feed', 'wss://b.example/feed'], (url) => feedFrom(url)).pipe(recoverWith())
 * ```
 */
export function failover<E, T>(
  endpoints: readonly E[],
  factory: (endpoint: E, index: number) => Observable<T>,
): Observable<T> {
  const rotation = new EndpointRotation(endpoints);
  return defer(() => {
    const index = rotation.next();
    let worked = false;
    return factory(endpoints[index]!, index).pipe(
      tap(() => {
        if (worked) return;
        worked = true;
        rotation.markGood(index);
      }),
    );
  });
}

/** Options of {@link failoverTransport}. */
export interface FailoverTransportOptions {
  /**
   * With a function as the source: how long it may take to name an endpoint, in ms. Its time
   * counts toward the attempt: `transportFor` is told what is left (`remainingMs`). One that does
   * not answer in time, or throws, fails the attempt recoverably ({@link ConnectFailedError}).
   * From 1 to 2^31 - 1.
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /** Times the endpoint function (a `TestScheduler` in marble tests). @default monotonicScheduler */
  scheduler?: SchedulerLike;
}

/**
 * A transport that opens each link on the next endpoint, preferring the last one that worked.
 * With a function as the source, the function is asked before every open (a load balancer or
 * service discovery decides), within `options.connectTimeoutMs`.
 */
export function failoverTransport<E, In, Out>(
  endpoints: EndpointSource<E>,
  transportFor: (endpoint: E, attempt: { readonly remainingMs: number | undefined }) => Transport<In, Out>,
  options: FailoverTransportOptions = {},
): Transport<In, Out> & { readonly lastGood: E | undefined } {
  const timeoutMs = durationMs('connectTimeoutMs', options.connectTimeoutMs, { min: 1 }) ?? 10_000;
  let lastGood: E | undefined;
  const rotation = Array.isArray(endpoints) ? new EndpointRotation(endpoints as readonly E[]) : undefined;
  return {
    get lastGood() {
      return lastGood;
    },
    async open(signal?: AbortSignal): Promise<Link<In, Out>> {
      let endpoint: E;
      let index = -1;
      let remainingMs: number | undefined;
      if (rotation) {
        index = rotation.next();
        endpoint = (endpoints as readonly E[])[index]!;
      } else {
        const provider = endpoints as () => E | Promise<E>;
        const resolved = await resolveWithin(
          provider,
          timeoutMs,
          signal,
          'the endpoints function',
          options.scheduler,
        );
        endpoint = resolved.value;
        remainingMs = Math.max(1, timeoutMs - resolved.elapsedMs);
      }
      const link = await transportFor(endpoint, { remainingMs }).open(signal);
      lastGood = endpoint;
      if (rotation) rotation.markGood(index);
      return link;
    },
    redirect(url: string | undefined): void {
      if (!rotation) return;
      const list = endpoints as readonly E[];
      const named = url === undefined ? -1 : list.findIndex((endpoint) => String(endpoint) === url);
      // The named endpoint if we know it, else at least not the one that is going away.
      rotation.markGood(named >= 0 ? named : rotation.following());
    },
  };
}

/**
 * The rotation order: the first call returns the preferred (last good) endpoint; each further
 * call before a success moves on to the next one, wrapping around.
 */
export class EndpointRotation {
  private preferred_ = 0;
  private tried_ = 0;
  constructor(private readonly endpoints_: readonly unknown[]) {
    if (endpoints_.length === 0) throw new RangeError('failover needs at least one endpoint');
  }
  next(): number {
    const index = (this.preferred_ + this.tried_) % this.endpoints_.length;
    this.tried_++;
    return index;
  }
  markGood(index: number): void {
    this.preferred_ = index;
    this.tried_ = 0;
  }
  /** The endpoint after the preferred one. */
  following(): number {
    return (this.preferred_ + 1) % this.endpoints_.length;
  }
}
