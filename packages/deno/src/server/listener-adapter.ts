import { createTcpLink, FRAME_HEADER_BYTES, LinkClosedError, LinkFailedError } from '@lifeline/core/internal';
import type { ResumeServer } from '@lifeline/core/resume/server';
import { denoByteStream } from '../deno-byte-stream.js';
import type { DenoConnLike } from '../deno-connect.js';

/** What {@link attachDenoListener} reads connections from: a `Deno.Listener` (or anything that yields connections). */
export interface DenoListenerLike extends AsyncIterable<DenoConnLike> {}

/**
 * Feeds one accepted `Deno.Conn` to a resume server, framed with Lifeline's length prefix (the
 * framing of `tcpTransport({ mode: 'framed' })`) by the core's one TCP link over
 * {@link denoByteStream}: pings are answered, the sends of one tick leave in one write, and the
 * framing's limit sits just above the protocol's, so an oversized frame is refused from its header.
 *
 * @example
 * ```ts
 * for await (const conn of Deno.listen({ port: 7000 })) attachDenoConn(resumeServer, conn);
 * ```
 * @see attachDenoListener
 */
export function attachDenoConn(server: ResumeServer, conn: DenoConnLike): void {
  try {
    conn.setNoDelay?.(true);
  } catch {
    // Not every connection kind can: Nagle stays as it is.
  }
  const stream = denoByteStream(conn);
  const link = createTcpLink(stream, 'framed', server.maxFrameBytes + FRAME_HEADER_BYTES);
  const input = server.accept({
    send: (frame, written) => {
      const sent = link.send(frame);
      // A failed write fails the link, which the server hears as its end: nothing to report here.
      if (written) sent.then(written, written);
      else sent.catch(() => {});
    },
    get bufferedAmount() {
      return link.bufferedAmount ?? 0;
    },
    close: (_code, _reason, abrupt) => {
      if (abrupt) stream.destroy();
      else link.close();
    },
    remoteAddress: (conn.remoteAddr as { hostname?: string } | undefined)?.hostname,
  });
  link.messages$.subscribe({
    next: (payload) => input.receive(payload),
    error: (error: unknown) => {
      // A reset or the peer's FIN is just the end; a frame the framing refused is reported.
      if (!(error instanceof LinkClosedError || error instanceof LinkFailedError)) input.error(error);
      input.closed();
    },
    complete: () => input.closed(),
  });
}

/**
 * Feeds every connection of a `Deno.listen` listener to a resume server (see {@link attachDenoConn}).
 * Resolves when the listener is closed.
 *
 * @example
 * ```ts
 * void attachDenoListener(resumeServer, Deno.listen({ hostname: '127.0.0.1', port: 0 }));
 * ```
 * @see DenoResumeServer.listen
 */
export async function attachDenoListener(server: ResumeServer, listener: DenoListenerLike): Promise<void> {
  try {
    for await (const conn of listener) attachDenoConn(server, conn);
  } catch {
    // The listener was closed under the loop (Deno raises BadResource): serving is over.
  }
}
