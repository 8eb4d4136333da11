import {
  defineHaWebSocket,
  type HaWebSocketFactory,
  type ResumeProtocol,
  type WebSocketLike,
} from '@lifeline/core/internal';
import { browserRecoveryDefaults } from './browser-recovery-defaults.js';
import { globalWebSocket } from './global-web-socket.js';

/**
 * A drop-in for RxJS's `webSocket()` in the browser: the `WebSocketSubject` interface (`next`,
 * `error`, `complete`, `subscribe`, `multiplex`) and config fields, recovering beneath the
 * subscribers on the page's own `WebSocket` (read at each open). Like `HAWebSocket`, it waits
 * while the browser is offline and reconnects when it is back online or the tab becomes visible
 * ({@link browserRecoveryDefaults}); pass `online: undefined` or `trigger: undefined` to turn
 * either off; `resume: resume()` for exactly-once delivery against a resume server. See
 * docs/websocket.md, "Coming from RxJS".
 *
 * @example
 * ```ts
 * import { haWebSocket } from '@lifeline/browser';
 * const prices = haWebSocket<{ symbol: string; price: number }>('wss://example.com/feed');
 * prices.multiplex(() => ({ sub: 'EUR' }), () => ({ unsub: 'EUR' }), (m) => m.symbol === 'EUR').subscribe(render);
 * ```
 * @see https://rxjs.dev/api/webSocket/webSocket
 */
export const haWebSocket: HaWebSocketFactory<ResumeProtocol | false> = /* @__PURE__ */ defineHaWebSocket<
  WebSocketLike,
  ResumeProtocol | false
>({ WebSocket: globalWebSocket, defaultBinaryType: 'blob' }, browserRecoveryDefaults);
