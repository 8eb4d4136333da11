import type { Socket } from 'node:net';
import { FRAME_HEADER_BYTES, type FrameType, writeFrameHeader } from '@lifeline/core/internal';

/** Payloads at least this large are written as they are, beside their header, instead of copied. */
export const WRITE_COPY_LIMIT = 2_048;

/** Settles the sends of one batch. */
type Settle = (error?: Error | null) => void;

/**
 * Gathers what a link writes during one tick and hands it to the socket at the end of the tick:
 * small messages are copied, with their frame headers, into one buffer; large payloads are written
 * in place beside it, all under one cork, so the batch leaves in one writev. A burst of small sends
 * (a loop, or one send per message of a chunk just read) costs one syscall and one write callback
 * instead of one each.
 *
 * Sends settle together, in order, when the socket reports the batch written.
 *
 * @example
 * ```ts
 * const batcher = new WriteBatcher(socket, true);
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

  constructor(
    private readonly socket: Socket,
    /** Frames each payload (`true`), or writes the bytes as they are. */
    private readonly framed: boolean,
    /** Turns a socket write error into what the sends reject with. */
    private readonly describe: (error: Error) => unknown = (error) => error,
  ) {}

  /** Bytes queued and not yet handed to the socket. */
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
      process.nextTick(this.flush);
    }
  }

  /** Hands everything queued to the socket now. Idempotent; the scheduled flush then finds nothing. */
  readonly flush = (): void => {
    this.scheduled = false;
    const count = this.payloads.length;
    if (count === 0) return;
    const { payloads, types, resolvers, rejecters } = this;
    const buffer = this.copyBytes > 0 ? Buffer.allocUnsafe(this.copyBytes) : undefined;
    this.reset();
    const socket = this.socket;
    const chunks: Uint8Array[] = [];
    let start = 0;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const payload = payloads[i]!;
      const length = payload.length;
      if (this.framed) {
        writeFrameHeader(buffer!, offset, length, types[i]!);
        offset += FRAME_HEADER_BYTES;
      }
      if (length < WRITE_COPY_LIMIT) {
        buffer!.set(payload, offset);
        offset += length;
        continue;
      }
      if (offset > start) chunks.push(buffer!.subarray(start, offset));
      chunks.push(payload);
      start = offset;
    }
    if (offset > start) chunks.push(buffer!.subarray(start, offset));
    const settle: Settle | undefined =
      resolvers.length === 0
        ? undefined
        : (error) => {
            if (error) {
              const reason = this.describe(error);
              for (const reject of rejecters) reject(reason);
            } else for (const resolve of resolvers) resolve();
          };
    if (chunks.length === 1) {
      socket.write(chunks[0]!, settle);
      return;
    }
    socket.cork();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    socket.write(chunks[last]!, settle);
    socket.uncork();
  };

  /** Drops what is queued, rejecting its sends with `error`: the socket is gone. */
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
