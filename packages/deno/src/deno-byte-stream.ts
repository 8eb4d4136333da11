import type { ByteStream, ByteStreamInfo, ByteStreamSink } from '@lifeline/core/internal';
import type { DenoConnLike } from './deno-connect.js';
import { syscallCodeOf } from './deno-net-error.js';

/** Bytes asked for by each read. */
export const TCP_READ_BUFFER_BYTES = 64 * 1024;

/** Above this many bytes waiting to be written, {@link ByteStream.write} returns false. */
export const DENO_WRITE_HIGH_WATER_BYTES = 64 * 1024;

/**
 * A connected `Deno.Conn` as the core's {@link ByteStream}, the seam under the one TCP link:
 * a read loop into a 64 KiB buffer (copied per read, since the link keeps views of what it was
 * given), paused and resumed by a gate, and writes run one after another (`Deno.Conn.write` may
 * write part of a buffer) with the bytes waiting counted for backpressure.
 *
 * @example
 * ```ts
 * const link = createTcpLink(denoByteStream(await Deno.connect({ port: 7000 })), 'framed');
 * ```
 * @see createTcpLink
 */
export function denoByteStream(conn: DenoConnLike): ByteStream {
  return new DenoByteStream(conn);
}

class DenoByteStream implements ByteStream {
  readonly info: ByteStreamInfo;
  private sink: ByteStreamSink | undefined;
  /** Writes run one after another; each write's failure reaches its own `done`. */
  private writing: Promise<void> = Promise.resolve();
  private queuedBytes = 0;
  private released = false;
  private ending = false;
  private paused = false;
  /** Resolves the read loop's wait while paused. */
  private unpause: (() => void) | undefined;

  constructor(private readonly conn: DenoConnLike) {
    const local = conn.localAddr as { hostname?: string; port?: number } | undefined;
    const remote = conn.remoteAddr as { hostname?: string; port?: number } | undefined;
    this.info = {
      localAddress: local?.hostname,
      localPort: local?.port,
      remoteAddress: remote?.hostname,
      remotePort: remote?.port,
    };
  }

  get bufferedAmount(): number {
    return this.queuedBytes;
  }

  listen(sink: ByteStreamSink): void {
    this.sink = sink;
  }

  startReading(): void {
    void this.readLoop();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const unpause = this.unpause;
    this.unpause = undefined;
    unpause?.();
  }

  write(chunks: readonly Uint8Array[], done?: (error?: Error | null) => void): boolean {
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    this.queuedBytes += bytes;
    this.writing = this.writing.then(async () => {
      try {
        for (const chunk of chunks) await this.writeAll(chunk);
        done?.();
      } catch (error) {
        done?.(error instanceof Error ? error : new Error(String(error)));
      } finally {
        this.queuedBytes -= bytes;
      }
    });
    return this.queuedBytes <= DENO_WRITE_HIGH_WATER_BYTES;
  }

  end(): void {
    if (this.ending) return;
    this.ending = true;
    // Close once what was accepted reached the kernel (the link's linger bounds the wait).
    void this.writing.then(() => this.destroy());
  }

  destroy(): void {
    if (this.released) return;
    this.released = true;
    try {
      this.conn.close();
    } catch {
      // Already closed by the runtime (the peer reset it): the resource is gone either way.
    }
    this.resume();
    this.sink?.close();
  }

  setNoDelay(noDelay: boolean): void {
    this.conn.setNoDelay?.(noDelay);
  }

  private async writeAll(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      if (this.released) throw new Error('the connection is closed');
      try {
        offset += await this.conn.write(offset === 0 ? data : data.subarray(offset));
      } catch (error) {
        throw withSyscallCode(error);
      }
    }
  }

  private async readLoop(): Promise<void> {
    const buffer = new Uint8Array(TCP_READ_BUFFER_BYTES);
    while (!this.released) {
      if (this.paused) {
        await new Promise<void>((resolve) => {
          this.unpause = resolve;
        });
        continue;
      }
      let read: number | null;
      try {
        read = await this.conn.read(buffer);
      } catch (error) {
        // After our own destroy() the read is interrupted on purpose: nobody is told.
        if (!this.released) this.sink!.error(error, syscallCodeOf(error));
        return;
      }
      if (this.released) return;
      if (read === null) {
        this.sink!.end();
        return;
      }
      // A copy per read: the link hands out views of the chunks it is given, so the read buffer
      // must not be reused under them.
      this.sink!.data(buffer.slice(0, read));
    }
  }
}

/** The error with the errno of `Deno.errors.*` as its `code`, which `LinkFailedError` reads. */
function withSyscallCode(error: unknown): Error {
  const failure = error instanceof Error ? error : new Error(String(error));
  const code = syscallCodeOf(error);
  if (code !== undefined && (failure as { code?: unknown }).code === undefined) {
    try {
      (failure as { code?: string }).code = code;
    } catch {
      // A frozen error keeps its own shape: the link's error then carries no errno.
    }
  }
  return failure;
}
