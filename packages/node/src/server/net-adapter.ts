import type { Server, Socket } from 'node:net';
import { FRAME_HEADER_BYTES } from '@lifeline/core/internal/server';
import type { ResumeServer, ServerLinkPort } from '@lifeline/core/resume/server';
import { FramedSocket } from '../tcp/framed-socket.js';

/**
 * Feeds every connection of a `node:net` server to a resume server, framed with Lifeline's
 * length prefix (4-byte big-endian length, 1-byte type, then one resume frame): the framing of
 * `tcpTransport({ mode: 'framed' })`. Returns a function that stops taking new connections.
 *
 * @example
 * ```ts
 * const detach = attachNetServer(resumeServer, net.createServer().listen(0));
 * ```
 * @see createResumeServer
 */
export function attachNetServer(server: ResumeServer, netServer: Server): () => void {
  const onConnection = (socket: Socket) => {
    socket.setNoDelay(true);
    // The framing's own limit sits just above the protocol's, so an oversized frame is refused
    // before its body is buffered.
    const framed = new FramedSocket(socket, { maxFrameSize: server.maxFrameBytes + FRAME_HEADER_BYTES });
    const input = server.accept(new NetLinkPort(framed, socket));
    framed.on('message', (payload) => input.receive(payload));
    framed.on('error', (error) => input.error(error));
    framed.on('close', () => input.closed());
  };
  netServer.on('connection', onConnection);
  return () => netServer.off('connection', onConnection);
}

/** One framed TCP connection as the resume server writes to it (a class: no closures per connection). */
class NetLinkPort implements ServerLinkPort {
  readonly remoteAddress: string | undefined;

  constructor(
    private readonly framed: FramedSocket,
    private readonly socket: Socket,
  ) {
    this.remoteAddress = socket.remoteAddress;
  }

  send(frame: Uint8Array, written?: () => void): void {
    this.framed.send(frame, written);
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  close(_code: number, _reason: string, abrupt: boolean): void {
    if (abrupt) this.socket.destroy();
    else this.socket.end();
  }
}
