import { createConnection } from 'node:net';
import {
  after,
  ConnectFailedError,
  checkTcpMessage,
  resolveTcpOptions,
  type TcpOptions,
  type Transport,
} from '@lifeline/core/internal';
import { createTcpLink, type TcpLink } from './tcp-link.js';

/** Where and how {@link tcpTransport} connects: the runtime-neutral {@link TcpOptions}. */
export type TcpTransportOptions = TcpOptions;

/** A transport whose links are {@link TcpLink}s. */
export interface TcpTransport extends Transport<Uint8Array, Uint8Array> {
  open(signal?: AbortSignal): Promise<TcpLink>;
}

export {
  DEFAULT_TCP_CONNECT_TIMEOUT_MS,
  DEFAULT_TCP_HOST,
  DEFAULT_TCP_MODE,
  DEFAULT_TCP_NO_DELAY,
} from '@lifeline/core/internal';

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
  const { host, port, mode, maxFrameSize, connectTimeoutMs, noDelay } = resolveTcpOptions(options);
  const where = `${host}:${port}`;

  return {
    check: checkTcpMessage,
    open(signal?: AbortSignal): Promise<TcpLink> {
      return new Promise<TcpLink>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const socket = createConnection({ host, port, noDelay });
        const cleanup = () => {
          timer.unsubscribe();
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
        const timer = after(
          connectTimeoutMs,
          () =>
            fail(
              new ConnectFailedError(`connect to ${where} timed out after ${connectTimeoutMs} ms`, {
                syscallCode: 'ETIMEDOUT',
              }),
            ),
          options.scheduler,
        );
        socket.once('connect', onConnect);
        socket.once('error', onError);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
