import { type AttachOptions, attach, type HAConnection } from '@lifeline/core/internal';
import { type TcpTransportOptions, tcpTransport } from './tcp-transport.js';

/** Options of {@link connectTcp}: where to connect, and how to recover. */
export interface ConnectTcpOptions<H = undefined>
  extends TcpTransportOptions,
    AttachOptions<Uint8Array, Uint8Array, H> {}

/**
 * Opens a highly available TCP connection: {@link tcpTransport} under `attach`, in one call.
 *
 * @example
 * ```ts
 * const conn = connectTcp({ port: 7000, maxAttemptsPerFailure: 20, heartbeat: { intervalMs: 5_000, timeoutMs: 15_000 } });
 * conn.messages$.subscribe((payload) => console.log(payload.length));
 * await conn.send(new TextEncoder().encode('hello'));
 * ```
 * @see tcpTransport
 */
export function connectTcp<H = undefined>(
  options: ConnectTcpOptions<H>,
): HAConnection<Uint8Array, Uint8Array> {
  return attach(tcpTransport(options), options);
}
