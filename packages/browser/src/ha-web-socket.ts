import {
  defineHAWebSocket,
  type HAWebSocketConstructor,
  type HAWebSocketOptions,
} from '@lifeline/core/internal';
import { browserRecoveryDefaults } from './browser-recovery-defaults.js';
import { globalWebSocket } from './global-web-socket.js';

const Base = /* @__PURE__ */ defineHAWebSocket({ WebSocket: globalWebSocket, defaultBinaryType: 'blob' });

/**
 * The browser's WebSocket drop-in: the WebSocket interface, recovering beneath it. It opens
 * links with the page's own `WebSocket` (read at each open), waits while the browser is offline
 * and reconnects as soon as it is back online or the tab becomes visible
 * ({@link browserRecoveryDefaults}); pass `online: undefined` or `trigger: undefined` in the
 * options to turn either off. Binary messages arrive as `Blob`s, as with WebSocket.
 *
 * @example
 * ```ts
 * import { HAWebSocket } from '@lifeline/browser';
 * const socket = new HAWebSocket('wss://example.com/feed', undefined, { maxAttemptsPerFailure: 20 });
 * socket.onmessage = (event) => render(event.data);
 * socket.onrecovering = () => showBanner('reconnecting');
 * ```
 * @see browserTransport for the transport beneath it, to use with `attach`.
 */
export const HAWebSocket: HAWebSocketConstructor = /* @__PURE__ */ (() =>
  class HAWebSocket extends Base {
    constructor(url: string | URL, protocols?: string | string[], options: HAWebSocketOptions = {}) {
      super(url, protocols, { ...browserRecoveryDefaults(), ...options });
    }
  })();
