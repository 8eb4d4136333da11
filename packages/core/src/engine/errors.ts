/**
 * Typed errors. Every error Lifeline raises is a {@link LifelineError} with a string `code` and,
 * where there is one, the underlying `cause`.
 *
 * The classes are branded by code and answer `instanceof` through `Symbol.hasInstance`, so a
 * check holds even when two copies of `@lifeline/core` are loaded (ESM and CJS builds, two
 * versions, a bundle and a dependency's bundle), where plain prototype checks would fail.
 */

/** Carried by every Lifeline error, whatever copy of this module made it (`Symbol.for` is global). */
const BRAND = Symbol.for('lifeline.error');
/**
 * Each class's prototype declares one getter named `lifeline.error.<code>` that returns the class's
 * name. A string key rather than a `Symbol.for` one: a class with a computed key is one a bundler
 * must keep even when unused (esbuild cannot prove `Symbol.for()` pure), and the browser bundle
 * would carry every error class (+0.86 KiB gzipped, measured).
 */
const CODE_BRAND_PREFIX = 'lifeline.error.';

// The classes' fields are `declare`d and set by their constructors, every one on every path and in
// the order declared: the same own properties as field declarations, which would cost their
// names a second time in every bundle (issue 13; GoAwayError keeps its fields, one has a value).

/** Every error code Lifeline raises. */
export type LifelineErrorCode =
  | 'ERR_LINK_CLOSED'
  | 'ERR_LINK_FAILED'
  | 'ERR_GOAWAY'
  | 'ERR_CONNECT_FAILED'
  | 'ERR_HTTP_STATUS'
  | 'ERR_HEARTBEAT_TIMEOUT'
  | 'ERR_CLOSED_BY_USER'
  | 'ERR_DETACHED'
  | 'ERR_QUEUE_OVERFLOW'
  | 'ERR_NOT_OPEN'
  | 'ERR_SEND_WITHDRAWN'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_MALFORMED_FRAME'
  | 'ERR_RANGE_NOT_SUPPORTED'
  | 'ERR_ENTITY_CHANGED'
  | 'ERR_RANGE_MISMATCH'
  | 'ERR_NOT_IDEMPOTENT'
  | 'ERR_PROTOCOL'
  | 'ERR_SESSION_REJECTED'
  | 'ERR_SESSION_LOST'
  | 'ERR_REPLAY_WINDOW_FULL'
  | 'ERR_BACKPRESSURE'
  | 'ERR_STORE'
  | 'ERR_FENCED'
  | 'ERR_CLIENT_STORE'
  | 'ERR_SESSION_LOCKED'
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_MESSAGE'
  | 'ERR_MISSING_PEER_DEPENDENCY';

/**
 * The code a class is branded with, from the `lifeline.error.<code>` getter its own prototype
 * declares; `null` for a class without one (the base class, a user's subclass). Read again at
 * each check rather than cached: checks run when an error is made or tested, on failures, never
 * per message, and a cache would be bytes in every browser bundle.
 */
function brandedCode(ctor: Function): LifelineErrorCode | null {
  const prototype: object | undefined = ctor.prototype;
  const key = prototype
    ? Object.getOwnPropertyNames(prototype).find((name) => name.startsWith(CODE_BRAND_PREFIX))
    : undefined;
  return key ? (key.slice(CODE_BRAND_PREFIX.length) as LifelineErrorCode) : null;
}

/**
 * Base class of every Lifeline error.
 *
 * Branded by code, as undici's errors are (`lib/core/errors.js`): every Lifeline error carries
 * `Symbol.for('lifeline.error')`, and each class's prototype a `lifeline.error.<code>` getter.
 * `instanceof` answers from the brand, the class's getter and the error's `code`, not from the
 * prototype chain, so it holds across copies of the module and through minifiers, which rename
 * classes but not property keys. `name` comes from the getter for the same reason.
 */
export class LifelineError extends Error {
  declare readonly code: LifelineErrorCode;
  /** Set on errors that Lifeline may recover from by reopening the link. `undefined`: let the classifier decide. */
  declare readonly recoverable: boolean | undefined;

