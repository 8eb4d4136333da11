// The core, re-exported, plus what only a browser has: its WebSocket and fetch (read lazily from
// `globalThis`, so importing this module touches no global) and its online/visibility signals.
export * from '@lifeline/core';
// The domain types an application writes beside the drop-ins (the rest is on the core's sub-paths).
export {
  createHAFetch,
  type HAEventSourceErrorEvent,
  type HAEventSourceEventMap,
  type HAEventSourceInit,
  type HAFetchInit,
  type HAFetchOptions,
  type HAResponse,
} from '@lifeline/core/fetch';
// `resume()` is tree-shaken away unless the application imports it: only then does the bundle
// carry the resume protocol.
export { type ResumableOptions, type ResumeSession, resume } from '@lifeline/core/resume';
export {
  type HAWebSocketErrorEvent,
  type HAWebSocketEventMap,
  type HAWebSocketInstance,
  type HAWebSocketOptions,
  type WebSocketTransportOptions,
  webSocketTransport,
} from '@lifeline/core/websocket';
export {
  type BrowserRecoveryOptions,
  type BrowserRecoveryTargets,
  browserRecoveryDefaults,
} from './browser-recovery-defaults.js';
export { type BrowserTransportOptions, browserTransport } from './browser-transport.js';
export { globalWebSocket } from './global-web-socket.js';
export { HAEventSource } from './ha-event-source.js';
export { globalFetch, haFetch } from './ha-fetch.js';
export { HAWebSocket } from './ha-web-socket.js';
export { haWebSocket } from './ha-web-socket-subject.js';
export { type OnlineEventSource, onlineStatus } from './online-status.js';
export { type VisibilityEventSource, visibleTrigger } from './visible-trigger.js';
