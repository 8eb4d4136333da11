import type { LinkData, Transport } from '../../engine/link.js';
import { checkResumableOptions } from '../option-checks.js';
import {
  handshakeTimeoutFor,
  type ResumableOptions,
  type ResumableTransport,
  resumable,
} from './resumable-transport.js';

/**
 * What a connection tells the resume protocol about itself, so a session's handshake timeout
 * follows the connection's own timeouts when `handshakeTimeoutMs` is not set.
 */
export interface ResumeConnectionTimeouts {
  /** The connection's open timeout, in ms. @default 10_000 */
  readonly connectTimeoutMs?: number | undefined;
  /** The connection's heartbeat; its `timeoutMs` (ms) bounds the handshake too. @default none */
  readonly heartbeat?: false | { readonly timeoutMs?: number | undefined } | undefined;
}

/**
 * The resume protocol as the `resume` option of `HAWebSocket` and `haWebSocket()` takes it: what
 * {@link resume} returns. Given the connection's transport, it returns the transport of a new
 * resumable session; one value can serve any number of connections, each with its own session.
 */
export type ResumeProtocol = (
  transport: Transport<LinkData, LinkData>,
  connection?: ResumeConnectionTimeouts,
) => ResumableTransport;

/**
 * The `resume` option of `HAWebSocket` and `haWebSocket()` on every platform: exactly-once,
 * in-order delivery both ways across reconnects, against a resume server (docs/protocol.md).
 * Importing it is what brings the protocol into a bundle, so a browser app that does not resume
 * does not carry it. The connection's `session` is then the session's `ResumeSession` handle,
 * from the constructor on.
 *
 * The handshake timeout defaults to the connection's `connectTimeoutMs`, shortened to its
 * heartbeat's `timeoutMs` when one runs (see {@link handshakeTimeoutFor}); every other option
 * has the defaults of {@link resumable}.
 *
 * @param options the session's options (replay window, acks, `renegotiate` after a lost session).
 * @throws {InvalidOptionError} at the call, for an option out of range or of the wrong type.
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/browser';
 * const socket = new HAWebSocket('wss://example.com/session', { resume: resume() });
 * socket.addEventListener('recovered', () => console.log(socket.session?.id, socket.session?.stats.resumes));
 * ```
 * @see resumable for the same protocol around any transport, under `attach`.
 */
export function resume(options: ResumableOptions = NO_OPTIONS): ResumeProtocol {
  checkResumableOptions(options);
  // Every session of this value keeps `options` itself (so they share the limits read from it),
  // and its handshake timeout in a field of its own.
  return (transport, connection = {}) => {
    const session = resumable(transport, options);
    (session as { handshakeTimeoutMs_?: number }).handshakeTimeoutMs_ =
      options.handshakeTimeoutMs ?? handshakeTimeoutFor(connection);
    return session;
  };
}

/** `resume()`'s options when given none: one object, so `resume: true` sessions share their limits too. */
const NO_OPTIONS: ResumableOptions = {};
