import type { Socket } from 'node:net';
import {
  createTcpLink as createByteStreamLink,
  DEFAULT_MAX_FRAME_SIZE,
  type TcpLink,
  type TcpLinkOptions,
  type TcpMode,
} from '@lifeline/core/internal';
import { nodeByteStream } from './node-byte-stream.js';

/** How a TCP link cuts the byte stream into messages. */
export type { TcpLink, TcpLinkOptions, TcpMode } from '@lifeline/core/internal';
export { TCP_CLOSE_LINGER_MS } from '@lifeline/core/internal';

/**
 * Wraps a connected `net.Socket` as a {@link TcpLink}: the core's one TCP link (framing, pings,
 * per-tick write batching, close linger) over {@link nodeByteStream}. Reading starts at the first
 * subscription to `messages$`. In framed mode a send over `maxFrameSize` rejects with an
 * irrecoverable `FrameTooLargeError` and ends the link.
 *
 * @example
 * ```ts
 * const socket = net.connect({ port });
 * socket.once('connect', () => useLink(createTcpLink(socket, 'framed', 1024 * 1024)));
 * ```
 * @see tcpTransport, which opens sockets and wraps them with this.
 */
export function createTcpLink(
  socket: Socket,
  mode: TcpMode,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
  options?: TcpLinkOptions,
): TcpLink {
  return createByteStreamLink(nodeByteStream(socket), mode, maxFrameSize, options);
}
