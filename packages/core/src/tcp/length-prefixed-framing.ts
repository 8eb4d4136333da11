import { FrameTooLargeError, MalformedFrameError } from '../engine/errors.js';

/**
 * The kind of a length-prefixed frame, carried in the byte after the length.
 * `Ping` and `Pong` carry an opaque payload; a pong echoes the payload of the ping it answers.
 */
export const FrameType = {
  /** An application message. */
  Data: 0,
  /** Asks the peer for a sign of life; the peer must answer with a `Pong` frame. */
  Ping: 1,
  /** The answer to a `Ping`. */
  Pong: 2,
} as const;

/** One of the {@link FrameType} values. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/**
 * Bytes before the payload: a 4-byte big-endian unsigned payload length, then the 1-byte type.
 * The length counts the payload only, not the header.
 */
export const FRAME_HEADER_BYTES = 5;

/** The largest payload a {@link FrameDecoder} accepts unless told otherwise: 16 MiB. */
// A literal, not `16 * 1024 * 1024`: esbuild keeps an unused product in a client's bundle when
// this module shares a chunk with code the client uses (scripts/merge-esm-chunks.mjs).
export const DEFAULT_MAX_FRAME_SIZE = 16_777_216;

/**
 * The largest payload of a `Ping` or `Pong` frame: 125 bytes, the limit RFC 6455 (section 5.5) sets
 * for WebSocket control frames. A ping is answered with its payload echoed, so a peer that sends
 * large pings and never reads would otherwise make us hold its bytes a second time; a larger
 * control frame fails the stream with a {@link FrameTooLargeError}.
 * @see https://www.rfc-editor.org/rfc/rfc6455#section-5.5
 */
export const MAX_CONTROL_PAYLOAD_BYTES = 125;

/** The largest payload the 4-byte length can announce. */
export const MAX_ENCODABLE_FRAME_SIZE = 0xffff_ffff;

/**
 * Writes a frame header at `offset` of `target`, so a caller can lay out header and payload in a
 * buffer of its own (a pooled Node `Buffer`, say) without an extra copy.
 *
 * @example
 * ```ts
 * const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
 * writeFrameHeader(frame, 0, payload.length, FrameType.Data);
 * frame.set(payload, FRAME_HEADER_BYTES);
 * ```
 * @see encodeFrame
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  payloadLength: number,
  type: FrameType,
): void {
  if (!(payloadLength >= 0 && payloadLength <= MAX_ENCODABLE_FRAME_SIZE)) {
    throw new RangeError(
      `a frame payload must be 0 to ${MAX_ENCODABLE_FRAME_SIZE} bytes, got ${payloadLength}`,
    );
  }
  target[offset] = payloadLength >>> 24;
  target[offset + 1] = (payloadLength >>> 16) & 0xff;
  target[offset + 2] = (payloadLength >>> 8) & 0xff;
  target[offset + 3] = payloadLength & 0xff;
  target[offset + 4] = type;
}

/**
 * Encodes one frame: header then payload, in a new array.
 *
 * @example
 * ```ts
 * socket.write(encodeFrame(new TextEncoder().encode('hello')));
 * socket.write(encodeFrame(new Uint8Array(0), FrameType.Ping));
 * ```
 * @see FrameDecoder for the other direction.
 */
export function encodeFrame(payload: Uint8Array, type: FrameType = FrameType.Data): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(frame, 0, payload.length, type);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * The largest payload accepted, in bytes. A header announcing more fails the stream with a
   * {@link FrameTooLargeError} at once, before any of the body is buffered. `Ping` and `Pong`
   * payloads are limited to {@link MAX_CONTROL_PAYLOAD_BYTES} whatever this says.
   * @default {@link DEFAULT_MAX_FRAME_SIZE} (16 MiB)
   */
  maxFrameSize?: number;
}

/** Receives each decoded frame. */
export type FrameHandler = (payload: Uint8Array, type: FrameType) => void;

// Pure: dropped from a client's bundle that does not decode frames (see DEFAULT_MAX_FRAME_SIZE).
const NO_BODY = /* @__PURE__ */ new Uint8Array(0);

/**
 * Incremental decoder of length-prefixed frames. Chunks may split frames anywhere and carry many
 * frames each. A frame that lies whole inside one chunk is handed out as a view of that chunk; a
 * frame split across chunks is assembled into a buffer that grows with the bytes that arrived (never
 * to the announced size before its bytes came), so a header alone costs next to nothing. Chunks
 * must therefore not be mutated after they were pushed.
 *
 * A stream that breaks the format ({@link FrameTooLargeError}, {@link MalformedFrameError}) poisons
 * the decoder: that push and every later one throw the same error.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ maxFrameSize: 1024 * 1024 });
 * socket.on('data', (chunk) => decoder.push(chunk, (payload, type) => {
 *   if (type === FrameType.Data) handle(payload);
 * }));
 * ```
 * @see encodeFrame
 */
