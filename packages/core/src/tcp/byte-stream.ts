/**
 * What a {@link ByteStream} tells its reader. Each call is made at most once, except `data`;
 * nothing is called after `close`.
 */
export interface ByteStreamSink {
  /**
   * A chunk read from the connection. The link may keep views of it (the frame decoder hands out
   * subarrays), so the stream must not reuse the memory behind a chunk it has delivered.
   */
  data(chunk: Uint8Array): void;
  /** The peer ended its side of the connection (FIN, or a read that returned end of stream). */
  end(): void;
  /** Reading or the connection failed: `error` is the runtime's error, `syscallCode` its errno (ECONNRESET...). */
  error(error: unknown, syscallCode?: string): void;
  /** The connection's resource is released (the socket's 'close'; `Deno.Conn.close()`). */
  close(): void;
}

/** Where a {@link ByteStream} is connected, for `Link.info`. */
export interface ByteStreamInfo {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

/**
 * The seam between Lifeline's TCP link (framing, pings, batching, backpressure, close linger: all
 * written once, in core) and a runtime's connected socket: Node's `net.Socket` and Deno's
 * `Deno.Conn` each get a thin adapter that implements this (`@lifeline/node/tcp`, `@lifeline/deno`).
 * A TLS socket, a Unix socket or a test double can implement it too.
 *
 * The link calls {@link ByteStream.listen} once, right away, then {@link ByteStream.startReading}
 * at the first subscription to its messages, so nothing read is lost before someone listens.
 *
 * @example
 * ```ts
 * const link = createTcpLink(myByteStream, 'framed');
 * link.messages$.subscribe((payload) => console.log(payload.length));
 * ```
 * @see createTcpLink
 */
export interface ByteStream {
  /** Registers the sink. Called once, before anything else; no `data` is delivered before {@link startReading}. */
  listen(sink: ByteStreamSink): void;
  /** Starts delivering `data`. Called once. A stream paused before keeps holding its data until {@link resume}. */
  startReading(): void;
  /**
   * Stops reading: what the peer sends waits in the kernel's buffers, and once they are full TCP's
   * flow control stops the peer. Idempotent.
   */
  pause(): void;
  /** Reads again after {@link pause}. Idempotent. */
  resume(): void;
  /**
   * Hands `chunks` to the connection in order, as one gathered write where the runtime can
   * (writev). `done`, when given, is called exactly once: without an argument once every chunk was
   * written, or with the error that stopped it. The chunks are not touched after `done`.
   * Returns false while {@link bufferedAmount} is above the stream's high-water mark.
   */
  write(chunks: readonly Uint8Array[], done?: (error?: Error | null) => void): boolean;
  /** Bytes given to {@link write} and not yet taken by the OS. */
  readonly bufferedAmount: number;
  /** Closes after what was written is flushed (FIN); the sink's `close` follows once the resource is released. */
  end(): void;
  /** Closes at once, dropping what was not written; the sink's `close` follows. Idempotent. */
  destroy(): void;
  /** Disables (true) or enables Nagle's algorithm, where the connection has it. */
  setNoDelay?(noDelay: boolean): void;
  /** The connection's addresses, read once when the link is created. */
  readonly info: ByteStreamInfo;
  /**
   * Runs `task` once the current run of synchronous work (and the promise reactions it set off) is
   * over: the link gathers the sends made until then into one write. Node: `process.nextTick`.
   * Called as a plain function, without `this`.
   * @default queueMicrotask
   */
  readonly defer?: (task: () => void) => void;
  /**
   * A writable buffer of `size` bytes whose contents may be left uninitialised (the link writes
   * every byte of it). Node: `Buffer.allocUnsafe`, from its pool. Called as a plain function,
   * without `this`.
   * @default `new Uint8Array(size)`
   */
  readonly allocate?: (size: number) => Uint8Array;
}
