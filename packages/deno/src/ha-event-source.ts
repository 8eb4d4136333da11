import { defineHAEventSource, type HAEventSourceConstructor } from '@lifeline/core/internal';
import { globalFetch } from './ha-fetch.js';

/**
 * The `EventSource` drop-in on Deno's own fetch: the EventSource interface, plus request headers
 * (a function gives fresh ones per attempt), recovery from HTTP errors such as 503 (with
 * `Retry-After`), backoff and budgets.
 *
 * @example
 * ```ts
 * import { HAEventSource } from '@lifeline/deno';
 * const source = new HAEventSource('http://127.0.0.1:8080/feed');
 * source.addEventListener('tick', (event) => console.log(event.lastEventId, event.data));
 * ```
 * @see defineHAEventSource, and docs/fetch.md
 */
export const HAEventSource: HAEventSourceConstructor = /* @__PURE__ */ defineHAEventSource({
  fetch: globalFetch,
});