  constructor(
    code: LifelineErrorCode,
    message: string,
    options: { cause?: unknown; recoverable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.recoverable = options.recoverable;
    const own = brandedCode(new.target);
    this.name = own
      ? String((this as unknown as Record<string, unknown>)[CODE_BRAND_PREFIX + own])
      : isRootClass(new.target)
        ? 'LifelineError'
        : new.target.name;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](instance: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of `instanceof` (a subclass, usually); LifelineError would answer for every subclass
    return isBrandedInstance(this, instance);
  }
}

/**
 * Outside the class body: a class that names itself inside its body is bundled by esbuild as
 * `var LifelineError = class _LifelineError`, so its `name` would read `_LifelineError`.
 */
function isRootClass(ctor: Function): boolean {
  return ctor === LifelineError;
}

/** `instanceof ctor` by brand and code, whatever copy of this module made `instance` or `ctor`. */
function isBrandedInstance(ctor: Function, instance: unknown): boolean {
  if (typeof instance !== 'object' || instance === null) return false;
  const record = instance as { readonly [key: string | symbol]: unknown };
  if (record[BRAND] !== true) return false;
  if (ctor === LifelineError) return true;
  const code = brandedCode(ctor);
  // A class without a brand of its own (a user's subclass): the prototype chain decides.
  if (code === null) return Function.prototype[Symbol.hasInstance].call(ctor, instance);
  return typeof record[CODE_BRAND_PREFIX + code] === 'string' && record.code === code;
}

/** The link closed: a WebSocket close frame, a socket end. Carries the close code when there is one. */
export class LinkClosedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_LINK_CLOSED'(): string {
    return 'LinkClosedError';
  }
  declare readonly closeCode: number | undefined;
  declare readonly reason: string;
  constructor(
    closeCode: number | undefined,
    reason = '',
    options: { cause?: unknown; recoverable?: boolean } = {},
  ) {
    super(
      'ERR_LINK_CLOSED',
      `link closed${closeCode === undefined ? '' : ` with code ${closeCode}`}${reason ? `: ${reason}` : ''}`,
      options,
    );
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

/** The link failed under us: a reset, an error event, a truncated stream. `syscallCode` is the OS error (ECONNRESET...). */
export class LinkFailedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_LINK_FAILED'(): string {
    return 'LinkFailedError';
  }
  declare readonly syscallCode: string | undefined;
  constructor(
    message: string,
    options: { cause?: unknown; syscallCode?: string; recoverable?: boolean } = {},
  ) {
    super('ERR_LINK_FAILED', message, options);
    this.syscallCode = options.syscallCode ?? errnoOf(options.cause);
  }
}

/**
 * The server is going away (a resume GOAWAY frame, protocol version 2: a deploy, a graceful
 * shutdown) and told the client to reconnect after `retryAfterMs`, at `url` if it named one.
 * Recoverable; its retry hint replaces the backoff (`retryAfterExact`): the server knows when to
 * come back, so the client resumes after exactly that delay rather than waiting out a backoff.
 */
export class GoAwayError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_GOAWAY'(): string {
    return 'GoAwayError';
  }
  /** Where the server said to reconnect; `undefined`: wherever the transport connects next. */
  readonly url: string | undefined;
  /** The server's delay before reconnecting, in ms (0: at once). */
  readonly retryAfterMs: number;
  /** The hint is the wait itself, not a minimum added to the backoff. */
  readonly retryAfterExact = true;
  constructor(delayMs: number, url?: string) {
    super('ERR_GOAWAY', `the server is going away${url ? `: reconnect to ${url}` : ''}`, {
      recoverable: true,
    });
    this.url = url || undefined;
    this.retryAfterMs = delayMs;
  }
}

/** Opening a link failed (refused, unreachable, DNS). */
export class ConnectFailedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_CONNECT_FAILED'(): string {
    return 'ConnectFailedError';
  }
  declare readonly syscallCode: string | undefined;
  constructor(
    message: string,
    options: { cause?: unknown; syscallCode?: string; recoverable?: boolean } = {},
  ) {
    super('ERR_CONNECT_FAILED', message, options);
    this.syscallCode = options.syscallCode ?? errnoOf(options.cause);
  }
}

/**
 * An HTTP response (or WebSocket upgrade response) with a status that is not a success.
 * `retryAfterMs` is the response's `Retry-After` in ms, when it had one (RFC 9110 §10.2.3): the
 * recovery core waits at least that long before the next attempt.
 */
