import {
  defineHAWebSocket,
  type HAWebSocketConstructor,
  type ResumeOption,
  resume,
  type WebSocketLike,
} from '@lifeline/core/internal';
import { denoWebSocketCapabilities } from './deno-web-socket-capabilities.js';
import { globalWebSocket } from './global-web-socket.js';

/**
 * Deno's WebSocket drop-in: the WebSocket interface, recovering beneath it, on Deno's own
 * `WebSocket` (read at each open). Binary messages arrive as `Blob`s, as with Deno's WebSocket;
 * set `binaryType = 'arraybuffer'` for ArrayBuffers. An instance is a `WebSocket` to TypeScript.
 * `resume: resume()` (or `resume: true`) for exactly-once delivery against a resume server.
 *
 * @example
 * ```ts
 * import { HAWebSocket } from '@lifeline/deno';
 * const socket = new HAWebSocket('ws://127.0.0.1:8080/feed', { maxAttemptsPerFailure: 20 });
 * socket.onmessage = (event) => console.log(event.data);
 * ```
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/deno';
 * const socket = new HAWebSocket('ws://127.0.0.1:8080/session', { resume: resume() });
 * socket.session?.events$.subscribe((event) => console.log(event.type)); // new, resumed, lost
 * ```
 * @see denoWebSocketTransport for the transport beneath it, to use with `attach`.
 */
export const HAWebSocket: HAWebSocketConstructor<ResumeOption, BinaryType> =
  /* @__PURE__ */ defineHAWebSocket<WebSocketLike, ResumeOption, BinaryType>({
    ...denoWebSocketCapabilities,
    WebSocket: globalWebSocket,
    defaultBinaryType: 'blob',
    resume,
  });
