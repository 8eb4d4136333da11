import {
  createTcpLink as createByteStreamLink,
  DEFAULT_MAX_FRAME_SIZE,
  type TcpLink,
  type TcpLinkOptions,
  type TcpMode,
} from '@lifeline/core/internal';
import { denoByteStream } from './deno-byte-stream.js';
import type { DenoConnLike } from './deno-connect.js';

/** How a TCP link cuts the byte stream into messages. */
export type { TcpLink, TcpLinkOptions, TcpMode } from '@lifeline/core/internal';
export { TCP_CLOSE_LINGER_MS } from '@lifeline/core/internal';
export { TCP_READ_BUFFER_BYTES } from './deno-byte-stream.js';

/**
 * Wraps a connected `Deno.Conn` as a {@link TcpLink}: the core's one TCP link (the same framing,
 * pings, batching, close linger and frame limits as `@lifeline/node/tcp`) over
 * {@link denoByteStream}. Reading starts at the first subscription to `messages$`. In framed mode a
 * send over `maxFrameSize` rejects with an irrecoverable `FrameTooLargeError` and ends the link.
 *
 * @example
 * ```ts
 * const link = createTcpLink(await Deno.connect({ port: 7000 }), 'framed');
 * link.messages$.subscribe((payload) => console.log(payload.length));
 * ```
 * @see tcpTransport, which connects and wraps with this.
 */
export function createTcpLink(
  conn: DenoConnLike,
  mode: TcpMode,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
  options?: TcpLinkOptions,
): TcpLink {
  return createByteStreamLink(denoByteStream(conn), mode, maxFrameSize, options);
}
