import {
  createHAFetch as createCoreHAFetch,
  defineHAEventSource,
  type FetchFunction,
  type HAEventSourceConstructor,
  type HAFetch,
  type HAFetchBaseOptions,
} from '@lifeline/core/internal';
import { requirePeer } from './require-peer.js';

// Loaded through requirePeer so that a missing `undici` fails this import with an error naming it.
const { fetch, Request, Response } = requirePeer<typeof import('undici')>('undici', '@lifeline/node/fetch');

export type {
  FetchFunction,
  HAEventSourceConstructor,
  HAEventSourceErrorEvent,
  HAEventSourceEventMap,
  HAEventSourceHeaders,
  HAEventSourceInit,
  HAEventSourceInstance,
  HAFetch,
  HAFetchBaseOptions,
  HAFetchEvent,
  HAFetchInfo,
  HAFetchInit,
  HAFetchOptions,
  HAFetchRequestOptions,
  HAResponse,
  NdjsonCursor,
  ResumeMode,
} from '@lifeline/core/internal';

/** Options of the Node {@link createHAFetch}: those of core's, with undici's fetch as the default. */
export interface NodeHAFetchOptions extends HAFetchBaseOptions {
  /** The fetch to make highly available. @default undici's `fetch` */
  fetch?: FetchFunction;
}

/**
 * `createHAFetch` bound to undici: its `fetch`, and its `Request` and `Response` classes, so
 * re-requests and wrapped responses are the ones undici's fetch accepts and returns.
 *
 * @example
 * ```ts
 * import { createHAFetch } from '@lifeline/node/fetch';
 * const haFetch = createHAFetch({ maxAttemptsPerFailure: 5, backoff: { initialDelayMs: 100 } });
 * ```
 * @see createHAFetch in `@lifeline/core`, and docs/fetch.md
 */
export function createHAFetch(options: NodeHAFetchOptions = {}): HAFetch {
  return createCoreHAFetch({
    // undici's types are its own copy of the fetch types; the shapes are the same.
    fetch: fetch as unknown as FetchFunction,
    Request: Request as unknown as typeof globalThis.Request,
    Response: Response as unknown as typeof globalThis.Response,
    ...options,
  });
}

/**
 * undici's `fetch`, highly available with the default policy: the response body survives
 * mid-stream failures (see docs/fetch.md).
 *
 * @example
 * ```ts
 * import { haFetch } from '@lifeline/node/fetch';
 * const response = await haFetch('http://127.0.0.1:8080/big.bin');
 * const bytes = await response.arrayBuffer(); // whole, even if the connection broke
 * ```
 */
export const haFetch: HAFetch = /* @__PURE__ */ createHAFetch();

/**
 * The `EventSource` drop-in on undici's fetch (Node has no EventSource of its own without a
 * flag): the EventSource interface, plus request headers (a function gives fresh ones per
 * attempt), recovery from HTTP errors such as 503 (with `Retry-After`), backoff and budgets.
 *
 * @example
 * ```ts
 * import { HAEventSource } from '@lifeline/node/fetch';
 * const source = new HAEventSource('http://127.0.0.1:8080/feed', { headers: { authorization: 'Bearer t' } });
 * source.onmessage = (event) => console.log(event.lastEventId, event.data);
 * ```
 * @see defineHAEventSource in `@lifeline/core`, and docs/fetch.md
 */
export const HAEventSource: HAEventSourceConstructor = /* @__PURE__ */ defineHAEventSource({
  fetch: fetch as unknown as FetchFunction,
  Request: Request as unknown as typeof globalThis.Request,
  Response: Response as unknown as typeof globalThis.Response,
});

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics } from '@lifeline/core/internal';

enableDiagnostics();
