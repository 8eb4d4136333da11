import { createHAFetch, type FetchFunction, type HAFetch } from '@lifeline/core/internal';

/**
 * Deno's `fetch`, looked up at each call rather than at import (a fetch replaced after import,
 * by a test, is the one used).
 *
 * @example
 * ```ts
 * const haFetch = createHAFetch({ fetch: globalFetch, maxAttemptsPerFailure: 20 });
 * ```
 * @see haFetch
 */
export const globalFetch: FetchFunction = (input, init) => globalThis.fetch(input, init);

/**
 * fetch, highly available, on Deno's own fetch: same signature, and the response body survives
 * mid-stream failures (bytes resume with `Range` under a strong `ETag`, event streams with
 * `Last-Event-ID`). Build one with other defaults with `createHAFetch({ fetch: globalFetch, ... })`.
 *
 * @example
 * ```ts
 * import { haFetch } from '@lifeline/deno';
 * const response = await haFetch('http://127.0.0.1:8080/big.bin');
 * await response.body!.pipeTo((await Deno.create('big.bin')).writable);
 * ```
 * @see createHAFetch
 */
export const haFetch: HAFetch = /* @__PURE__ */ createHAFetch({ fetch: globalFetch });
