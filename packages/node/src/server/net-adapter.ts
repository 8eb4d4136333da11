import type { Server, Socket } from 'node:net';
import { FRAME_HEADER_BYTES } from '@lifeline/core/internal/server';
import type { ResumeServer, ServerLinkInput, ServerLinkPort } from '@lifeline/core/resume/server';
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
  // The peer's address is read (and `net` caches it, ~90 B per connection) only for a server that
  // limits sessions per address, as the `ws` adapter does.
  const byAddress = Number.isFinite(server.maxSessionsPerAddress);
  // The same three listeners for every connection of this server, finding the link by the socket
  // of the framed socket they are called on (`this`, as every EventEmitter does): three closures
  // and their context per connection were 208 B of an attached session's heap (docs/benchmarks.md,
  // "Attached session: where the heap goes"). Weakly held: a socket that is gone takes its entry.
  const inputs = new WeakMap<Socket, ServerLinkInput>();
  function onMessage(this: FramedSocket, payload: Uint8Array): void {
    inputs.get(this.socket)?.receive(payload);
  }
  function onError(this: FramedSocket, error: Error): void {
    inputs.get(this.socket)?.error(error);
  }
  function onClose(this: FramedSocket): void {
    const input = inputs.get(this.socket);
    inputs.delete(this.socket);
    input?.closed();
  }
  const onConnection = (socket: Socket) => {
    // A socket emitted twice (a user's own 'connection' handling): a second framing of it would
    // read every byte too, and a second link would take its entry. One socket, one link.
    if (inputs.has(socket)) return;
    socket.setNoDelay(true);
    // The framing's own limit sits just above the protocol's, so an oversized frame is refused
    // before its body is buffered.
    const framed = new FramedSocket(socket, { maxFrameSize: server.maxFrameBytes + FRAME_HEADER_BYTES });
    const input = server.accept(new NetLinkPort(framed, byAddress ? socket.remoteAddress : undefined));
    inputs.set(socket, input);
    framed.on('message', onMessage);
    framed.on('error', onError);
    framed.on('close', onClose);
  };
  netServer.on('connection', onConnection);
  return () => netServer.off('connection', onConnection);
}

/** One framed TCP connection as the resume server writes to it (a class: no closures per connection). */
class NetLinkPort implements ServerLinkPort {
  constructor(
    private readonly framed: FramedSocket,
    readonly remoteAddress: string | undefined,
  ) {}

  send(frame: Uint8Array, written?: () => void): void {
    this.framed.send(frame, written);
  }

  get bufferedAmount(): number {
    return this.framed.socket.writableLength;
  }

  close(_code: number, _reason: string, abrupt: boolean): void {
    if (abrupt) this.framed.socket.destroy();
    else this.framed.socket.end();
  }
}
