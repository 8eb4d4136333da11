// `@lifeline/core/resume`: the client half of the resume protocol (docs/protocol.md): `resumable()`
// wraps any transport in a session with exactly-once, in-order delivery across reconnects, and
// `resume()` is the same protocol as the `resume` option of `HAWebSocket` and `haWebSocket()`.
export * from './client/client-session-store.js';
export * from './client/resumable-transport.js';
export * from './client/resume.js';
export {
  DEFAULT_MAX_REPLAY_BYTES,
  DEFAULT_MAX_REPLAY_MESSAGES,
  DEFAULT_MAX_WAITING_BYTES,
  DEFAULT_MAX_WAITING_MESSAGES,
  DEFAULT_WINDOW_FULL_POLICY,
  type ReplayWindowOptions,
  type WindowFullPolicy,
} from './endpoint/replay-buffer.js';
export {
  DEFAULT_ACK_DELAY_MS,
  DEFAULT_ACK_EVERY,
  DEFAULT_MAX_UNREAD_BYTES,
  DEFAULT_MAX_UNREAD_MESSAGES,
  type SessionEndpointOptions,
} from './endpoint/session-endpoint.js';
export { DEFAULT_MAX_FRAME_BYTES, RESUME_PROTOCOL_VERSION } from './wire/resume-frame.js';
