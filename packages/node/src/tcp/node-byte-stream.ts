import type { Socket } from 'node:net';
import type { ByteStream, ByteStreamSink } from '@lifeline/core/internal';

/**
 * A connected `net.Socket` as the core's {@link ByteStream}, the seam under the one TCP link:
 * `write` gathers its chunks under one cork (one writev), backpressure is `writableLength`,
 * `defer` is `process.nextTick` (so the sends of one tick, promise reactions included, leave
 * together) and buffers come from `Buffer`'s pool.
 *
 * @example
 * ```ts
 * const link = createTcpLink(nodeByteStream(socket), 'framed');
 * ```
 * @see createTcpLink
 */
export function nodeByteStream(socket: Socket): ByteStream {
  return new NodeByteStream(socket);
}

class NodeByteStream implements ByteStream {
  private sink: ByteStreamSink | undefined;

  constructor(private readonly socket: Socket) {}

  get info() {
    const { localAddress, localPort, remoteAddress, remotePort } = this.socket;
    return { localAddress, localPort, remoteAddress, remotePort };
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  listen(sink: ByteStreamSink): void {
    this.sink = sink;
    const socket = this.socket;
    socket.once('close', () => sink.close());
    socket.on('error', (error: NodeJS.ErrnoException) => sink.error(error, error.code));
    socket.on('end', () => sink.end());
  }

  startReading(): void {
    this.socket.on('data', this.sink!.data);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  write(chunks: readonly Uint8Array[], done?: (error?: Error | null) => void): boolean {
    const socket = this.socket;
    if (chunks.length === 1) return socket.write(chunks[0]!, done);
    socket.cork();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    const below = socket.write(chunks[last]!, done);
    socket.uncork();
    return below;
  }

  end(): void {
    this.socket.destroySoon();
  }

  destroy(): void {
    this.socket.destroy();
  }

  setNoDelay(noDelay: boolean): void {
    this.socket.setNoDelay(noDelay);
  }

  // Own properties holding the functions themselves: the batcher calls them once per batch, on
  // the send path, with no wrapper in between.
  readonly defer: (task: () => void) => void = process.nextTick;
  readonly allocate: (size: number) => Uint8Array = Buffer.allocUnsafe;
}
