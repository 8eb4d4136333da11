import type { ConnectionEvent } from '../engine/attach.js';
import type { ConnectionState } from '../engine/connection-state.js';
import { setConnectionDiagnostics, setSessionDiagnostics } from '../engine/diagnostics-hook.js';
import { byteSizeOf } from '../engine/link.js';
import {
  DIAGNOSTIC_CHANNELS,
  Diagnostics,
  errorFields,
  type LogFields,
  type Logger,
  type LogLevel,
} from './diagnostics.js';
import { ClientSessionDiagnostics } from './session-diagnostics.js';

/** Infinity as "no field": JSON has no Infinity, and an unlimited budget needs no number. */
const finite = (value: number): number | undefined => (Number.isFinite(value) ? value : undefined);

/** What `attach` reports: state changes, each retry decision with its reason, links, drops. */
export class ConnectionDiagnostics extends Diagnostics {
  /** A state change; `pending` is the queue depth at that moment. */
  state(state: ConnectionState, pending: number): void {
    this.gauge('lifeline.connection.queue_depth', pending);
    switch (state.status) {
      case 'connecting':
        this.record('debug', DIAGNOSTIC_CHANNELS.state, 'state', 'connecting', { status: state.status });
        break;
      case 'open':
        this.record('info', DIAGNOSTIC_CHANNELS.state, 'state', 'connection open', {
          status: state.status,
          recoveries: state.recoveries,
          recoveriesLeft: finite(state.recoveriesLeft),
        });
        break;
      case 'recovering':
        this.record('info', DIAGNOSTIC_CHANNELS.state, 'state', 'recovering', {
          status: state.status,
          attempt: state.attempt,
          maxAttempts: state.maxAttempts,
          delayMs: state.delayMs,
          ...errorFields(state.error),
        });
        break;
      case 'closed':
        this.record(
          state.error === undefined ? 'info' : 'warn',
          DIAGNOSTIC_CHANNELS.state,
          'state',
          'connection closed',
          {
            status: state.status,
            reason: state.reason,
            ...errorFields(state.error),
          },
        );
        break;
      default:
        this.record('info', DIAGNOSTIC_CHANNELS.state, 'state', state.status, { status: state.status });
    }
  }

  /** A connection event (the payload of `dropped` and the link of `link-open` are never reported). */
  event(event: ConnectionEvent<unknown, unknown>): void {
    switch (event.type) {
      case 'recovering':
        // The decision to retry: the error that caused it (recoverable by the classifier), the
        // attempt it leads to, and the wait before it.
        this.record('info', DIAGNOSTIC_CHANNELS.retry, 'retry', 'retrying after a recoverable failure', {
          decision: 'retry',
          attempt: event.attempt,
          maxAttempts: event.maxAttempts,
          delayMs: Math.round(event.delayMs),
          recoveriesLeft: finite(event.recoveriesLeft),
          ...errorFields(event.lastError),
          // The error that started the failure, when a later attempt failed differently.
          ...(event.error === event.lastError ? {} : errorFields(event.error, 'failure')),
        });
        break;
      case 'attempting':
        this.count('lifeline.connection.attempts');
        this.record('debug', DIAGNOSTIC_CHANNELS.retry, 'attempt', 'reconnection attempt', {
          attempt: event.attempt,
        });
        break;
      case 'recovered':
        this.count('lifeline.connection.recoveries');
        this.record('info', DIAGNOSTIC_CHANNELS.retry, 'recovered', 'recovered', {
          recoveries: event.recoveries,
          attempts: event.attempts,
        });
        break;
      case 'gave-up':
        this.count('lifeline.connection.gave_up', 1, { reason: event.reason });
        this.record(
          event.reason === 'closed' ? 'debug' : 'warn',
          DIAGNOSTIC_CHANNELS.retry,
          'give-up',
          'recovery gave up',
          { decision: 'give-up', reason: event.reason, ...errorFields(event.error) },
        );
        break;
      case 'link-open':
        this.record('debug', DIAGNOSTIC_CHANNELS.link, 'link-open', 'link open', {
          recovered: event.recovered,
        });
        break;
      case 'link-down':
        this.record('info', DIAGNOSTIC_CHANNELS.link, 'link-down', 'link down', errorFields(event.error));
        break;
      case 'dropped':
        this.count('lifeline.connection.dropped');
        this.record('warn', DIAGNOSTIC_CHANNELS.link, 'dropped', 'queued message dropped (drop-oldest)', {
          bytes: byteSizeOf(event.data as never),
          ...errorFields(event.error),
        });
        break;
      case 'ping-failed':
        this.record(
          'warn',
          DIAGNOSTIC_CHANNELS.link,
          'ping-failed',
          'heartbeat ping failed',
          errorFields(event.error),
        );
        break;
      case 'up':
        break;
    }
  }
}

/**
 * Turns on connection diagnostics for every `attach` made afterwards: the `logger` and `metrics`
 * options, and `diagnostics_channel` publishing. `@lifeline/node` and `@lifeline/deno` call it when
 * loaded, and so does {@link consoleLogger}; a browser app that wants diagnostics calls it once
 * (its bundle carries them only then). Idempotent.
 */
export function enableDiagnostics(): void {
  // Without a logger, metrics or name every connection reports alike (to diagnostics_channel), and
  // the diagnostics keep no state: one serves them all, rather than one (and its attributes
  // object, about 110 B) kept by each idle connection.
  let shared: ConnectionDiagnostics | undefined;
  setConnectionDiagnostics((options) => {
    if (options.logger !== undefined || options.metrics !== undefined || options.name !== undefined)
      return new ConnectionDiagnostics(options);
    shared ??= new ConnectionDiagnostics();
    return shared;
  });
  setSessionDiagnostics((options) => new ClientSessionDiagnostics(options));
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Where {@link consoleLogger} writes its lines: `console`, or anything with its four methods. */
export interface LogSink {
  debug(line: string): void;
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/**
 * A {@link Logger} that writes to `console` (or another sink with the same methods), one line a
 * record: `lifeline: <message> {"event":...,"fields":...}`, at `level` and above.
 *
 * @param level the least severe level written. @default 'info'
 * @example
 * ```ts
 * const conn = attach(transport, { logger: consoleLogger('debug') });
 * ```
 */
export function consoleLogger(level: LogLevel = 'info', sink: LogSink = console): Required<Logger> {
  enableDiagnostics();
  const least = LEVELS.indexOf(level);
  const write =
    (at: LogLevel) =>
    (message: string, fields: LogFields): void => {
      if (LEVELS.indexOf(at) >= least) sink[at](`${message} ${JSON.stringify(fields)}`);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