export class HttpStatusError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_HTTP_STATUS'(): string {
    return 'HttpStatusError';
  }
  declare readonly status: number;
  declare readonly retryAfterMs: number | undefined;
  constructor(
    status: number,
    message = `HTTP status ${status}`,
    options: { cause?: unknown; retryAfterMs?: number | undefined } = {},
  ) {
    super('ERR_HTTP_STATUS', message, { cause: options.cause });
    this.status = status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Nothing arrived from the peer within the heartbeat timeout: the link is presumed half-open. */
export class HeartbeatTimeoutError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_HEARTBEAT_TIMEOUT'(): string {
    return 'HeartbeatTimeoutError';
  }
  declare readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('ERR_HEARTBEAT_TIMEOUT', `no traffic from the peer for ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** The user closed the connection: pending sends reject with this, and it is never retried. */
export class ClosedByUserError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_CLOSED_BY_USER'(): string {
    return 'ClosedByUserError';
  }
  constructor(message = 'connection closed by the user') {
    super('ERR_CLOSED_BY_USER', message, { recoverable: false });
  }
}

/** The connection was detached from recovery while this operation was still pending. */
export class DetachedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_DETACHED'(): string {
    return 'DetachedError';
  }
  constructor() {
    super('ERR_DETACHED', 'connection detached from recovery', { recoverable: false });
  }
}

/** The bounded outgoing queue is full (policy `reject`), or a message was dropped (policy `drop-oldest`). */
export class QueueOverflowError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_QUEUE_OVERFLOW'(): string {
    return 'QueueOverflowError';
  }
  declare readonly limit: 'messages' | 'bytes';
  constructor(limit: 'messages' | 'bytes', message: string) {
    super('ERR_QUEUE_OVERFLOW', message, { recoverable: false });
    this.limit = limit;
  }
}

/**
 * A send withdrawn before it was written: `clearQueue()` took it back while it waited for a link.
 * (A send withdrawn by its own `AbortSignal` rejects with the signal's reason instead, as fetch does.)
 */
export class SendWithdrawnError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_SEND_WITHDRAWN'(): string {
    return 'SendWithdrawnError';
  }
  constructor(message = 'send withdrawn before it was written') {
    super('ERR_SEND_WITHDRAWN', message, { recoverable: false });
  }
}

/** A send on a link that is not open. */
export class NotOpenError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_NOT_OPEN'(): string {
    return 'NotOpenError';
  }
  constructor(message = 'link is not open') {
    super('ERR_NOT_OPEN', message, { recoverable: true });
  }
}

/** A frame larger than the configured maximum, announced or received. */
export class FrameTooLargeError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_FRAME_TOO_LARGE'(): string {
    return 'FrameTooLargeError';
  }
  declare readonly size: number;
  declare readonly maxSize: number;
  constructor(size: number, maxSize: number) {
    super('ERR_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the maximum of ${maxSize} bytes`, {
      recoverable: false,
    });
    this.size = size;
    this.maxSize = maxSize;
  }
}

/** A frame that does not parse. The peer speaks another protocol or is broken: not recoverable. */
export class MalformedFrameError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_MALFORMED_FRAME'(): string {
    return 'MalformedFrameError';
  }
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_MALFORMED_FRAME', message, { ...options, recoverable: false });
  }
}

/** A protocol violation by the peer (resume protocol, fetch resumption). */
export class ProtocolError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_PROTOCOL'(): string {
    return 'ProtocolError';
  }
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_PROTOCOL', message, { ...options, recoverable: false });
  }
}

/** An option with a value that cannot work. Thrown synchronously at construction. */
export class InvalidOptionError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_INVALID_OPTION'(): string {
    return 'InvalidOptionError';
  }
  constructor(message: string) {
    super('ERR_INVALID_OPTION', message, { recoverable: false });
  }
}

/**
 * Data handed to a send that is not message data: a resume session and a TCP connection carry
 * text (a string) or bytes (an `ArrayBuffer` or a view of one: `Uint8Array`, a Node `Buffer`)
 * only, and a value of another type is refused rather than sent as something else. Thrown by a
 * fire-and-forget `send()`, the rejection of an awaited one (`sendAsync`). Nothing was sent.
 */
export class InvalidMessageError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_INVALID_MESSAGE'(): string {
    return 'InvalidMessageError';
  }
  constructor(message: string) {
    super('ERR_INVALID_MESSAGE', message, { recoverable: false });
  }
}

