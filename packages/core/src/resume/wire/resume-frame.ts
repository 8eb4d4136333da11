import { FrameTooLargeError, MalformedFrameError, type SessionRejectCode } from '../../engine/errors.js';

/**
 * The resume protocol version this code speaks (see docs/protocol.md): 2 is version 1 plus the
 * GOAWAY frame, 3 is version 2 plus DATA flagged "the ack may wait" (DATA_TEXT_LAZY,
 * DATA_BINARY_LAZY). Both ends also speak every version down to
 * {@link MIN_RESUME_PROTOCOL_VERSION}: a server answers a HELLO with the lower of the two
 * versions, sends GOAWAY only on a link that negotiated 2 or more, and a flagged DATA frame goes
 * only on a link that negotiated 3.
 */
export const RESUME_PROTOCOL_VERSION = 3;
/** The oldest version this code still speaks (a version-1 peer never sees a GOAWAY). */
export const MIN_RESUME_PROTOCOL_VERSION = 1;
/** The longest GOAWAY URL hint, in UTF-8 bytes. */
export const MAX_GOAWAY_URL_BYTES = 2_048;
/** Bytes of a session id and of a session token: 128 bits each. */
export const SESSION_ID_BYTES = 16;
export const SESSION_TOKEN_BYTES = 16;
/** The longest REJECT or CLOSE reason, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 256;
/** Frames larger than this are refused unless configured otherwise: 1 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 1_048_576;
/** The most bytes a DATA frame header takes: type, then two varints of at most 8 bytes. */
export const MAX_DATA_HEADER_BYTES = 17;

/** The type byte that starts every frame. */
export const ResumeFrameType = {
  Hello: 0x01,
  Welcome: 0x02,
  Reject: 0x03,
  DataText: 0x10,
  DataBinary: 0x11,
  Ack: 0x20,
  Ping: 0x21,
  Pong: 0x22,
  Close: 0x30,
  /** Version 2: the server is going away; reconnect (after a delay, to a URL, if given). */
  GoAway: 0x31,
} as const;

/**
 * What a DATA type byte adds for "the ack may wait" (version 3: DATA whose sender does not wait for
 * its acknowledgement, see docs/protocol.md): DATA_TEXT 0x10 -> DATA_TEXT_LAZY 0x12, DATA_BINARY
 * 0x11 -> DATA_BINARY_LAZY 0x13. Not in {@link ResumeFrameType}: a frame's `type` is 'data' either
 * way, with `lazy` set.
 */
export const LAZY_DATA_FLAG = 2;

/** REJECT codes on the wire, by name. */
export const REJECT_CODES: Readonly<Record<SessionRejectCode, number>> = Object.freeze({
  'unknown-session': 1,
  'invalid-token': 2,
  'unsupported-version': 3,
  'too-many-sessions': 4,
  'protocol-error': 5,
});

const REJECT_NAMES: ReadonlyMap<number, SessionRejectCode> = new Map(
  Object.entries(REJECT_CODES).map(([name, code]) => [code, name as SessionRejectCode]),
);

/** A decoded frame. */
export type ResumeFrame =
  | {
      readonly type: 'hello';
      readonly version: number;
      /** Present when the client asks to resume. */
      readonly resume: { readonly id: Uint8Array; readonly token: Uint8Array } | undefined;
      readonly lastReceived: number;
    }
  | {
      readonly type: 'welcome';
      readonly version: number;
      readonly resumed: boolean;
      readonly id: Uint8Array;
      readonly token: Uint8Array;
      readonly lastReceived: number;
    }
  | { readonly type: 'reject'; readonly code: SessionRejectCode; readonly reason: string }
  | {
      readonly type: 'data';
      readonly seq: number;
      readonly ack: number;
      readonly data: string | Uint8Array;
      /** Version 3: the sender does not wait for this message's acknowledgement (DATA_*_LAZY). */
      readonly lazy: boolean;
    }
  | { readonly type: 'ack'; readonly ack: number }
  | { readonly type: 'ping' }
  | { readonly type: 'pong' }
  | { readonly type: 'close'; readonly code: number; readonly reason: string }
  | {
      readonly type: 'goaway';
      /** Wait this long before reconnecting, in ms (0: at once). */
      readonly delayMs: number;
      /** Where to reconnect, if the server names a place (empty: anywhere, e.g. the same address). */
      readonly url: string;
    };

