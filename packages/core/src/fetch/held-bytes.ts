import { FrameTooLargeError } from '../engine/errors.js';

/**
 * Bytes of an incomplete record (an SSE event, an NDJSON line) held back from the reader until
 * the record is complete, so a break never delivers half of one. Bounded: holding more than
 * `maxBytes` throws a {@link FrameTooLargeError} (a peer that never ends a record cannot fill memory).
 */
export class HeldBytes {
  private chunks: Uint8Array[] = [];
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  get byteLength(): number {
    return this.total;
  }

  get parts(): readonly Uint8Array[] {
    return this.chunks;
  }

  hold(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.total += bytes.byteLength;
    if (this.total > this.maxBytes) throw new FrameTooLargeError(this.total, this.maxBytes);
  }

  /** Hands every held chunk to `deliver`, in order, and forgets them. */
  release(deliver: (bytes: Uint8Array) => void): void {
    for (const bytes of this.chunks) deliver(bytes);
    this.clear();
  }

  /** Forgets what was held; returns how many bytes that was. */
  clear(): number {
    const dropped = this.total;
    this.chunks = [];
    this.total = 0;
    return dropped;
  }
}
