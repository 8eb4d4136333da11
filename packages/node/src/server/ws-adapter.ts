import type { WebSocket, WebSocketServer } from 'ws';
import type { ResumeServer } from './resume-server.js';

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
  const onConnection = (socket: WebSocket) => {
    socket.binaryType = 'nodebuffer';
    const input = server.accept({
      send: (frame) => socket.send(frame),
      close: (code, reason, abrupt) => {
        // A peer presumed gone will not answer a closing handshake: do not wait 30 s for it.
        if (abrupt) socket.terminate();
        else socket.close(code, reason);
      },
    });
    socket.on('message', (data, isBinary) => input.receive(isBinary ? data : String(data)));
    // Errors are followed by 'close'; without a listener they would crash the process.
    socket.on('error', () => {});
    socket.on('close', () => input.closed());
  };
  wss.on('connection', onConnection);
  return () => wss.off('connection', onConnection);
}
