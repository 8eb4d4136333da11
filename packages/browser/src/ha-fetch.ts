import { createHAFetch, type FetchFunction, type HAFetch } from '@lifeline/core/internal';
import { browserRecoveryDefaults } from './browser-recovery-defaults.js';

/**
 * The page's `fetch`, looked up at each call rather than at import (a fetch patched or replaced
 * after import, by a service-worker shim or a test, is the one used).
 *
 * @example
 * ```ts
 * const haFetch = createHAFetch({ fetch: globalFetch, maxAttemptsPerFailure: 20 });
 * ```
 * @see haFetch
 */
export const globalFetch: FetchFunction = (input, init) => globalThis.fetch(input, init);

/**
 * fetch, highly available: same signature, and the response body survives mid-stream failures
 * (bytes resume with `Range` under a strong `ETag`, event streams with `Last-Event-ID`). Recovery
 * waits while the browser is offline and starts at once when it is back
 * ({@link browserRecoveryDefaults}). Build one with other defaults with
 * `createHAFetch({ fetch: globalFetch, ...browserRecoveryDefaults(), ...yours })`.
 *
 * @example
 * ```ts
 * import { haFetch } from '@lifeline/browser';
 * const response = await haFetch('/downloads/big.bin');
 * const bytes = await response.arrayBuffer(); // one unbroken body, however often the link broke
 * console.log(response.lifeline.resumes);
 * ```
 * @see createHAFetch
 */
export const haFetch: HAFetch = (input, init) => {
  // Built at the first call, not at import: a top-level call would be kept by bundlers in every
  // app that imports this package, and would carry the whole fetch-resume code into bundles
  // that never fetch.
  defaultHAFetch ??= createHAFetch({ fetch: globalFetch, ...browserRecoveryDefaults() });
  return defaultHAFetch(input, init);
};
let defaultHAFetch: HAFetch | undefined;
