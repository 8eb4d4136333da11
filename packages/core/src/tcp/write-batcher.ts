import type { ByteStream } from './byte-stream.js';
import { FRAME_HEADER_BYTES, type FrameType, writeFrameHeader } from './length-prefixed-framing.js';

/** Payloads at least this large are written as they are, beside their header, instead of copied. */
export const WRITE_COPY_LIMIT = 2_048;

const allocateZeroed = (size: number): Uint8Array => new Uint8Array(size);

/**
 * Gathers what a link writes during one tick (until the stream's `defer` runs) and hands it to the
 * stream at once: small messages are copied, with their frame headers, into one buffer; large
 * payloads go in place beside it, all in one {@link ByteStream.write}, which Node turns into one
 * writev under a cork. A burst of small sends (a loop, or one send per message of a chunk just
 * read) costs one syscall and one write callback instead of one each.
 *
 * Sends settle together, in order, when the stream reports the batch written.
 *
 * @example
 * ```ts
 * const batcher = new WriteBatcher(stream, true);
 * const written = new Promise<void>((resolve, reject) => batcher.enqueue(payload, FrameType.Data, resolve, reject));
 * ```
 * @see createTcpLink
 */
export class WriteBatcher {
  private payloads: Uint8Array[] = [];
  private types: FrameType[] = [];
  private resolvers: (() => void)[] = [];
  private rejecters: ((error: unknown) => void)[] = [];
  /** Bytes of the coalesced buffer the queued writes need (headers, and small payloads). */
  private copyBytes = 0;
  private queued = 0;
  private scheduled = false;
  private readonly defer: (task: () => void) => void;
  private readonly allocate: (size: number) => Uint8Array;

  constructor(
    private readonly stream: ByteStream,
    /** Frames each payload (`true`), or writes the bytes as they are. */
    private readonly framed: boolean,
    /** Turns a stream write error into what the sends reject with. */
    private readonly describe: (error: Error) => unknown = (error) => error,
  ) {
    // Called as plain functions (see ByteStream.defer): no bound wrapper on the send path.
    this.defer = stream.defer ?? queueMicrotask;
    this.allocate = stream.allocate ?? allocateZeroed;
  }

  /** Bytes queued and not yet handed to the stream. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Queues one write; `resolve`/`reject` (optional) settle when its batch was written or failed. */
  enqueue(
    payload: Uint8Array,
    type: FrameType,
    resolve?: () => void,
    reject?: (error: unknown) => void,
  ): void {
    this.payloads.push(payload);
    this.types.push(type);
    const length = payload.length;
    const header = this.framed ? FRAME_HEADER_BYTES : 0;
    this.copyBytes += length < WRITE_COPY_LIMIT ? header + length : header;
    this.queued += header + length;
    if (resolve) {
      this.resolvers.push(resolve);
      this.rejecters.push(reject!);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.flush);
    }
  }

  /** Hands everything queued to the stream now. Idempotent; the scheduled flush then finds nothing. */
  readonly flush = (): void => {
    this.scheduled = false;
    const count = this.payloads.length;
    if (count === 0) return;
    const { payloads, types, resolvers, rejecters, framed } = this;
    // Only empty unframed payloads need no buffer at all.
    const buffer = this.copyBytes > 0 ? this.allocate(this.copyBytes) : undefined;
    this.reset();
    const chunks: Uint8Array[] = [];
    let start = 0;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const payload = payloads[i]!;
      const length = payload.length;
      if (framed) {
        writeFrameHeader(buffer!, offset, length, types[i]!);
        offset += FRAME_HEADER_BYTES;
      }
      if (length < WRITE_COPY_LIMIT) {
        if (length > 0) buffer!.set(payload, offset);
        offset += length;
        continue;
      }
      if (offset > start) chunks.push(buffer!.subarray(start, offset));
      chunks.push(payload);
      start = offset;
    }
    if (offset > start) chunks.push(buffer!.subarray(start, offset));
    if (chunks.length === 0) {
      // Nothing but empty stream-mode messages: written, trivially.
      for (const resolve of resolvers) resolve();
      return;
    }
    this.stream.write(
      chunks,
      resolvers.length === 0
        ? undefined
        : (error) => {
            if (error) {
              const reason = this.describe(error);
              for (const reject of rejecters) reject(reason);
            } else for (const resolve of resolvers) resolve();
          },
    );
  };

  /** Drops what is queued, rejecting its sends with `error`: the stream is gone. */
  fail(error: unknown): void {
    const rejecters = this.rejecters;
    this.reset();
    for (const reject of rejecters) reject(error);
  }

  private reset(): void {
    this.payloads = [];
    this.types = [];
    this.resolvers = [];
    this.rejecters = [];
    this.copyBytes = 0;
    this.queued = 0;
  }
}
