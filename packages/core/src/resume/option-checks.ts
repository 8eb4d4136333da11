// The option checks of the resume protocol's public entry points (`resume()`, `resumable()`,
// `ResumeServer`), in a module of their own so that the public sub-paths, which re-export whole
// modules, do not carry them: they are not API.
import { checkOptionTable } from '../engine/options.js';
import type { ResumableOptions } from './client/resumable-transport.js';
import { outputHighWaterOf } from './endpoint/link-output.js';
import { checkSessionEndpointOptions } from './endpoint/session-endpoint.js';
import type { ResumeServerOptions } from './server/resume-server.js';

/**
 * Checks {@link ResumableOptions}: the session's ({@link checkSessionEndpointOptions}),
 * `handshakeTimeoutMs` from 1 ms to 2^31 - 1, `renegotiate` a function, and the byte limits that
 * must hold a frame ({@link outputHighWaterOf}), here at the call as the server does in its
 * constructor, not at the first link's open.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkResumableOptions(options: ResumableOptions | undefined): void {
  checkSessionEndpointOptions(options);
  checkOptionTable('options', options, 'handshakeTimeoutMs d 1,renegotiate f', false, '');
  outputHighWaterOf(options ?? {});
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
  checkOptionTable(
    'options',
    options,
    'ack e auto manual,sessionTtlMs d 1,maxSessions i 1,maxSessionsPerAddress I 1,maxPendingStoreOps I 1,' +
      'maxStoreLagMs D 1,handshakeTimeoutMs d 1,pingIntervalMs d 1,idleTimeoutMs d 1,now f',
    false,
    '',
  );
}
