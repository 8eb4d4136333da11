import { createServer, type Server, type ServerOpts } from 'node:net';
import { FramedSocket, type FramedSocketOptions } from './framed-socket.js';

/** Options of {@link createFramedServer}: the frame options plus `net.createServer`'s. */
export interface FramedServerOptions extends FramedSocketOptions {
  /** Passed to `net.createServer`. @default { noDelay: true } */
  server?: ServerOpts;
}

/**
 * A `net.Server` speaking Lifeline's framed protocol: each accepted socket is wrapped in a
 * {@link FramedSocket}, which answers pings by itself.
 *
 * @example
 * ```ts
 * const server = createFramedServer((peer) => {
 *   peer.on('message', (payload) => peer.send(payload)); // echo
 * });
 * server.listen(7000);
 * ```
 * @see FramedSocket
 */
export function createFramedServer(
  onConnection: (peer: FramedSocket) => void,
  options: FramedServerOptions = {},
): Server {
  return createServer({ noDelay: true, ...options.server }, (socket) => {
    onConnection(new FramedSocket(socket, options));
  });
}
