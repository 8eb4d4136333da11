import type { WebSocketConstructor, WebSocketLike } from '@lifeline/core/internal';

/**
 * A WebSocket constructor that looks up `globalThis.WebSocket` each time it is called, not when
 * this module is imported: importing the package in a runtime without WebSocket (a server-side
 * render, a test runner) must not throw, and a WebSocket replaced after import (a test double,
 * a polyfill) is the one used.
 *
 * @example
 * ```ts
 * const transport = webSocketTransport({ url, WebSocket: globalWebSocket });
 * ```
 * @see browserTransport
 */
export const globalWebSocket: WebSocketConstructor = function GlobalWebSocket(
  url: string,
  protocols?: string | string[],
): WebSocketLike {
  const WebSocket = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (WebSocket === undefined) throw new TypeError('globalThis.WebSocket is not available in this runtime');
  // Returning an object from a function called with `new` makes that object the result. The
  // platform's WebSocket takes `undefined` protocols as none given (WebIDL: an optional argument
  // passed as undefined is missing), so no second call form for it.
  return new WebSocket(url, protocols);
} as unknown as WebSocketConstructor;
