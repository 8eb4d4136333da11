import { defineHAWebSocket, type HAWebSocketConstructor, resumable } from '@lifeline/core/internal';
import { denoWebSocketCapabilities } from './deno-web-socket-capabilities.js';
import { globalWebSocket } from './global-web-socket.js';

/**
 * Deno's WebSocket drop-in: the WebSocket interface, recovering beneath it, on Deno's own
 * `WebSocket` (read at each open). Binary messages arrive as `Blob`s, as with Deno's WebSocket;
 * set `binaryType = 'arraybuffer'` for ArrayBuffers.
 *
 * @example
 * ```ts
 * import { HAWebSocket } from '@lifeline/deno';
 * const socket = new HAWebSocket('ws://127.0.0.1:8080/feed', undefined, { maxAttemptsPerFailure: 20 });
 * socket.onmessage = (event) => console.log(event.data);
 * ```
 * @see denoWebSocketTransport for the transport beneath it, to use with `attach`.
 */
export const HAWebSocket: HAWebSocketConstructor = /* @__PURE__ */ defineHAWebSocket({
  ...denoWebSocketCapabilities,
  WebSocket: globalWebSocket,
  defaultBinaryType: 'blob',
  resumable,
});
