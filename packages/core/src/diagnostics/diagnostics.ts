/**
 * Diagnostics: why a connection is recovering, what each retry decision was, why a session was
 * refused. Three outlets, all off unless asked for, none of them ever carrying a message payload
 * or a session token:
 *
 * - a {@link Logger} (`logger` option): levelled, structured records, in the shape of `console`,
 *   pino or winston (`logger.info(message, fields)`); {@link consoleLogger} is a ready one;
 * - Node's `diagnostics_channel` (also Deno's and Bun's `node:diagnostics_channel`): the channels
 *   named in {@link DIAGNOSTIC_CHANNELS}, published only while someone subscribes, as undici does;
 * - a {@link Metrics} hook (`metrics` option): counters and gauges, named like OpenTelemetry
 *   instruments (`lifeline.connection.recoveries`...), for any metrics library.
 *
 * A record's fields are primitives only: errors appear as their `name`, `code` and `message`
 * (Lifeline's own messages never include payloads or tokens), links as nothing at all.
 */

import { reportException } from '../engine/report-exception.js';

/** A record's structured fields: primitives only, so any logger can serialise them. */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

/** Levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Where Lifeline writes its log records. Each method is optional (a missing level is dropped);
 * `message` is a short constant sentence, `fields` the details. `console` fits as is
 * (`logger: console`), as do pino (`logger: { info: (m, f) => pino.info(f, m), ... }`) and winston.
 */
export interface Logger {
  debug?(message: string, fields: LogFields): void;
  info?(message: string, fields: LogFields): void;
  warn?(message: string, fields: LogFields): void;
  error?(message: string, fields: LogFields): void;
}

/** Attributes of a metric point: primitives, low cardinality (never a session id). */
export type MetricAttributes = Readonly<Record<string, string | number | boolean>>;

/**
 * A metrics hook, shaped to wire into OpenTelemetry (`meter.createCounter(name).add(value, attrs)`,
 * an observable or synchronous gauge for `gauge`), Prometheus clients or StatsD. Names:
 *
 * | name | kind | when |
 * | --- | --- | --- |
 * | `lifeline.connection.attempts` | counter | each reconnection attempt |
 * | `lifeline.connection.recoveries` | counter | each recovery that succeeded |
 * | `lifeline.connection.gave_up` | counter | recovery gave up (`reason` attribute) |
 * | `lifeline.connection.dropped` | counter | a queued message dropped (`drop-oldest`) |
 * | `lifeline.connection.queue_depth` | gauge | messages waiting or in flight, at each state change |
 * | `lifeline.session.resumes` | counter | a client session resumed |
 * | `lifeline.session.replayed` | counter | messages the client re-sent on a resume |
 * | `lifeline.session.lost` | counter | a client session lost (`reason`) |
 * | `lifeline.server.rejections` | counter | a handshake refused (`code`) |
 * | `lifeline.server.shed` | counter | a handshake refused for load (close 1013: the store is behind) |
 * | `lifeline.server.resumes` | counter | a session resumed on this server |
 * | `lifeline.server.store_errors` | counter | a session store operation failed |
 */
export interface Metrics {
  counter?(name: string, value: number, attributes: MetricAttributes): void;
  gauge?(name: string, value: number, attributes: MetricAttributes): void;
}

/** The options every instrumented component takes. */
export interface DiagnosticsOptions {
  /** Where log records go. @default none (nothing is logged) */
  logger?: Logger;
  /** Where counters and gauges go. @default none */
  metrics?: Metrics;
  /**
   * A name for this connection or server in every record (`name` field, and a metric attribute),
   * so records of several connections can be told apart. @default none
   */
  name?: string;
}

/**
 * The `diagnostics_channel` channels Lifeline publishes to. Each message is
 * `{ name?, event, ...fields }` with the same fields the logger gets.
 */
export const DIAGNOSTIC_CHANNELS = {
  /** A connection's state changed (`status`, `attempt`, `delayMs`, the error's name and code). */
  state: 'lifeline:connection:state',
  /** A retry decision: `event` is `retry` (with `attempt`, `delayMs`, `error`) or `give-up` (with `reason`). */
  retry: 'lifeline:connection:retry',
  /** A link opened or went down, or a message was dropped. */
  link: 'lifeline:connection:link',
  /** A client session was created, resumed, lost or closed (the resume handshake's outcome). */
  session: 'lifeline:session',
  /** A server refused a handshake or a peer's link (`code` or `reason`). */
  rejection: 'lifeline:server:rejection',
  /** A server session connected, resumed, detached, expired or closed. */
  serverSession: 'lifeline:server:session',
  /** A session store operation failed. */
  storeError: 'lifeline:server:store-error',
} as const;

