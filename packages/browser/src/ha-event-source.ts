import { defineHAEventSource, type HAEventSourceConstructor } from '@lifeline/core/internal';
import { browserRecoveryDefaults } from './browser-recovery-defaults.js';
import { globalFetch } from './ha-fetch.js';

/**
 * The browser's `EventSource` drop-in: the EventSource interface on the page's `fetch` (read at
 * each request), with what EventSource lacks: request headers (a function gives fresh ones per
 * attempt), recovery from HTTP errors such as 503 (with `Retry-After`), backoff and budgets.
 * Recovery waits while the browser is offline and starts at once when it is back or the tab is
 * visible ({@link browserRecoveryDefaults}).
 *
 * @example
 * ```ts
 * import { HAEventSource } from '@lifeline/browser';
 * const source = new HAEventSource('/feed', { headers: async () => ({ authorization: `Bearer ${await token()}` }) });
 * source.onmessage = (event) => render(event.data, event.lastEventId);
 * ```
 * @see defineHAEventSource, and docs/fetch.md
 */
export const HAEventSource: HAEventSourceConstructor = /* @__PURE__ */ defineHAEventSource({
  fetch: globalFetch,
  defaults: () => browserRecoveryDefaults(),
});