let encoder: TextEncoder | undefined;
let decoder: TextDecoder | undefined;
// Created on first use: core touches no global at import time.
const textEncoder = () => (encoder ??= new TextEncoder());
const textDecoder = () => (decoder ??= new TextDecoder('utf-8', { fatal: true }));

/** Bytes a varint of `value` takes. */
export function varintLength(value: number): number {
  let length = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

/** Writes `value` as an unsigned LEB128 varint at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  while (value >= 128) {
    target[offset++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  target[offset++] = value;
  return offset;
}

/*
 * The read cursor: the offset (`at`) in the frame being decoded, module state set by each decode,
 * not an object made per frame (the frame's bytes are passed to each read). Decoding is
 * synchronous and calls nothing that could decode again, so one offset serves every frame. Why
 * not an object: V8 gives an object that gets its fields after construction (a class's fields) a
 * hidden class (a "map") reached by transitions it holds weakly, so a full GC between two frames,
 * which found no reader alive, dropped the map and deoptimized every function compiled against it
 * ("reason: weak objects" in `node --trace-deopt`): the resume client's frame reader ran
 * unoptimized again after every full GC (docs/benchmarks.md, branch h19-rdeopt).
 */
let at = 1;

function u8(bytes: Uint8Array, field: string): number {
  if (at >= bytes.length) throw new MalformedFrameError(`frame ends before its ${field}`);
  return bytes[at++]!;
}

function fixed(bytes: Uint8Array, length: number, field: string): Uint8Array {
  if (bytes.length - at < length) throw new MalformedFrameError(`frame ends inside its ${field}`);
  // A copy made by the constructor: the frame may be a Node Buffer, whose own `slice` is a view.
  at += length;
  return new Uint8Array(bytes.subarray(at - length, at));
}

function varint(bytes: Uint8Array, field: string): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (at >= bytes.length) throw new MalformedFrameError(`frame ends inside its ${field}`);
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) throw new MalformedFrameError(`${field} is not minimally encoded`);
      if (value > Number.MAX_SAFE_INTEGER) throw new MalformedFrameError(`${field} exceeds 2^53 - 1`);
      return value;
    }
    scale *= 128;
  }
  throw new MalformedFrameError(`${field} is longer than 8 bytes`);
}

function rest(bytes: Uint8Array): Uint8Array {
  const rest = bytes.subarray(at);
  at = bytes.length;
  return rest;
}

function text(frame: Uint8Array, field: string, maxBytes = Infinity): string {
  const bytes = rest(frame);
  if (bytes.length > maxBytes) throw new MalformedFrameError(`${field} is longer than ${maxBytes} bytes`);
  try {
    return textDecoder().decode(bytes);
  } catch (error) {
    throw new MalformedFrameError(`${field} is not valid UTF-8`, { cause: error });
  }
}

function end(bytes: Uint8Array, kind: string): void {
  const remaining = bytes.length - at;
  if (remaining !== 0) throw new MalformedFrameError(`${remaining} trailing byte(s) after a ${kind} frame`);
}

/**
 * A binary payload that is a small view of a large buffer (a message inside a 64 KiB socket chunk)
 * is copied: a message may wait unread, and the unread limit counts its bytes, so it must not keep
 * the whole chunk alive. A view that is most of its buffer is kept as is. The copy is made by the
 * `Uint8Array` constructor: on Node the frame is a `Buffer` (from `ws`), whose own `slice` is a view.
 */
function ownBytes(view: Uint8Array): Uint8Array {
  return view.byteLength * 2 < view.buffer.byteLength ? new Uint8Array(view) : view;
}

/**
 * Decodes one frame. Throws a {@link MalformedFrameError} for anything that breaks the rules in
 * docs/protocol.md and a {@link FrameTooLargeError} for a frame above `maxFrameBytes`; never
 * anything else, whatever the bytes. `version`: the link's negotiated protocol version (default:
 * the newest, {@link RESUME_PROTOCOL_VERSION}); below 3, DATA_TEXT_LAZY and DATA_BINARY_LAZY are
 * unknown frame types (malformed).
 *
 * @example
 * ```ts
 * const frame = decodeFrame(bytes);
 * if (frame.type === 'data') deliver(frame.seq, frame.data);
 * ```
 * @see encodeData
 */