/** Why a resume session ended without being closed on purpose. */
export type SessionLostReason =
  | 'unknown-session'
  | 'invalid-token'
  | 'unsupported-version'
  | 'protocol-error'
  | 'closed-by-peer'
  | 'expired'
  | 'store-failed';

/** A message a session sent and the peer never acknowledged: its sequence number and payload. */
export interface UnacknowledgedMessage {
  /** Its sequence number in the lost session (1-based). */
  readonly seq: number;
  /** The payload as sent: text as a string, binary as bytes. */
  readonly data: string | Uint8Array;
  /**
   * Whether the message may have reached the peer (and its application) although it was never
   * acknowledged: `true` when it was written to a link (its acknowledgement may have been lost
   * with the link, or is not stored yet) or restored from a client store (an earlier process may
   * have written it); `false` when it never left this process (sent during an outage, before any
   * link took it), so it certainly did not arrive. Re-send the `false` ones freely after a loss;
   * a `true` one may be a duplicate to a peer that already processed it, so re-send it only with an
   * idempotency key the peer checks, or not at all.
   */
  readonly maybeDelivered: boolean;
}

/** The codes a resume server rejects a handshake with (see docs/protocol.md). */
export type SessionRejectCode =
  | 'unknown-session'
  | 'invalid-token'
  | 'unsupported-version'
  | 'too-many-sessions'
  | 'protocol-error';

/**
 * The resume server refused the handshake. Only `too-many-sessions` is recoverable (the server may
 * have room later); the message carries the server's reason, never the token.
 */
export class SessionRejectedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_SESSION_REJECTED'(): string {
    return 'SessionRejectedError';
  }
  declare readonly rejectCode: SessionRejectCode;
  declare readonly reason: string;
  constructor(rejectCode: SessionRejectCode, reason = '') {
    super('ERR_SESSION_REJECTED', `session rejected: ${rejectCode}${reason ? ` (${reason})` : ''}`, {
      recoverable: rejectCode === 'too-many-sessions',
    });
    this.rejectCode = rejectCode;
    this.reason = reason;
  }
}

/**
 * A resume session ended and took unacknowledged messages with it. `unacknowledged` lists them
 * all, in order; each of their `send()` promises rejects with this error.
 */
export class SessionLostError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_SESSION_LOST'(): string {
    return 'SessionLostError';
  }
  declare readonly reason: SessionLostReason;
  declare readonly sessionId: string;
  declare readonly unacknowledged: readonly UnacknowledgedMessage[];
  constructor(
    reason: SessionLostReason,
    sessionId: string,
    unacknowledged: readonly UnacknowledgedMessage[],
    options: { cause?: unknown } = {},
  ) {
    super(
      'ERR_SESSION_LOST',
      `session ${sessionId} lost (${reason}) with ${unacknowledged.length} unacknowledged message(s)`,
      { ...options, recoverable: false },
    );
    this.reason = reason;
    this.sessionId = sessionId;
    this.unacknowledged = unacknowledged;
  }
}

/**
 * The replay window is full (policy `reject`), or the message could never fit in it, or (policy
 * `wait`) the sends already waiting for room in it reached their limit (`maxWaitingMessages` /
 * `maxWaitingBytes`).
 */
export class ReplayWindowFullError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_REPLAY_WINDOW_FULL'(): string {
    return 'ReplayWindowFullError';
  }
  declare readonly limit: 'messages' | 'bytes';
  constructor(limit: 'messages' | 'bytes', message: string) {
    super('ERR_REPLAY_WINDOW_FULL', message, { recoverable: false });
    this.limit = limit;
  }
}

/**
 * The peer does not read: the bytes written to a link and not yet taken by the network (ws
 * `bufferedAmount`, Node `writableLength`) passed the link's output high-water mark, so the link was
 * closed rather than let its output grow. Recoverable: a resumable session resumes on a new link.
 */
export class BackpressureError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_BACKPRESSURE'(): string {
    return 'BackpressureError';
  }
  /** Bytes buffered when the link was closed. */
  declare readonly buffered: number;
  /** The high-water mark, in bytes. */
  declare readonly highWater: number;
  constructor(buffered: number, highWater: number) {
    super(
      'ERR_BACKPRESSURE',
      `the peer does not read: ${buffered} bytes wait to be written, above the high-water mark of ${highWater}`,
      { recoverable: true },
    );
    this.buffered = buffered;
    this.highWater = highWater;
  }
}

