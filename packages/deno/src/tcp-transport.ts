import {
  after,
  ConnectFailedError,
  checkTcpMessage,
  resolveTcpOptions,
  type TcpOptions,
  type Transport,
} from '@lifeline/core/internal';
import type { SchedulerLike } from 'rxjs';
import { type DenoConnect, type DenoConnLike, denoConnect } from './deno-connect.js';
import { syscallCodeOf } from './deno-net-error.js';
import { createTcpLink, type TcpLink } from './tcp-link.js';

/** Where and how {@link tcpTransport} connects: the runtime-neutral {@link TcpOptions}, plus `connect`. */
export interface TcpTransportOptions extends TcpOptions {
  /** Opens the connection. @default {@link denoConnect}: `Deno.connect`, read when called */
  connect?: DenoConnect;
}

export {
  DEFAULT_TCP_CONNECT_TIMEOUT_MS,
  DEFAULT_TCP_HOST,
  DEFAULT_TCP_MODE,
  DEFAULT_TCP_NO_DELAY,
} from '@lifeline/core/internal';

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
  const { host, port, mode, maxFrameSize, connectTimeoutMs, noDelay } = resolveTcpOptions(options);
  const connect = options.connect ?? denoConnect;
  const where = `${host}:${port}`;

  return {
    check: checkTcpMessage,
    async open(signal?: AbortSignal): Promise<TcpLink> {
      signal?.throwIfAborted();
      const conn = await connectBounded(
        connect,
        { hostname: host, port, transport: 'tcp' },
        connectTimeoutMs,
        signal,
        options.scheduler,
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
  scheduler: SchedulerLike | undefined,
  where: string,
): Promise<DenoConnLike> {
  return new Promise<DenoConnLike>((resolve, reject) => {
    const attempt = new AbortController();
    let settled = false;
    const settle = () => {
      settled = true;
      timer.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    };
    const giveUp = (error: unknown) => {
      if (settled) return;
      settle();
      attempt.abort(error);
      reject(error);
    };
    const timer = after(
      timeoutMs,
      () =>
        giveUp(
          new ConnectFailedError(`connect to ${where} timed out after ${timeoutMs} ms`, {
            syscallCode: 'ETIMEDOUT',
          }),
        ),
      scheduler,
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
