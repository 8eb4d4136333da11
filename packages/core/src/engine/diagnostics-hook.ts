import type { DiagnosticsOptions } from '../diagnostics/diagnostics.js';
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
  if (options.logger !== undefined || options.metrics !== undefined) {
    throw new InvalidOptionError(
      'the logger and metrics options need diagnostics: call enableDiagnostics() from @lifeline/core once ' +
        '(@lifeline/node and @lifeline/deno do it for you; consoleLogger() does too)',
    );
  }
  return SILENT;
}