function errnoOf(cause: unknown): string | undefined {
  if (typeof cause === 'object' && cause !== null) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const inner = (cause as { cause?: unknown }).cause;
    if (inner !== undefined && inner !== cause) return errnoOf(inner);
  }
  return undefined;
}

/** True when `error` is a Lifeline error with the given code (works across copies of core). */
export function hasErrorCode(error: unknown, code: LifelineErrorCode): boolean {
  return error instanceof LifelineError && error.code === code;
}

/**
 * A broken response body cannot be resumed by byte range: the server ignored the `Range` request
 * (answered 200 with the same entity), or the response had no strong `ETag` to guard a resume, or
 * it was content-encoded (ranges would address the encoded bytes). `cause` is the break, if any.
 */
export class RangeNotSupportedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_RANGE_NOT_SUPPORTED'(): string {
    return 'RangeNotSupportedError';
  }
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_RANGE_NOT_SUPPORTED', message, { ...options, recoverable: false });
  }
}

/**
 * The resource changed between the first request and a resume (a different `ETag`, or 412), so
 * the bytes already delivered and the rest would not belong to the same entity.
 */
export class EntityChangedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_ENTITY_CHANGED'(): string {
    return 'EntityChangedError';
  }
  declare readonly etag: string | undefined;
  constructor(message: string, options: { cause?: unknown; etag?: string } = {}) {
    super('ERR_ENTITY_CHANGED', message, { cause: options.cause, recoverable: false });
    this.etag = options.etag;
  }
}

/** A 206 whose `Content-Range` does not continue the body exactly (wrong start, end or total, or malformed). */
export class RangeMismatchError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_RANGE_MISMATCH'(): string {
    return 'RangeMismatchError';
  }
  declare readonly contentRange: string | null;
  constructor(message: string, contentRange: string | null = null) {
    super('ERR_RANGE_MISMATCH', message, { recoverable: false });
    this.contentRange = contentRange;
  }
}

/**
 * A session store operation failed: the store is unreachable, timed out, or refused the write.
 * Whether the write happened is unknown, so the server drops its copy of the session and the
 * client resumes from what the store holds. Recoverable: a later operation may succeed.
 *
 * @example
 * ```ts
 * store.append(id, messages).catch((error) => error instanceof SessionStoreError && retryLater());
 * ```
 * @see StaleOwnerError
 */
export class SessionStoreError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_STORE'(): string {
    return 'SessionStoreError';
  }
  /** The store operation that failed (`append`, `load`...). */
  declare readonly operation: string;
  declare readonly sessionId: string | undefined;
  constructor(
    operation: string,
    sessionId: string | undefined,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      'ERR_STORE',
      `session store ${operation} failed${sessionId ? ` for session ${sessionId}` : ''}: ${message}`,
      {
        ...options,
        recoverable: true,
      },
    );
    this.operation = operation;
    this.sessionId = sessionId;
  }
}

/**
 * A write to a session store was refused because another server took the session over: the
 * session's epoch (owner token) moved past the one the writer holds. The writer is no longer the
 * session's owner and must drop its copy; nothing it tried to write was applied.
 *
 * @example
 * ```ts
 * await store.append(id, messages, epoch).catch((error) => {
 *   if (error instanceof StaleOwnerError) dropLocalCopy(id);
 * });
 * ```
 * @see docs/durable-sessions.md
 */
export class StaleOwnerError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_FENCED'(): string {
    return 'StaleOwnerError';
  }
  declare readonly sessionId: string;
  /** The epoch the writer presented. */
  declare readonly epoch: number;
  /** The session's epoch in the store. */
  declare readonly currentEpoch: number;
  constructor(sessionId: string, epoch: number, currentEpoch: number) {
    super(
      'ERR_FENCED',
      `session ${sessionId} is owned by epoch ${currentEpoch}; a write with stale epoch ${epoch} was refused`,
      { recoverable: false },
    );
    this.sessionId = sessionId;
    this.epoch = epoch;
    this.currentEpoch = currentEpoch;
  }
}