/** One of {@link DIAGNOSTIC_CHANNELS}' values. */
export type DiagnosticChannelName = (typeof DIAGNOSTIC_CHANNELS)[keyof typeof DIAGNOSTIC_CHANNELS];

interface ChannelLike {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}

type ChannelFactory = (name: string) => ChannelLike;

let channelFactory: ChannelFactory | null | undefined;
const channels = new Map<string, ChannelLike>();

/**
 * Node's `diagnostics_channel.channel`, found without a static `node:` import (the core runs in
 * browsers too): `process.getBuiltinModule` exists in Node 20.16+, 22.3+, Deno and Bun. Elsewhere
 * there are no channels and nothing is published.
 */
function channelOf(name: string): ChannelLike | undefined {
  if (channelFactory === undefined) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const module = proc?.getBuiltinModule?.('node:diagnostics_channel') as
      | { channel?: ChannelFactory }
      | undefined;
    channelFactory = typeof module?.channel === 'function' ? module.channel : null;
  }
  if (channelFactory === null) return undefined;
  let channel = channels.get(name);
  if (!channel) {
    channel = channelFactory(name);
    channels.set(name, channel);
  }
  return channel;
}

/**
 * The fields that describe an error without leaking what it carries: its name, code and message.
 * Lifeline's messages name limits and states, never payloads or tokens; a foreign error's message
 * is the platform's (a syscall error, an HTTP status).
 */
export function errorFields(error: unknown, prefix = 'error'): LogFields {
  if (error === undefined) return {};
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      [`${prefix}Name`]: error.name,
      [`${prefix}Code`]: typeof code === 'string' || typeof code === 'number' ? String(code) : undefined,
      [`${prefix}Message`]: error.message,
    };
  }
  return { [`${prefix}Name`]: typeof error };
}

/**
 * One component's diagnostics outlet: writes a record to the logger, the channel and (through
 * {@link Diagnostics.count} / {@link Diagnostics.gauge}) the metrics hook. Cheap when nothing
 * listens: one property read per record.
 */
export class Diagnostics {
  private readonly logger: Logger | undefined;
  private readonly metrics: Metrics | undefined;
  private readonly name: string | undefined;
  private readonly attributes: MetricAttributes;

  constructor(options: DiagnosticsOptions = {}) {
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.name = options.name;
    this.attributes = options.name === undefined ? {} : { name: options.name };
  }

  /**
   * Whether anything can ever listen: a logger, a metrics hook, or a runtime with
   * `diagnostics_channel` (a subscriber may come later). False in a browser without options.
   */
  get enabled(): boolean {
    return (
      this.logger !== undefined ||
      this.metrics !== undefined ||
      channelOf(DIAGNOSTIC_CHANNELS.state) !== undefined
    );
  }

  /** Whether a record on `channel` would go anywhere now (a logger, or a channel subscriber). */
  protected active(channel: DiagnosticChannelName): boolean {
    return (
      this.logger !== undefined || this.metrics !== undefined || channelOf(channel)?.hasSubscribers === true
    );
  }

  /** Writes one record: `event` names it (`state`, `retry`, `rejected`...). */
  record(
    level: LogLevel,
    channel: DiagnosticChannelName,
    event: string,
    message: string,
    fields: LogFields,
  ): void {
    const log = this.logger?.[level];
    const published = channelOf(channel);
    if (!log && !published?.hasSubscribers) return;
    const record: Record<string, unknown> = { event, ...fields };
    if (this.name !== undefined) record.name = this.name;
    if (published?.hasSubscribers) published.publish(record);
    if (log === undefined) return;
    try {
      log.call(this.logger, `lifeline: ${message}`, record as LogFields);
    } catch (error) {
      // The application's logger threw: reported, never thrown into the component, whose state
      // machine is mid-transition (a connection would stop recovering for a logging bug).
      reportException(error);
    }
  }

  /** Adds to a counter. A hook that throws is reported, as a logger's throw is. */
  count(name: string, value = 1, attributes?: MetricAttributes): void {
    try {
      this.metrics?.counter?.(
        name,
        value,
        attributes ? { ...this.attributes, ...attributes } : this.attributes,
      );
    } catch (error) {
      reportException(error);
    }
  }

  /** Sets a gauge. A hook that throws is reported, as a logger's throw is. */
  gauge(name: string, value: number, attributes?: MetricAttributes): void {
    try {
      this.metrics?.gauge?.(
        name,
        value,
        attributes ? { ...this.attributes, ...attributes } : this.attributes,
      );
    } catch (error) {
      reportException(error);
    }
  }
}
