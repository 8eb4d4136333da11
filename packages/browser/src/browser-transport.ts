import {
  type LinkData,
  type Transport,
  type WebSocketOpenOptions,
  type WebSocketTransportOptions,
  webSocketTransport,
} from '@lifeline/core/internal';
import { globalWebSocket } from './global-web-socket.js';

/** Options of {@link browserTransport}: the core transport's, without the URL and constructor. */
export interface BrowserTransportOptions extends WebSocketOpenOptions {}

/**
 * A WebSocket transport on the browser's own `WebSocket` (read when a link opens). Binary
 * messages arrive as `ArrayBuffer`s.
 *
 * @example
 * ```ts
 * import { attach, browserTransport, browserRecoveryDefaults } from '@lifeline/browser';
 * const conn = attach(browserTransport('wss://example.com/feed'), browserRecoveryDefaults());
 * conn.messages$.subscribe((message) => console.log(message));
 * ```
 * @see HAWebSocket for the WebSocket-shaped drop-in.
 */
export function browserTransport(
  url: WebSocketTransportOptions['url'],
  options: BrowserTransportOptions = {},
): Transport<LinkData, LinkData> {
  return webSocketTransport({ ...options, url, WebSocket: globalWebSocket });
}