/**
 * A client session store (`ClientSessionStore`: a file, IndexedDB, memory) could not be read or
 * written, or what it holds is not a session this version can read. `reason`:
 * - `'corrupt'`: the stored bytes are not a valid session (truncated, edited, another format);
 *   nothing was restored. Delete the store (or call its `clear()`) to start a new session.
 * - `'unsupported-version'`: a later version of Lifeline wrote the session in a format this one
 *   cannot read (after a rollback, say); nothing was restored and nothing is changed. Keep it: the
 *   later version resumes it with its unsent messages. Deleting it gives them up.
 * - `'unreadable'`: reading failed (permissions, I/O, a quota, the database blocked).
 * - `'write-failed'`: a write failed: the connection closes with this error (irrecoverable),
 *   because what it accepted from then on could no longer survive a restart.
 *
 * @example
 * ```ts
 * socket.addEventListener('error', (event) => {
 *   if (event.error instanceof ClientSessionStoreError && event.error.reason === 'corrupt') store.clear();
 * });
 * ```
 * @see docs/durable-sessions.md#the-client-side-sessions-that-survive-a-reload-or-a-crash
 */
export class ClientSessionStoreError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_CLIENT_STORE'(): string {
    return 'ClientSessionStoreError';
  }
  declare readonly reason: 'corrupt' | 'unsupported-version' | 'unreadable' | 'write-failed';
  /** Where the store keeps the session (a file path, a database and key), when it has one. */
  declare readonly location: string | undefined;
  constructor(
    reason: 'corrupt' | 'unsupported-version' | 'unreadable' | 'write-failed',
    message: string,
    options: { cause?: unknown; location?: string } = {},
  ) {
    super('ERR_CLIENT_STORE', `client session store: ${message}`, {
      cause: options.cause,
      recoverable: false,
    });
    this.reason = reason;
    this.location = options.location;
  }
}

/**
 * Another owner (a process, a browser tab) holds the stored client session: one session is never
 * attached by two owners at a time. Thrown by a store's `open()` when it does not wait (the Node
 * file store; the IndexedDB store with `ifLocked: 'fail'`), so the connection closes with it.
 *
 * @example
 * ```ts
 * const store = await FileClientSessionStore.open('/var/lib/app/session.json').catch((error) => {
 *   if (error instanceof ClientSessionLockedError) console.error('already running as pid', error.owner);
 *   throw error;
 * });
 * ```
 */
export class ClientSessionLockedError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_SESSION_LOCKED'(): string {
    return 'ClientSessionLockedError';
  }
  /** What the store knows of the owner (a process id), if anything. */
  declare readonly owner: string | undefined;
  declare readonly location: string | undefined;
  constructor(location: string | undefined, owner?: string | undefined) {
    super(
      'ERR_SESSION_LOCKED',
      `the client session${location ? ` at ${location}` : ''} is owned by another ${owner ? `owner (${owner})` : 'owner'}`,
      { recoverable: false },
    );
    this.owner = owner;
    this.location = location;
  }
}

/**
 * A module of Lifeline needs an optional peer dependency that is not installed (`ws` for
 * `@lifeline/node/ws`, `undici` for `@lifeline/node/fetch`...). Thrown when the module that needs
 * it is imported, or, for what only one feature needs, when that feature is first used. The
 * message names the package and the command that installs it.
 *
 * @example
 * ```ts
 * try {
 *   await import('@lifeline/node/ws');
 * } catch (error) {
 *   if (error instanceof MissingPeerDependencyError) console.error(error.packageName); // 'ws'
 * }
 * ```
 */
export class MissingPeerDependencyError extends LifelineError {
  /** @internal The brand of this class: its code (in the key) and its name, which minifiers do not rename. */
  get 'lifeline.error.ERR_MISSING_PEER_DEPENDENCY'(): string {
    return 'MissingPeerDependencyError';
  }
  /** The npm package to install. */
  declare readonly packageName: string;
  /** What needs it: a sub-path (`@lifeline/node/ws`) or a feature. */
  declare readonly neededBy: string;
  constructor(packageName: string, neededBy: string, options: { cause?: unknown; install?: string } = {}) {
    super(
      'ERR_MISSING_PEER_DEPENDENCY',
      `${neededBy} needs the '${packageName}' package: npm install ${options.install ?? packageName}`,
      { cause: options.cause, recoverable: false },
    );
    this.packageName = packageName;
    this.neededBy = neededBy;
  }
}
