// `@lifeline/core`: the names an application writes. Each domain has its own sub-path with the
// rest of its surface (`/websocket`, `/fetch`, `/tcp`, `/resume`, `/resume/server`, `/testing`);
// the platform packages build on `/internal`, which is not a public API. Any change to this list
// shows in review through test/exports.test.ts and its snapshot.

// Diagnostics: a logger, Node's diagnostics_channel, a metrics hook (docs/diagnostics.md).
export { consoleLogger, enableDiagnostics, type LogSink } from './diagnostics/connection-diagnostics.js';
export {
  DIAGNOSTIC_CHANNELS,
  type DiagnosticsOptions,
  type LogFields,
  type Logger,
  type LogLevel,
  type MetricAttributes,
  type Metrics,
} from './diagnostics/diagnostics.js';
// Engine: one HA connection, its state, and the link contract a transport implements.
export {
  type AttachHeartbeatOptions,
  type AttachOptions,
  attach,
  type ConnectionEvent,
  type HAConnection,
  type RecoverFunction,
  type RecoveryContext,
  type SendOptions,
} from './engine/attach.js';
export type { CloseReason, ConnectionState, ConnectionStatus } from './engine/connection-state.js';
// Errors: every failure Lifeline reports, branded by `code` (see `hasErrorCode`).
export {
  BackpressureError,
  ClientSessionLockedError,
  ClientSessionStoreError,
  ClosedByUserError,
  ConnectFailedError,
  DetachedError,
  EntityChangedError,
  FrameTooLargeError,
  GoAwayError,
  HeartbeatTimeoutError,
  HttpStatusError,
  hasErrorCode,
  InvalidMessageError,
  InvalidOptionError,
  LifelineError,
  type LifelineErrorCode,
  LinkClosedError,
  LinkFailedError,
  MalformedFrameError,
  MissingPeerDependencyError,
  NotOpenError,
  ProtocolError,
  QueueOverflowError,
  RangeMismatchError,
  RangeNotSupportedError,
  ReplayWindowFullError,
  SendWithdrawnError,
  SessionLostError,
  type SessionLostReason,
  type SessionRejectCode,
  SessionRejectedError,
  SessionStoreError,
  StaleOwnerError,
  type UnacknowledgedMessage,
} from './engine/errors.js';
export type { Link, LinkData, Transport } from './engine/link.js';
export type { OverflowPolicy, QueueOptions } from './engine/outgoing-queue.js';

// RxJS operators, for composing recovery by hand.
export { type BackoffOperatorOptions, backoff } from './operators/backoff.js';
export {
  type EndpointSource,
  type FailoverTransportOptions,
  failover,
  failoverTransport,
} from './operators/failover.js';
export { type HeartbeatOptions, heartbeat } from './operators/heartbeat.js';
export { type RecoverWithOptions, recoverWith } from './operators/recover-with.js';
// Recovery policy: what is retried, and how long to wait.
export type { BackoffOptions } from './policy/backoff-delay.js';
export { type ErrorClassifier, isRecoverable } from './policy/classify.js';
export { CloseCode } from './policy/close-codes.js';
export type { RetryAfterOptions } from './policy/retry-hint.js';