export class FrameDecoder {
  readonly maxFrameSize: number;
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** The frame being assembled across chunks, once its header is known. */
  private body: Uint8Array | undefined;
  private bodyLength = 0;
  private bodyFilled = 0;
  private bodyType: FrameType = FrameType.Data;
  private failure: Error | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    if (!(this.maxFrameSize >= 0 && this.maxFrameSize <= MAX_ENCODABLE_FRAME_SIZE)) {
      throw new RangeError(`maxFrameSize must be 0 to ${MAX_ENCODABLE_FRAME_SIZE}, got ${this.maxFrameSize}`);
    }
  }

  /** Bytes of an incomplete frame held back, waiting for the rest. */
  get bufferedBytes(): number {
    return this.body === undefined ? this.headerFilled : FRAME_HEADER_BYTES + this.bodyFilled;
  }

  /**
   * Decodes what `chunk` completes, calling `onFrame` for each whole frame in order.
   * Throws {@link FrameTooLargeError} or {@link MalformedFrameError} when the stream breaks the format.
   * An error thrown by `onFrame` propagates, and the rest of that chunk is not decoded.
   */
  push(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.failure) throw this.failure;
    const end = chunk.length;
    let offset = 0;
    while (offset < end) {
      if (this.body !== undefined) {
        offset = this.fillBody(chunk, offset, onFrame);
        continue;
      }
      if (this.headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // The common case: the header lies whole in this chunk; read it in place.
        const length = readLength(chunk, offset);
        const type = this.check(length, chunk[offset + 4]!);
        const start = offset + FRAME_HEADER_BYTES;
        if (end - start >= length) {
          offset = start + length;
          onFrame(length === 0 ? NO_BODY : chunk.subarray(start, offset), type);
          continue;
        }
        this.startBody(length, type, end - start);
        offset = start;
        continue;
      }
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, end - offset);
      this.header.set(chunk.subarray(offset, offset + take), this.headerFilled);
      this.headerFilled += take;
      offset += take;
      if (this.headerFilled < FRAME_HEADER_BYTES) return;
      this.headerFilled = 0;
      const length = readLength(this.header, 0);
      const type = this.check(length, this.header[4]!);
      if (length === 0) onFrame(NO_BODY, type);
      else this.startBody(length, type, end - offset);
    }
  }

  private check(length: number, type: number): FrameType {
    if (length > this.maxFrameSize) throw this.fail(new FrameTooLargeError(length, this.maxFrameSize));
    if (type > FrameType.Pong) throw this.fail(new MalformedFrameError(`unknown frame type ${type}`));
    if (type !== FrameType.Data && length > MAX_CONTROL_PAYLOAD_BYTES) {
      throw this.fail(new FrameTooLargeError(length, MAX_CONTROL_PAYLOAD_BYTES));
    }
    return type as FrameType;
  }

  private startBody(length: number, type: FrameType, available: number): void {
    // Memory follows the bytes that arrived, not the length a header announced: a peer that sends
    // headers (and a byte or two) on many connections must not make us reserve more than it sent.
    // The buffer starts at what this chunk holds and doubles as the body arrives, so each byte is
    // copied at most twice on the way.
    this.body = new Uint8Array(Math.min(length, Math.max(available, MIN_BODY_CAPACITY)));
    this.bodyLength = length;
    this.bodyFilled = 0;
    this.bodyType = type;
  }

  private fillBody(chunk: Uint8Array, offset: number, onFrame: FrameHandler): number {
    const take = Math.min(this.bodyLength - this.bodyFilled, chunk.length - offset);
    let body = this.body!;
    if (this.bodyFilled + take > body.length) {
      const grown = new Uint8Array(
        Math.min(this.bodyLength, Math.max(body.length * 2, this.bodyFilled + take)),
      );
      grown.set(body.subarray(0, this.bodyFilled));
      body = grown;
      this.body = grown;
    }
    body.set(chunk.subarray(offset, offset + take), this.bodyFilled);
    this.bodyFilled += take;
    if (this.bodyFilled === this.bodyLength) {
      this.body = undefined;
      this.bodyFilled = 0;
      onFrame(body, this.bodyType);
    }
    return offset + take;
  }

  private fail(error: Error): Error {
    this.failure = error;
    this.body = undefined;
    return error;
  }
}

/** The smallest first allocation for a frame body that spans chunks; it grows as the body arrives. */
const MIN_BODY_CAPACITY = 256;

function readLength(bytes: Uint8Array, offset: number): number {
  // `* 2 ** 24` rather than `<< 24`, which would turn lengths of 2 GiB and more negative.
  return (
    bytes[offset]! * 0x100_0000 +
    ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!)
  );
}
