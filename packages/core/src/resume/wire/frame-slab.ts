/** Bytes of one slab: 8 KiB, as Node's `Buffer.poolSize`. */
export const FRAME_SLAB_BYTES = 8_192;
/** The longest frame cut from a slab: frames of half a slab or more get their own buffer. */
export const MAX_SLAB_FRAME_BYTES = FRAME_SLAB_BYTES / 2 - 1;

/**
 * Where small DATA frames are cut from: views of a shared 8 KiB slab, as Node's `Buffer` pool
 * does. V8 gives every `Uint8Array` above 64 bytes its own `ArrayBuffer` (~1 us each); a view of a
 * slab costs ~0.2 us. Used by the client endpoint, whose frames the server acknowledges in order,
 * so the slabs behind a session's window are released as it is acknowledged.
 *
 * Retention: the pool itself holds at most one slab (the current one, {@link FRAME_SLAB_BYTES}).
 * A slab it has moved past stays alive while any frame cut from it does (a frame in a replay
 * window): at most one slab per unacknowledged pooled frame, so a window of `n` unacknowledged
 * frames under {@link MAX_SLAB_FRAME_BYTES} pins at most `min(n, slabs spanned) x 8 KiB`; one
 * session acknowledged in order pins its window's bytes plus at most two slabs.
 *
 * A frame is a view: whoever keeps it past the window (a store) or hands it to an API that
 * transfers or structured-clones its `ArrayBuffer` (postMessage, IndexedDB, a byte stream's
 * `enqueue`) must copy the view's bytes first, or it would take the whole slab. Bytes once handed
 * out are never written again (the pool only writes past its offset).
 */
export class FrameSlab {
  private slab: Uint8Array | undefined;
  private offset = 0;

  /** Bytes left in the current slab (0 before the first). */
  get remaining(): number {
    return this.slab ? this.slab.length - this.offset : 0;
  }

  /**
   * Makes room for a frame of up to `room` bytes at the current offset (a new slab when the
   * current one has less); {@link commit} then takes what was written. `room` must be at most
   * {@link FRAME_SLAB_BYTES}.
   */
  reserve(room: number): void {
    if (this.remaining < room) {
      this.slab = new Uint8Array(FRAME_SLAB_BYTES);
      this.offset = 0;
    }
  }

  /** A frame of `length` bytes (at most {@link FRAME_SLAB_BYTES}): {@link reserve} then {@link commit}. */
  take(length: number): Uint8Array {
    this.reserve(length);
    return this.commit(length);
  }

  /** Bytes `from` to `to` of the room {@link reserve} made (where a string is encoded). */
  area(from: number, to: number): Uint8Array {
    return this.slab!.subarray(this.offset + from, this.offset + to);
  }

  /** Takes `length` bytes of the view {@link reserve} made: the frame, a view of the slab. */
  commit(length: number): Uint8Array {
    const frame = this.slab!.subarray(this.offset, this.offset + length);
    // Aligned to 8 bytes as Node's pool is: the next frame starts on a word.
    this.offset = Math.min(this.slab!.length, (this.offset + length + 7) & ~7);
    return frame;
  }
}

/** The pool every client endpoint in this realm shares: one current slab in all. */
export const clientFrameSlab = /* @__PURE__ */ new FrameSlab();
