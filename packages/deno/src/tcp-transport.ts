import {
  ConnectFailedError,
  DEFAULT_MAX_FRAME_SIZE,
  InvalidOptionError,
  MAX_ENCODABLE_FRAME_SIZE,
  type Transport,
} from '@lifeline/core';
import { type DenoConnect, type DenoConnLike, denoConnect } from './deno-connect.js';
import { syscallCodeOf } from './deno-net-error.js';
import { createTcpLink, type TcpLink, type TcpMode } from './tcp-link.js';

/** Where and how {@link tcpTransport} connects: the options of `@lifeline/node/tcp`, plus `connect`. */
export interface TcpTransportOptions {
  /** The server's host name or address. @default '127.0.0.1' */
  host?: string;
  /** The server's port. */
  port: number;
  /**
   * `'framed'`: every message is one length-prefixed frame (see `docs/tcp.md`), and the link can
   * ping. `'stream'`: bytes as they come; a message is whatever chunk a read returned.
   * @default 'framed'
   */
  mode?: TcpMode;
  /**
   * Framed mode: the largest incoming payload, in bytes. A larger frame fails the connection with
   * an irrecoverable `FrameTooLargeError` as soon as its header arrives.
   * @default 16_777_216 (16 MiB, {@link DEFAULT_MAX_FRAME_SIZE})
   */
  maxFrameSize?: number;
  /** An open that has not connected after this long fails with a recoverable ETIMEDOUT. @default 10_000 */
  connectTimeoutMs?: number;
  /** Disables Nagle's algorithm, so small messages go out at once. @default true */
  noDelay?: boolean;
  /** Opens the connection. @default {@link denoConnect}: `Deno.connect`, read when called */
  connect?: DenoConnect;
}

export const DEFAULT_TCP_HOST = '127.0.0.1';
export const DEFAULT_TCP_MODE: TcpMode = 'framed';
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_TCP_NO_DELAY = true;

/**
 * A transport over `Deno.connect`: each `open()` connects and resolves with a {@link TcpLink}.
 * A refused or unreachable connect rejects with a `ConnectFailedError` carrying the OS code
 * (ECONNREFUSED...), which recovery retries. Same options and framing as `@lifeline/node/tcp`,
 * so a Deno client talks to a Node server (and back).
 *
 * @example
 * ```ts
 * import { attach, tcpTransport } from '@lifeline/deno';
 * const conn = attach(tcpTransport({ port: 7000 }), { heartbeat: { intervalMs: 5_000, timeoutMs: 15_000 } });
 * await conn.send(new TextEncoder().encode('hello'));
 * ```
 * @see connectTcp for the same in one call.
 */
export function tcpTransport(options: TcpTransportOptions): Transport<Uint8Array, Uint8Array> & {
  open(signal?: AbortSignal): Promise<TcpLink>;
} {
  const host = options.host ?? DEFAULT_TCP_HOST;
  const { port } = options;
  const mode = options.mode ?? DEFAULT_TCP_MODE;
  const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS;
  const noDelay = options.noDelay ?? DEFAULT_TCP_NO_DELAY;
  const connect = options.connect ?? denoConnect;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidOptionError(`port must be an integer from 1 to 65535, got ${port}`);
  }
  if (mode !== 'framed' && mode !== 'stream') {
    throw new InvalidOptionError(`mode must be 'framed' or 'stream', got ${String(mode)}`);
  }
  if (!Number.isInteger(maxFrameSize) || maxFrameSize < 0 || maxFrameSize > MAX_ENCODABLE_FRAME_SIZE) {
    throw new InvalidOptionError(`maxFrameSize must be an integer from 0 to ${MAX_ENCODABLE_FRAME_SIZE}`);
  }
  if (!(connectTimeoutMs > 0)) throw new InvalidOptionError('connectTimeoutMs must be > 0');
  const where = `${host}:${port}`;

  return {
    async open(signal?: AbortSignal): Promise<TcpLink> {
      signal?.throwIfAborted();
      const conn = await connectBounded(
        connect,
        { hostname: host, port, transport: 'tcp' },
        connectTimeoutMs,
        signal,
        where,
      );
      try {
        conn.setNoDelay?.(noDelay);
      } catch {
        // Not every connection kind can (a Unix socket, a test double): Nagle stays as it is.
      }
      return createTcpLink(conn, mode, maxFrameSize);
    },
  };
}

/** Connects, bounded by the timeout and the caller's signal; a connection won after either is closed. */
function connectBounded(
  connect: DenoConnect,
  options: { hostname: string; port: number; transport: 'tcp' },
  timeoutMs: number,
  signal: AbortSignal | undefined,
  where: string,
): Promise<DenoConnLike> {
  return new Promise<DenoConnLike>((resolve, reject) => {
    const attempt = new AbortController();
    let settled = false;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const giveUp = (error: unknown) => {
      if (settled) return;
      settle();
      attempt.abort(error);
      reject(error);
    };
    const timer = setTimeout(
      () =>
        giveUp(
          new ConnectFailedError(`connect to ${where} timed out after ${timeoutMs} ms`, {
            syscallCode: 'ETIMEDOUT',
          }),
        ),
      timeoutMs,
    );
    const onAbort = () => giveUp(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    connect({ ...options, signal: attempt.signal }).then(
      (conn) => {
        if (settled) {
          // Nobody waits for this connection any more (timed out, or the caller aborted).
          conn.close();
          return;
        }
        settle();
        resolve(conn);
      },
      (error: unknown) => {
        if (settled) return;
        settle();
        reject(
          new ConnectFailedError(
            `cannot connect to ${where}: ${error instanceof Error ? error.message : String(error)}`,
            {
              cause: error,
              syscallCode: syscallCodeOf(error),
            },
          ),
        );
      },
    );
  });
}
