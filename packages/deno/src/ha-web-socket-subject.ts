import { defineHaWebSocket, type HaWebSocketFactory, resume } from '@lifeline/core/internal';
import { denoWebSocketCapabilities } from './deno-web-socket-capabilities.js';
import { globalWebSocket } from './global-web-socket.js';

/**
 * A drop-in for RxJS's `webSocket()` on Deno's `WebSocket` (read at each open): the
 * `WebSocketSubject` interface (`next`, `error`, `complete`, `subscribe`, `multiplex`) and config
 * fields, recovering beneath the subscribers, with `resume: resume()` for exactly-once delivery
 * against a resume server. See docs/websocket.md, "Coming from RxJS".
 *
 * @example
 * ```ts
 * import { haWebSocket } from '@lifeline/deno';
 * const subject = haWebSocket<{ type: string }>('ws://127.0.0.1:8080/feed');
 * subject.subscribe((message) => console.log(message.type));
 * ```
 * @see https://rxjs.dev/api/webSocket/webSocket
 */
export const haWebSocket: HaWebSocketFactory = /* @__PURE__ */ defineHaWebSocket({
  ...denoWebSocketCapabilities,
  WebSocket: globalWebSocket,
  defaultBinaryType: 'blob',
  resume,
});
