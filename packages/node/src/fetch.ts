import { createRequire } from 'node:module';
import {
  type BodyReader,
  createHAFetch as createCoreHAFetch,
  defineHAEventSource,
  type FetchFunction,
  type HAEventSourceConstructor,
  type HAFetch,
  type HAFetchBaseOptions,
} from '@lifeline/core/internal';
import { BodyTap, isCallbackHandler, type TapDispatcher } from './fetch-body-tap.js';
import { requirePeer } from './require-peer.js';

// Loaded through requirePeer so that a missing `undici` fails this import with an error naming it.
const { fetch, Request, Response, getGlobalDispatcher } = requirePeer<typeof import('undici')>(
  'undici',
  '@lifeline/node/fetch',
);

/**
 * The dispatcher an undici `Request` was made with (`new Request(url, { dispatcher })`), which its
 * fetch uses when the call's init names none. undici keeps it private and reads it with an internal
 * helper of its Request module; that helper, when this undici has it, is the only way to wrap the
 * dispatcher fetch would have used. `undefined` when it is missing (another undici layout): a
 * Request is then fetched untapped, with its own dispatcher, as fetch would.
 */
const requestDispatcherOf: ((request: object) => TapDispatcher | undefined) | undefined =
  loadRequestDispatcherOf();

function loadRequestDispatcherOf(): ((request: object) => TapDispatcher | undefined) | undefined {
  try {
    const internal = createRequire(import.meta.url)('undici/lib/web/fetch/request.js') as {
      Request?: unknown;
      getRequestDispatcher?: unknown;
    };
    // The same copy of undici as `fetch` above, or its Requests are not the ones this reads.
    if (internal.Request !== Request || typeof internal.getRequestDispatcher !== 'function') return undefined;
    return internal.getRequestDispatcher as (request: object) => TapDispatcher | undefined;
  } catch {
    return undefined;
  }
}

/** fetch's responses whose body bytes a tap holds (see BodyTap), until claimed or released. */
const taps = new WeakMap<object, BodyTap>();

/**
 * The dispatcher fetch would use for `input` and `init`: the init's, else the Request's own (see
 * requestDispatcherOf), else undici's global one. `undefined` when that cannot be told (a Request,
 * and no way to read its dispatcher): the request is then fetched untapped.
 */
function dispatcherOf(
  input: string | URL | Request,
  init: RequestInit | undefined,
): TapDispatcher | undefined {
  const own = (init as { dispatcher?: TapDispatcher | null } | undefined)?.dispatcher;
  if (own != null) return own;
  if (input instanceof Request) {
    if (requestDispatcherOf === undefined) return undefined;
    const carried = requestDispatcherOf(input);
    if (carried != null) return carried;
  }
  return getGlobalDispatcher() as unknown as TapDispatcher;
}

/**
 * undici's fetch through a dispatcher that taps the body of a 2xx response (see BodyTap). The
 * caller's dispatcher (or undici's global one) still does the work; only the body's way back changes.
 */
async function tappedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const base = dispatcherOf(input, init);
  if (base === undefined) return fetch(input as string, init as never) as unknown as Promise<Response>;
  let tap: BodyTap | undefined;
  const dispatcher: TapDispatcher = {
    dispatch(options, handler) {
      // The tap speaks the callback form undici 7's fetch uses (onHeaders/onData). A fetch that
      // hands its dispatcher another form is passed through untapped, so haFetch reads fetch's
      // own body (the path of every other platform) instead of hanging on a handler it cannot call.
      if (!isCallbackHandler(handler)) {
        tap = undefined;
        return base.dispatch(options, handler);
      }
      // One per request sent: after a redirect, the last one is the response's.
      tap = new BodyTap(handler, options.method);
      return base.dispatch(options, tap.handler);
    },
    get isMockActive() {
      return base.isMockActive;
    },
  };
  const response = (await fetch(
    input as string,
    {
      ...(init as object),
      dispatcher,
    } as never,
  )) as unknown as Response;
  if (tap?.tapping) taps.set(response, tap);
  return response;
}

/** The resumable body's reader of a response of {@link tappedFetch}: its tap, or its body's own reader. */
function readerOf(response: Response): BodyReader {
  const tap = taps.get(response);
  if (tap === undefined) return (response.body as ReadableStream<Uint8Array>).getReader();
  taps.delete(response);
  return tap.claim(response);
}

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
  const shared = {
    // undici's types are its own copy of the fetch types; the shapes are the same.
    Request: Request as unknown as typeof globalThis.Request,
    Response: Response as unknown as typeof globalThis.Response,
  };
  if (options.fetch !== undefined) return createCoreHAFetch({ ...shared, ...options, fetch: options.fetch });
  // undici's own fetch: the resumable body reads the bytes from undici's dispatcher, so that a chunk
  // passes through one web stream (the caller's body) instead of fetch's body and then ours.
  const haFetch = createCoreHAFetch({ ...shared, ...options, fetch: tappedFetch }, { readerOf });
  return async (input, init) => {
    const response = await haFetch(input, init);
    // Returned untouched (not resumable): its bytes go to fetch's own body after all.
    taps.get(response)?.release();
    return response;
  };
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
