import type { IncomingMessage } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import type { LinkViolationReason, ResumeServer } from './resume-server.js';

/**
 * Feeds every connection of a `ws` WebSocketServer to a resume server: one binary message per
 * frame. Returns a function that stops taking new connections (existing ones run on).
 *
 * @example
 * ```ts
 * const detach = attachWebSocketServer(resumeServer, new WebSocketServer({ port: 0 }));
 * ```
 * @see createResumeServer
 */
export function attachWebSocketServer(server: ResumeServer, wss: WebSocketServer): () => void {
  const onConnection = (socket: WebSocket, request: IncomingMessage) => {
    socket.binaryType = 'nodebuffer';
    const input = server.accept({
      send: (frame) => socket.send(frame),
      close: (code, reason, abrupt) => {
        // A peer presumed gone will not answer a closing handshake: do not wait 30 s for it.
        if (abrupt) socket.terminate();
        else socket.close(code, reason);
      },
      remoteAddress: request.socket.remoteAddress,
    });
    socket.on('message', (data, isBinary) => input.receive(isBinary ? data : String(data)));
    // Errors are followed by 'close'; without a listener they would crash the process. `ws` emits
    // 'error' on a server socket only for what the peer sent against RFC 6455 (it closes the link
    // itself), which the server reports and counts.
    socket.on('error', (error) => input.violation(violationOf(error), error));
    socket.on('close', () => input.closed());
  };
  wss.on('connection', onConnection);
  return () => wss.off('connection', onConnection);
}

/** The reason for an error `ws` raised on what the peer sent (its `WS_ERR_*` codes). */
function violationOf(error: Error): LinkViolationReason {
  switch ((error as { code?: unknown }).code) {
    case 'WS_ERR_INVALID_UTF8':
      return 'invalid-utf8';
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return 'message-too-large';
    case 'WS_ERR_EXPECTED_MASK':
      return 'unmasked-frame';
    default:
      return 'invalid-frame';
  }
}
