import type { DiagnosticsOptions } from '../diagnostics/diagnostics.js';
import type { SessionEvent } from '../resume/client/resumable-transport.js';
import type { ConnectionEvent } from './attach.js';
import type { ConnectionState } from './connection-state.js';
import { InvalidOptionError } from './errors.js';

/** What `attach` tells diagnostics: state changes and connection events. */
export interface ConnectionDiagnosticsPort {
  state(state: ConnectionState, pending: number): void;
  event(event: ConnectionEvent<unknown, unknown>): void;
}

type Factory = (options: DiagnosticsOptions) => ConnectionDiagnosticsPort;

const SILENT: ConnectionDiagnosticsPort = { state() {}, event() {} };
let factory: Factory | undefined;

/**
 * Plugs connection diagnostics into `attach`. A seam rather than an import, so that a browser
 * bundle that never asks for diagnostics does not carry them: `enableDiagnostics()` (called by the
 * Node and Deno packages, and by `consoleLogger()`) installs the real ones.
 */
export function setConnectionDiagnostics(install: Factory): void {
  factory = install;
}

/** The diagnostics of one connection: silent unless installed. */
export function connectionDiagnosticsFor(options: DiagnosticsOptions): ConnectionDiagnosticsPort {
  if (factory) return factory(options);
  refuseWithoutDiagnostics(options);
  return SILENT;
}

/** What a resumable client session tells diagnostics: each session event, with the messages a resume re-sent. */
export interface SessionDiagnosticsPort {
  /** Whether anything can ever listen; when false the session does not watch its events at all. */
  readonly enabled: boolean;
  session(event: SessionEvent, replayed: number): void;
}

let sessionFactory: ((options: DiagnosticsOptions) => SessionDiagnosticsPort) | undefined;
let sharedSession: SessionDiagnosticsPort | undefined;

/**
 * Plugs session diagnostics into `resume()`'s client, for the same reason as
 * {@link setConnectionDiagnostics}: a browser bundle with the resume protocol but no diagnostics
 * does not carry them. Installed by `enableDiagnostics()`.
 */
export function setSessionDiagnostics(
  install: (options: DiagnosticsOptions) => SessionDiagnosticsPort,
): void {
  sessionFactory = install;
  sharedSession = undefined;
}

/** The diagnostics of one resumable session: `undefined` (nothing to report to) unless installed. */
export function sessionDiagnosticsFor(options: DiagnosticsOptions): SessionDiagnosticsPort | undefined {
  if (sessionFactory) {
    // Without a logger, metrics or name every session reports alike (to diagnostics_channel):
    // one port serves them all, rather than one kept by each idle connection.
    if (options.logger !== undefined || options.metrics !== undefined || options.name !== undefined)
      return sessionFactory(options);
    sharedSession ??= sessionFactory(options);
    return sharedSession;
  }
  refuseWithoutDiagnostics(options);
  return undefined;
}

/** A logger or metrics hook given while diagnostics are not installed would be dropped silently: refused. */
function refuseWithoutDiagnostics(options: DiagnosticsOptions): void {
  if (options.logger !== undefined || options.metrics !== undefined) {
    throw new InvalidOptionError(
      'the logger and metrics options need diagnostics: call enableDiagnostics() from @lifeline/core once ' +
        '(@lifeline/node and @lifeline/deno do it for you; consoleLogger() does too)',
    );
  }
}
