import { createConnection } from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';
import {
  ConnectFailedError,
  DEFAULT_MAX_FRAME_SIZE,
  InvalidOptionError,
  MAX_ENCODABLE_FRAME_SIZE,
  type Transport,
} from '@lifeline/core';
import { createTcpLink, type TcpLink, type TcpMode } from './tcp-link.js';

/** Where and how {@link tcpTransport} connects. */
export interface TcpTransportOptions {
  /** The server's host name or address. @default '127.0.0.1' */
  host?: string;
  /** The server's port. */
  port: number;
  /**
   * `'framed'`: every message is one length-prefixed frame (see `docs/tcp.md`), and the link can
   * ping. `'stream'`: bytes as they come; a message is whatever chunk the socket read.
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
}

/** A transport whose links are {@link TcpLink}s. */
export interface TcpTransport extends Transport<Uint8Array, Uint8Array> {
  open(signal?: AbortSignal): Promise<TcpLink>;
}

export const DEFAULT_TCP_HOST = '127.0.0.1';
export const DEFAULT_TCP_MODE: TcpMode = 'framed';
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_TCP_NO_DELAY = true;

/**
 * A transport over `node:net`: each `open()` connects a new socket and resolves with a
 * {@link TcpLink} once it is connected. A refused or unreachable connect rejects with a
 * `ConnectFailedError` carrying the OS code (ECONNREFUSED...), which recovery retries.
 *
 * @example
 * ```ts
 * import { attach } from '@lifeline/core';
 * import { tcpTransport } from '@lifeline/node/tcp';
 * const conn = attach(tcpTransport({ port: 7000 }), { heartbeat: { intervalMs: 5_000, timeoutMs: 15_000 } });
 * await conn.send(new TextEncoder().encode('hello'));
 * ```
 * @see connectTcp for the same in one call, and HATcpSocket for a `net.Socket`-shaped stream.
 */
export function tcpTransport(options: TcpTransportOptions): TcpTransport {
  const host = options.host ?? DEFAULT_TCP_HOST;
  const { port } = options;
  const mode = options.mode ?? DEFAULT_TCP_MODE;
  const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS;
  const noDelay = options.noDelay ?? DEFAULT_TCP_NO_DELAY;
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
    open(signal?: AbortSignal): Promise<TcpLink> {
      return new Promise<TcpLink>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const socket = createConnection({ host, port, noDelay });
        const cleanup = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          socket.off('error', onError);
          socket.off('connect', onConnect);
        };
        const fail = (error: unknown) => {
          cleanup();
          // Settle once the handle is released, so a connection closed mid-open leaves nothing behind.
          socket.once('close', () => reject(error));
          socket.destroy();
        };
        const onConnect = () => {
          cleanup();
          resolve(createTcpLink(socket, mode, maxFrameSize));
        };
        const onError = (error: NodeJS.ErrnoException) =>
          fail(new ConnectFailedError(`cannot connect to ${where}: ${error.message}`, { cause: error }));
        const onAbort = () => fail(signal!.reason);
        const timer = setTimeout(
          () =>
            fail(
              new ConnectFailedError(`connect to ${where} timed out after ${connectTimeoutMs} ms`, {
                syscallCode: 'ETIMEDOUT',
              }),
            ),
          connectTimeoutMs,
        );
        socket.once('connect', onConnect);
        socket.once('error', onError);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
