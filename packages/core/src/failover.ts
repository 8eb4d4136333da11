import { defer, type Observable, tap } from 'rxjs';
import type { Link, Transport } from './link.js';

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

/**
 * A transport that opens each link on the next endpoint, preferring the last one that worked.
 * With a function as the source, the function is asked before every open (a load balancer or
 * service discovery decides).
 */
export function failoverTransport<E, In, Out>(
  endpoints: EndpointSource<E>,
  transportFor: (endpoint: E) => Transport<In, Out>,
): Transport<In, Out> & { readonly lastGood: E | undefined } {
  let lastGood: E | undefined;
  const rotation = Array.isArray(endpoints) ? new EndpointRotation(endpoints as readonly E[]) : undefined;
  return {
    get lastGood() {
      return lastGood;
    },
    async open(signal?: AbortSignal): Promise<Link<In, Out>> {
      let endpoint: E;
      let index = -1;
      if (rotation) {
        index = rotation.next();
        endpoint = (endpoints as readonly E[])[index]!;
      } else {
        endpoint = await (endpoints as () => E | Promise<E>)();
      }
      const link = await transportFor(endpoint).open(signal);
      lastGood = endpoint;
      if (rotation) rotation.markGood(index);
      return link;
    },
  };
}

/**
 * The rotation order: the first call returns the preferred (last good) endpoint; each further
 * call before a success moves on to the next one, wrapping around.
 */
export class EndpointRotation {
  private preferred = 0;
  private tried = 0;
  constructor(private readonly endpoints: readonly unknown[]) {
    if (endpoints.length === 0) throw new RangeError('failover needs at least one endpoint');
  }
  next(): number {
    const index = (this.preferred + this.tried) % this.endpoints.length;
    this.tried++;
    return index;
  }
  markGood(index: number): void {
    this.preferred = index;
    this.tried = 0;
  }
}
