import type { SchedulerLike } from 'rxjs';
import { InvalidOptionError } from '../engine/errors.js';
import { durationMs, oneOf } from '../engine/options.js';
import { DEFAULT_MAX_FRAME_SIZE, MAX_ENCODABLE_FRAME_SIZE } from './length-prefixed-framing.js';

/**
 * `'framed'`: every message is one length-prefixed frame (see `docs/tcp.md`), and the link can
 * ping. `'stream'`: bytes as they come; a message is whatever chunk a read returned.
 */
export type TcpMode = 'framed' | 'stream';

/**
 * Where and how a TCP transport connects. The same options for every runtime's TCP transport
 * (`@lifeline/node/tcp` over `node:net`, `@lifeline/deno` over `Deno.connect`), so a client written
 * for one runs on the other.
 */
export interface TcpOptions {
  /**
   * Drives the connect timeout (the library's one timer seam; a `TestScheduler` or fake timers
   * move it in tests). @default monotonicScheduler
   */
  scheduler?: SchedulerLike;
  /** The server's host name or address. @default '127.0.0.1' */
  host?: string;
  /** The server's port. */
  port: number;
  /** @default 'framed' */
  mode?: TcpMode;
  /**
   * Framed mode: the largest payload, in bytes, incoming and outgoing. A larger incoming frame
   * fails the connection with an irrecoverable `FrameTooLargeError` as soon as its header arrives;
   * a larger send ends the connection with the same error.
   * @default 16_777_216 (16 MiB, {@link DEFAULT_MAX_FRAME_SIZE})
   */
  maxFrameSize?: number;
  /**
   * An open that has not connected after this long fails with a recoverable ETIMEDOUT, in ms:
   * from 1 to 2^31 - 1 (longer would overflow the platform's timers). @default 10_000
   */
  connectTimeoutMs?: number;
  /** Disables Nagle's algorithm, so small messages go out at once. @default true */
  noDelay?: boolean;
}

export const DEFAULT_TCP_HOST = '127.0.0.1';
export const DEFAULT_TCP_MODE: TcpMode = 'framed';
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_TCP_NO_DELAY = true;

/** {@link TcpOptions} with every default filled in (the scheduler stays optional: none means the default seam). */
export interface ResolvedTcpOptions {
  readonly host: string;
  readonly port: number;
  readonly mode: TcpMode;
  readonly maxFrameSize: number;
  readonly connectTimeoutMs: number;
  readonly noDelay: boolean;
}

/** The options with their defaults filled in, checked: an impossible value throws {@link InvalidOptionError}. */
export function resolveTcpOptions(options: TcpOptions): ResolvedTcpOptions {
  const resolved = {
    host: options.host ?? DEFAULT_TCP_HOST,
    port: options.port,
    mode: options.mode ?? DEFAULT_TCP_MODE,
    maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS,
    noDelay: options.noDelay ?? DEFAULT_TCP_NO_DELAY,
  };
  const { port, mode, maxFrameSize, connectTimeoutMs } = resolved;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidOptionError(`port must be an integer from 1 to 65535, got ${port}`);
  }
  if (mode !== 'framed' && mode !== 'stream') {
    throw new InvalidOptionError(`mode must be 'framed' or 'stream', got ${String(mode)}`);
  }
  if (!Number.isInteger(maxFrameSize) || maxFrameSize < 0 || maxFrameSize > MAX_ENCODABLE_FRAME_SIZE) {
    throw new InvalidOptionError(`maxFrameSize must be an integer from 0 to ${MAX_ENCODABLE_FRAME_SIZE}`);
  }
  durationMs('connectTimeoutMs', connectTimeoutMs, { min: 1 });
  oneOf('noDelay', resolved.noDelay, [true, false]);
  return resolved;
}
