// The core, re-exported, plus what only Deno has: its WebSocket and fetch (read lazily from
// `globalThis`) and TCP through `Deno.connect` (injectable; the global is read only when connecting).
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
export { type ResumableOptions, type ResumeSession, resume } from '@lifeline/core/resume';
export {
  type HAWebSocketErrorEvent,
  type HAWebSocketEventMap,
  type HAWebSocketInstance,
  type HAWebSocketOptions,
  type WebSocketTransportOptions,
  webSocketTransport,
} from '@lifeline/core/websocket';
export { type ConnectTcpOptions, connectTcp } from './connect-tcp.js';
export { type DenoConnect, type DenoConnectOptions, type DenoConnLike, denoConnect } from './deno-connect.js';
export { denoWebSocketCapabilities } from './deno-web-socket-capabilities.js';
export { type DenoWebSocketTransportOptions, denoWebSocketTransport } from './deno-web-socket-transport.js';
export { globalWebSocket } from './global-web-socket.js';
export { HAEventSource } from './ha-event-source.js';
export { globalFetch, haFetch } from './ha-fetch.js';
export { HAWebSocket } from './ha-web-socket.js';
export { haWebSocket } from './ha-web-socket-subject.js';
// The TCP link and byte stream under connectTcp and tcpTransport are on `@lifeline/deno/tcp`.
export type { TcpMode } from './tcp-link.js';
export {
  DEFAULT_TCP_CONNECT_TIMEOUT_MS,
  DEFAULT_TCP_HOST,
  DEFAULT_TCP_MODE,
  DEFAULT_TCP_NO_DELAY,
  type TcpTransportOptions,
  tcpTransport,
} from './tcp-transport.js';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics, enableSharedHeartbeats } from '@lifeline/core/internal';

enableDiagnostics();
// Resumed sessions ping by default (and TCP links when asked): one heartbeat timer for all, not one each.
enableSharedHeartbeats();
