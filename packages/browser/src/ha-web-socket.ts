import {
  defineHAWebSocket,
  type HAWebSocketConstructor,
  type ResumeProtocol,
  type WebSocketLike,
} from '@lifeline/core/internal';
import { browserRecoveryDefaults } from './browser-recovery-defaults.js';
import { globalWebSocket } from './global-web-socket.js';

/**
 * The browser's WebSocket drop-in: the WebSocket interface, recovering beneath it. It opens
 * links with the page's own `WebSocket` (read at each open), waits while the browser is offline
 * and reconnects as soon as it is back online or the tab becomes visible
 * ({@link browserRecoveryDefaults}); pass `online: undefined` or `trigger: undefined` in the
 * options to turn either off. Binary messages arrive as `Blob`s, as with WebSocket. An instance
 * is a `WebSocket` to TypeScript (DOM lib): pass it wherever one is expected.
 *
 * For exactly-once delivery across reconnects, pass `resume: resume()` (the import brings the
 * protocol into the bundle; `resume: true` is not accepted here); `socket.session` is then the
 * session's handle.
 *
 * @example
 * ```ts
 * import { HAWebSocket } from '@lifeline/browser';
 * const socket = new HAWebSocket('wss://example.com/feed', { maxAttemptsPerFailure: 20 });
 * socket.onmessage = (event) => render(event.data);
 * socket.onrecovering = (event) => showBanner(`reconnecting: attempt ${event.detail.attempt}`);
 * ```
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/browser';
 * const socket = new HAWebSocket('wss://example.com/session', { resume: resume() });
 * socket.onrecovered = () => console.log(`session ${socket.session?.id}: ${socket.session?.stats.resumes} resumes`);
 * ```
 * @see browserTransport for the transport beneath it, to use with `attach`.
 */
export const HAWebSocket: HAWebSocketConstructor<ResumeProtocol | false, BinaryType> =
  /* @__PURE__ */ defineHAWebSocket<WebSocketLike, ResumeProtocol | false, BinaryType>(
    { WebSocket: globalWebSocket, defaultBinaryType: 'blob' },
    browserRecoveryDefaults,
  );
