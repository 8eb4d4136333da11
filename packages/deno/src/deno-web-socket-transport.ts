import {
  type LinkData,
  type Transport,
  type WebSocketOpenOptions,
  type WebSocketTransportOptions,
  webSocketTransport,
} from '@lifeline/core/internal';
import { denoWebSocketCapabilities } from './deno-web-socket-capabilities.js';
import { globalWebSocket } from './global-web-socket.js';

/** Options of {@link denoWebSocketTransport}: the core transport's, without the URL and constructor. */
export interface DenoWebSocketTransportOptions extends WebSocketOpenOptions {}

/**
 * A WebSocket transport on Deno's own `WebSocket`. Binary messages arrive as `ArrayBuffer`s.
 *
 * @example
 * ```ts
 * import { attach, denoWebSocketTransport } from '@lifeline/deno';
 * const conn = attach(denoWebSocketTransport('ws://127.0.0.1:8080/feed'), { maxAttemptsPerFailure: 20 });
 * conn.messages$.subscribe((message) => console.log(message));
 * ```
 * @see HAWebSocket for the WebSocket-shaped drop-in.
 */
export function denoWebSocketTransport(
  url: WebSocketTransportOptions['url'],
  options: DenoWebSocketTransportOptions = {},
): Transport<LinkData, LinkData> {
  return webSocketTransport({ ...denoWebSocketCapabilities, ...options, url, WebSocket: globalWebSocket });
}
