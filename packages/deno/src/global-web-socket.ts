import type { WebSocketConstructor, WebSocketLike } from '@lifeline/core/internal';

/**
 * A WebSocket constructor that looks up `globalThis.WebSocket` each time it is called, not when
 * this module is imported, so the package can be imported (bundled, type-checked) anywhere and a
 * WebSocket replaced after import is the one used.
 *
 * @example
 * ```ts
 * const transport = webSocketTransport({ url, WebSocket: globalWebSocket });
 * ```
 * @see denoWebSocketTransport
 */
export const globalWebSocket: WebSocketConstructor = function GlobalWebSocket(
  url: string,
  protocols?: string | string[],
): WebSocketLike {
  const WebSocket = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (WebSocket === undefined) throw new TypeError('globalThis.WebSocket is not available in this runtime');
  // Returning an object from a function called with `new` makes that object the result.
  return protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
} as unknown as WebSocketConstructor;
