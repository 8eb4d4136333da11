// The option checks of the resume protocol's public entry points (`resume()`, `resumable()`,
// `ResumeServer`), in a module of their own so that the public sub-paths, which re-export whole
// modules, do not carry them: they are not API.
import { count, durationMs, fn, oneOf } from '../engine/options.js';
import type { ResumableOptions } from './client/resumable-transport.js';
import { checkSessionEndpointOptions } from './endpoint/session-endpoint.js';
import type { ResumeServerOptions } from './server/resume-server.js';

/**
 * Checks {@link ResumableOptions}: the session's ({@link checkSessionEndpointOptions}),
 * `handshakeTimeoutMs` from 1 ms to 2^31 - 1, `renegotiate` a function.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkResumableOptions(options: ResumableOptions | undefined): void {
  checkSessionEndpointOptions(options);
  durationMs('handshakeTimeoutMs', options?.handshakeTimeoutMs, { min: 1 });
  fn('renegotiate', options?.renegotiate);
}

/**
 * Checks {@link ResumeServerOptions} but `store` (each store checks its own): the sessions'
 * ({@link checkSessionEndpointOptions}), `ack`, the timeouts (1 ms to 2^31 - 1), `maxSessions`
 * (an integer ≥ 1), `maxSessionsPerAddress` and `maxPendingStoreOps` (integers ≥ 1, or Infinity: no
 * limit) and `maxStoreLagMs` (1 ms to 2^31 - 1, or Infinity).
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkResumeServerOptions(options: ResumeServerOptions): void {
  checkSessionEndpointOptions(options);
  oneOf('ack', options.ack, ['auto', 'manual']);
  durationMs('sessionTtlMs', options.sessionTtlMs, { min: 1 });
  count('maxSessions', options.maxSessions, { min: 1 });
  count('maxSessionsPerAddress', options.maxSessionsPerAddress, { min: 1, allowInfinity: true });
  count('maxPendingStoreOps', options.maxPendingStoreOps, { min: 1, allowInfinity: true });
  durationMs('maxStoreLagMs', options.maxStoreLagMs, { min: 1, allowInfinity: true });
  durationMs('handshakeTimeoutMs', options.handshakeTimeoutMs, { min: 1 });
  durationMs('pingIntervalMs', options.pingIntervalMs, { min: 1 });
  durationMs('idleTimeoutMs', options.idleTimeoutMs, { min: 1 });
  fn('now', options.now);
}