export function decodeFrame(
  bytes: Uint8Array,
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
  version = RESUME_PROTOCOL_VERSION,
): ResumeFrame {
  return bytes[0] === ResumeFrameType.Hello && bytes.length <= maxFrameBytes
    ? decodeHello(bytes)
    : decodeServerSent(bytes, maxFrameBytes, version);
}

/**
 * {@link decodeFrame} for a client: every frame but HELLO, which only a client sends (a HELLO from
 * a server is a {@link MalformedFrameError}, an unknown frame type). Apart, so that a client's
 * bundle does not carry the HELLO parser (issue 13).
 * @internal
 */
export function decodeServerSent(bytes: Uint8Array, maxFrameBytes: number, version: number): ResumeFrame {
  if (bytes.length > maxFrameBytes) throw new FrameTooLargeError(bytes.length, maxFrameBytes);
  if (bytes.length === 0) throw new MalformedFrameError('empty frame');
  at = 1;
  let type = bytes[0]!;
  // Version 3's flagged DATA reads as DATA plus the flag; on an older link it is an unknown type.
  // 0x12 and 0x13 (both shift right to 9).
  const lazy = version > 2 && type >> 1 === 9;
  if (lazy) type -= LAZY_DATA_FLAG;
  switch (type) {
    case ResumeFrameType.DataText:
    case ResumeFrameType.DataBinary: {
      const seq = varint(bytes, 'seq');
      if (seq < 1) throw new MalformedFrameError('seq must be at least 1');
      const ack = varint(bytes, 'ack');
      const data = type === ResumeFrameType.DataText ? text(bytes, 'text payload') : ownBytes(rest(bytes));
      return { type: 'data', seq, ack, data, lazy };
    }
    case ResumeFrameType.Ack: {
      const ack = varint(bytes, 'ack');
      end(bytes, 'ACK');
      return { type: 'ack', ack };
    }
    case ResumeFrameType.Ping:
      end(bytes, 'PING');
      return { type: 'ping' };
    case ResumeFrameType.Pong:
      end(bytes, 'PONG');
      return { type: 'pong' };
    case ResumeFrameType.Welcome: {
      const version = u8(bytes, 'version');
      const resumed = readFlags(bytes) === 1;
      const id = fixed(bytes, SESSION_ID_BYTES, 'session id');
      const token = fixed(bytes, SESSION_TOKEN_BYTES, 'token');
      const lastReceived = varint(bytes, 'lastReceived');
      end(bytes, 'WELCOME');
      return { type: 'welcome', version, resumed, id, token, lastReceived };
    }
    case ResumeFrameType.Reject: {
      const wire = u8(bytes, 'code');
      const code = REJECT_NAMES.get(wire);
      if (code === undefined) throw new MalformedFrameError(`unknown REJECT code ${wire}`);
      return { type: 'reject', code, reason: text(bytes, 'reason', MAX_REASON_BYTES) };
    }
    case ResumeFrameType.Close: {
      const code = varint(bytes, 'code');
      return { type: 'close', code, reason: text(bytes, 'reason', MAX_REASON_BYTES) };
    }
    case ResumeFrameType.GoAway: {
      const delayMs = varint(bytes, 'delay');
      return { type: 'goaway', delayMs, url: text(bytes, 'url', MAX_GOAWAY_URL_BYTES) };
    }
    default:
      throw new MalformedFrameError(`unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
  }
}

function decodeHello(bytes: Uint8Array): ResumeFrame {
  at = 1;
  const version = u8(bytes, 'version');
  const flags = readFlags(bytes);
  const resume =
    flags === 1
      ? {
          id: fixed(bytes, SESSION_ID_BYTES, 'session id'),
          token: fixed(bytes, SESSION_TOKEN_BYTES, 'token'),
        }
      : undefined;
  const lastReceived = varint(bytes, 'lastReceived');
  end(bytes, 'HELLO');
  if (!resume && lastReceived !== 0)
    throw new MalformedFrameError('a new-session HELLO must have lastReceived 0');
  return { type: 'hello', version, resume, lastReceived };
}

function readFlags(bytes: Uint8Array): number {
  const flags = u8(bytes, 'flags');
  if (flags > 1) throw new MalformedFrameError(`unknown flag bits 0x${flags.toString(16)}`);
  return flags;
}

/** Bytes of one slab small DATA frames are cut from: 8 KiB, as Node's `Buffer.poolSize`. */
export const FRAME_SLAB_BYTES = 8_192;
/** The longest frame cut from a slab: frames of half a slab or more get their own buffer. */
export const MAX_SLAB_FRAME_BYTES = FRAME_SLAB_BYTES / 2 - 1;

/*
 * The frame pool (`encodeData(..., pooled)`, used by the client endpoint, whose frames the server
 * acknowledges in order): small DATA frames are views cut from a shared 8 KiB slab, as Node's
 * `Buffer` pool does. V8 gives every `Uint8Array` above 64 bytes its own `ArrayBuffer` (~1 us
 * each); a view of a slab costs ~0.2 us.
 *
 * Retention: the pool holds at most one slab (the current one, FRAME_SLAB_BYTES). A slab it has
 * moved past stays alive while any frame cut from it does (a frame in a replay window): at most
 * one 8 KiB slab per unacknowledged pooled frame, and one session acknowledged in order pins its
 * window's bytes plus at most two slabs.
 *
 * A pooled frame is a view: whoever keeps it past the window (a store) or hands it to an API that
 * transfers or structured-clones its `ArrayBuffer` (postMessage, IndexedDB, a byte stream's
 * `enqueue`) must copy the view's bytes first, or it would take the whole slab. Bytes once handed
 * out are never written again: the pool only writes past `slabAt`.
 */
let slab: Uint8Array | undefined;
let slabAt = 0;
/** Makes a slab's views (see {@link useFrameViews}). */
let frameView = (buffer: ArrayBufferLike, offset: number, length: number): Uint8Array =>
  new Uint8Array(buffer, offset, length);

/**
 * Has the slab's frames made by `view` (an `offset`, `length` view of `buffer`, whose bytes it must
 * share), a platform's own byte type: Node's `ws` turns every `Uint8Array` it sends that is not a
 * `Buffer` into one, a second view per frame, so `@lifeline/node` installs `Buffer.from`
 * (`pnpm bench ws`, `docs/benchmarks.md`). Whatever the type, a frame's payload is copied with
 * `Uint8Array.prototype.slice` semantics where it is kept (a `Buffer`'s own `slice` is a view).
 * @internal
 */
export function useFrameViews(
  view: (buffer: ArrayBufferLike, offset: number, length: number) => Uint8Array,
): void {
  frameView = view;
}

/**
 * The next `length` bytes of the current slab (a new slab when it has fewer), taken. The view is
 * made with the `Uint8Array` constructor: `subarray` looks up the species constructor and costs
 * about twice as much (Node 20: ~0.24 against ~0.12 us per view).
 */
function slabBytes(length: number): Uint8Array {
  if (!slab || slab.length - slabAt < length) {
    slab = new Uint8Array(FRAME_SLAB_BYTES);
    slabAt = 0;
  }
  slabAt += length;
  return frameView(slab.buffer, slabAt - length, length);
}

/** An encoded DATA frame and where its payload starts, so it can be re-encoded with a newer ack. */
export interface EncodedData {
  readonly frame: Uint8Array;
  readonly payloadOffset: number;
  readonly ack: number;
}

/**
 * Encodes a DATA frame: text as UTF-8 (DATA_TEXT), bytes as they are (DATA_BINARY), in one
 * allocation. `pooled`: a frame of at most {@link MAX_SLAB_FRAME_BYTES} (a string: header plus
 * 3 bytes per UTF-16 unit) is a view of exactly its length cut from the shared slab (see
 * {@link FRAME_SLAB_BYTES} and the note beside it: a view must be copied before it is kept or
 * transferred); other frames get their own buffer (a string of up to 4,096 units, a view of
 * header + 3 x its length bytes).
 *
 * @example
 * ```ts
 * link.send(encodeData(1, 0, 'hello').frame);
 * ```
 * @see decodeFrame
 */
export function encodeData(
  seq: number,
  ack: number,
  data: string | ArrayBuffer | ArrayBufferView,
  pooled?: boolean,
  lazy?: boolean,
): EncodedData {
  return {
    frame: encodeDataFrame(seq, ack, data, pooled, lazy),
    payloadOffset: dataHeaderLength(seq, ack),
    ack,
  };
}

/** Bytes of a DATA frame before its payload: the type byte and the two varints. */
export const dataHeaderLength = (seq: number, ack: number): number =>
  1 + varintLength(seq) + varintLength(ack);

/**
 * {@link encodeData}'s frame alone (its payload starts at {@link dataHeaderLength}): a send keeps the
 * fields in its own message, without an object in between. `lazy`: flagged "the ack may wait"
 * (DATA_TEXT_LAZY / DATA_BINARY_LAZY, version 3 only).
 */
export function encodeDataFrame(
  seq: number,
  ack: number,
  data: string | ArrayBuffer | ArrayBufferView,
  pooled?: boolean,
  lazy?: boolean,
): Uint8Array {
  const headerLength = dataHeaderLength(seq, ack);
  let frame: Uint8Array;
  let type: number;
  if (typeof data === 'string') {
    type = ResumeFrameType.DataText;
    if (data.length <= 4_096) {
      // Short strings are encoded straight into the frame (3 bytes per UTF-16 unit at most);
      // long ones are measured first so the buffer kept in the replay window is not oversized.
      const most = headerLength + data.length * 3;
      const inSlab = pooled && most <= MAX_SLAB_FRAME_BYTES;
      const buffer = inSlab ? slabBytes(most) : new Uint8Array(most);
      const { written } = textEncoder().encodeInto(data, buffer.subarray(headerLength));
      frame = buffer.subarray(0, headerLength + written);
      // The slab takes back what was not written: a pooled frame is exactly its length.
      if (inSlab) slabAt -= most - frame.length;
    } else {
      const payload = textEncoder().encode(data);
      frame = new Uint8Array(headerLength + payload.length);
      frame.set(payload, headerLength);
    }
  } else {
    type = ResumeFrameType.DataBinary;
    const payload = asBytes(data);
    const length = headerLength + payload.length;
    frame = pooled && length <= MAX_SLAB_FRAME_BYTES ? slabBytes(length) : new Uint8Array(length);
    frame.set(payload, headerLength);
  }
  frame[0] = lazy ? type + LAZY_DATA_FLAG : type;
  writeVarint(frame, writeVarint(frame, 1, seq), ack);
  return frame;
}

/** Re-encodes a DATA frame with another ack (a replay carries the current one). */
export function reencodeData(encoded: EncodedData, seq: number, ack: number): EncodedData {
  const payload = encoded.frame.subarray(encoded.payloadOffset);
  const headerLength = 1 + varintLength(seq) + varintLength(ack);
  const frame = new Uint8Array(headerLength + payload.length);
  frame[0] = encoded.frame[0]!;
  writeVarint(frame, writeVarint(frame, 1, seq), ack);
  frame.set(payload, headerLength);
  return { frame, payloadOffset: headerLength, ack };
}

/**
 * The payload of an encoded DATA frame as the sender gave it: a string for text, a copy of the bytes
 * (a plain `Uint8Array`, whatever `useFrameViews` made the frame) for binary.
 */
export function dataPayload(encoded: EncodedData): string | Uint8Array {
  const payload = encoded.frame.subarray(encoded.payloadOffset);
  return isBinaryData(encoded.frame) ? new Uint8Array(payload) : textDecoder().decode(payload);
}

/** Whether a DATA frame carries bytes (DATA_BINARY, flagged or not: the type byte is odd) rather than text. */
export const isBinaryData = (frame: Uint8Array): boolean => (frame[0]! & 1) === 1;

/** Encodes an ACK frame. */
export function encodeAck(ack: number): Uint8Array {
  const frame = new Uint8Array(1 + varintLength(ack));
  frame[0] = ResumeFrameType.Ack;
  writeVarint(frame, 1, ack);
  return frame;
}

const PING = Uint8Array.of(ResumeFrameType.Ping);
const PONG = Uint8Array.of(ResumeFrameType.Pong);
/** A PING frame (a fresh copy: links may keep what they are given). */
export const encodePing = (): Uint8Array => PING.slice();
/** A PONG frame. */
export const encodePong = (): Uint8Array => PONG.slice();

/** Encodes a HELLO: a new session when `resume` is undefined. */
export function encodeHello(
  resume: { id: Uint8Array; token: Uint8Array } | undefined,
  lastReceived: number,
  version: number = RESUME_PROTOCOL_VERSION,
): Uint8Array {
  const frame = new Uint8Array(
    3 + (resume ? SESSION_ID_BYTES + SESSION_TOKEN_BYTES : 0) + varintLength(lastReceived),
  );
  frame[0] = ResumeFrameType.Hello;
  frame[1] = version;
  frame[2] = resume ? 1 : 0;
  let offset = 3;
  if (resume) {
    frame.set(checkLength(resume.id, SESSION_ID_BYTES), offset);
    frame.set(checkLength(resume.token, SESSION_TOKEN_BYTES), offset + SESSION_ID_BYTES);
    offset += SESSION_ID_BYTES + SESSION_TOKEN_BYTES;
  }
  writeVarint(frame, offset, lastReceived);
  return frame;
}

/** Encodes a WELCOME. */
export function encodeWelcome(
  resumed: boolean,
  id: Uint8Array,
  token: Uint8Array,
  lastReceived: number,
  version: number = RESUME_PROTOCOL_VERSION,
): Uint8Array {
  const frame = new Uint8Array(3 + SESSION_ID_BYTES + SESSION_TOKEN_BYTES + varintLength(lastReceived));
  frame[0] = ResumeFrameType.Welcome;
  frame[1] = version;
  frame[2] = resumed ? 1 : 0;
  frame.set(checkLength(id, SESSION_ID_BYTES), 3);
  frame.set(checkLength(token, SESSION_TOKEN_BYTES), 3 + SESSION_ID_BYTES);
  writeVarint(frame, 3 + SESSION_ID_BYTES + SESSION_TOKEN_BYTES, lastReceived);
  return frame;
}

/** Encodes a REJECT; the reason is cut to {@link MAX_REASON_BYTES} on a character boundary. */
export function encodeReject(code: SessionRejectCode, reason = ''): Uint8Array {
  const text = truncatedUtf8(reason);
  const frame = new Uint8Array(2 + text.length);
  frame[0] = ResumeFrameType.Reject;
  frame[1] = REJECT_CODES[code];
  frame.set(text, 2);
  return frame;
}

/**
 * Encodes a GOAWAY (version 2): the server is closing; the client should leave this link now and
 * resume after `delayMs`, at `url` if one is given. A URL longer than {@link MAX_GOAWAY_URL_BYTES}
 * throws a `RangeError` (it cannot be cut like a reason).
 */
export function encodeGoAway(delayMs = 0, url = ''): Uint8Array {
  if (!Number.isSafeInteger(delayMs) || delayMs < 0)
    throw new RangeError(`delayMs must be a non-negative integer`);
  const text = textEncoder().encode(url);
  if (text.length > MAX_GOAWAY_URL_BYTES)
    throw new RangeError(`the GOAWAY URL exceeds ${MAX_GOAWAY_URL_BYTES} bytes`);
  const frame = new Uint8Array(1 + varintLength(delayMs) + text.length);
  frame[0] = ResumeFrameType.GoAway;
  frame.set(text, writeVarint(frame, 1, delayMs));
  return frame;
}

/** Encodes a CLOSE. */
export function encodeClose(code = 0, reason = ''): Uint8Array {
  const text = truncatedUtf8(reason);
  const frame = new Uint8Array(1 + varintLength(code) + text.length);
  frame[0] = ResumeFrameType.Close;
  frame.set(text, writeVarint(frame, 1, code));
  return frame;
}

/**
 * The bytes of one link message, whatever shape the transport delivers them in (a `ws` Buffer,
 * an ArrayBuffer, a Uint8Array). A string is not a frame: the protocol never uses text messages.
 */
export function frameBytes(message: unknown): Uint8Array {
  if (message instanceof Uint8Array) return message;
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  if (ArrayBuffer.isView(message))
    return new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
  if (Array.isArray(message) && message.every((part) => part instanceof Uint8Array))
    return concatBytes(message);
  throw new MalformedFrameError(
    typeof message === 'string'
      ? 'a text message on a resume link (frames are binary)'
      : 'a link message that is not bytes',
  );
}

function asBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function checkLength(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length !== length) throw new RangeError(`expected ${length} bytes, got ${bytes.length}`);
  return bytes;
}

function truncatedUtf8(text: string): Uint8Array {
  const bytes = textEncoder().encode(text);
  if (bytes.length <= MAX_REASON_BYTES) return bytes;
  let end = MAX_REASON_BYTES;
  // Back up over continuation bytes so the cut never splits a character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.slice(0, end);
}
