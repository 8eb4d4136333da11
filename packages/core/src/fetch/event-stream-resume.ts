import { LinkClosedError, ProtocolError } from '../engine/errors.js';
import { HeldBytes } from './held-bytes.js';
import { type BodyResume, DEFAULT_MAX_HELD_BYTES } from './resumable-body.js';
import { httpStatusError } from './retry-after.js';

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const BOM = [0xef, 0xbb, 0xbf] as const;

// Where the scanner is within a line: reading the field name, an id's value, or anything else.
const NAME = 0;
const ID_VALUE = 1;
const IGNORED = 2;
const RETRY_VALUE = 3;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
// A `retry:` value longer than this (ms beyond 31 years) is not worth parsing: ignored.
const MAX_RETRY_DIGITS = 12;

/** Options of {@link EventStreamResume}. */
export interface EventStreamResumeOptions {
  /**
   * When the server ends the response cleanly, re-request with `Last-Event-ID`, as `EventSource`
   * does, instead of ending the body; a `204 No Content` answer stops it (the body then ends).
   * @default false
   */
  reconnect?: boolean;
}

/**
 * Resumes a `text/event-stream` body the way `EventSource` reconnects: it delivers bytes only up
 * to the end of the last complete event (a blank line), tracks the last event ID as the SSE
 * parser defines it, and re-requests with `Last-Event-ID`. Bytes of an event cut by a break are
 * dropped and come again in the continuation, so the reader never sees half an event, nor one twice.
 *
 * A stream whose events carry no `id:` cannot be resumed once an event was delivered: the break
 * propagates unchanged rather than replaying the stream from the start.
 *
 * The last `retry:` field read is the minimum wait before a re-request ({@link retryDelayMs}).
 * With `reconnect`, a clean end of the response is a break too (the standard's "reestablish the
 * connection", with or without ids), and a `204` ends the stream for good.
 *
 * @example
 * ```ts
 * const resume = new EventStreamResume();
 * ```
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
export class EventStreamResume implements BodyResume {
  private readonly held: HeldBytes;
  private crPending = false;
  private lineEmpty = true;
  private field: number = NAME;
  private name = '';
  private idBytes: number[] = [];
  private skipSpace = false;
  private blockHasData = false;
  /** The spec's "last event ID buffer": set by `id:` fields, committed when an event is dispatched. */
  private idBuffer = '';
  private lastEventIdValue = '';
  private dataDelivered = false;
  private atBodyStart = true;
  private resumed = false;
  private readonly decoder = new TextDecoder();
  private retryDigits = '';
  private retryMs: number | undefined;
  private readonly reconnect: boolean;
  /** A 204 answered a reconnect: the server wants the stream to end. */
  private stopped = false;
  /** The last break was the response's clean end (reconnect mode). */
  private endedCleanly = false;

  constructor(maxHeldBytes = DEFAULT_MAX_HELD_BYTES, options: EventStreamResumeOptions = {}) {
    this.held = new HeldBytes(maxHeldBytes);
    this.reconnect = options.reconnect === true;
  }

  /**
   * The last `retry:` value read, in ms: the stream's reconnection time, the minimum wait before
   * a re-request. `undefined` until the server sends one.
   */
  get retryDelayMs(): number | undefined {
    return this.retryMs;
  }

  /** The ID of the last complete event delivered: what `Last-Event-ID` carries on a resume. */
  get lastEventId(): string {
    return this.lastEventIdValue;
  }

  push(input: Uint8Array, deliver: (bytes: Uint8Array) => void): void {
    if (input.byteLength === 0) return;
    let chunk = input;
    let from = 0;
    if (this.atBodyStart) {
      // A body may open with a UTF-8 BOM, which SSE parsers skip. Decide once 3 bytes are in.
      if (this.held.byteLength > 0) {
        chunk = concat([...this.held.parts, chunk], this.held.byteLength + chunk.byteLength);
        this.held.clear();
      }
      if (chunk.byteLength < BOM.length && isPrefixOfBom(chunk)) {
        this.held.hold(chunk);
        return;
      }
      this.atBodyStart = false;
      if (isPrefixOfBom(chunk)) {
        // The stream's own BOM is delivered; a continuation's is not part of the stream.
        if (this.resumed) chunk = chunk.subarray(BOM.length);
        else from = BOM.length;
      }
    }
    const boundary = this.scan(chunk, from);
    if (boundary < 0) {
      this.held.hold(chunk);
      return;
    }
    // Copied (by the constructor: a Node Buffer's own `slice` is a view), and before delivering: a
    // delivered chunk's buffer passes to the reader.
    const tail = boundary < chunk.byteLength ? new Uint8Array(chunk.subarray(boundary)) : undefined;
    this.held.release(deliver);
    deliver(chunk.subarray(0, boundary));
    if (tail !== undefined) this.held.hold(tail);
  }

  end(deliver: (bytes: Uint8Array) => void): void {
    if (this.reconnect && !this.stopped) {
      // The standard drops an unfinished event at the end and reconnects: the held bytes are
      // discarded by the break, and come again after Last-Event-ID if the server still has them.
      this.endedCleanly = true;
      throw new LinkClosedError(undefined, 'the event stream ended; reconnecting', { recoverable: true });
    }
    this.held.release(deliver);
  }

  discard(): number {
    const discarded = this.held.clear();
    this.resetLine();
    this.crPending = false;
    this.blockHasData = false;
    this.idBuffer = this.lastEventIdValue;
    this.atBodyStart = true;
    this.resumed = true;
    return discarded;
  }

  get complete(): boolean {
    return false;
  }

  refusal(cause: unknown): unknown {
    const cleanEnd = this.endedCleanly;
    this.endedCleanly = false;
    // After a clean end nothing was lost, so reconnecting without an id is what the standard does.
    if (cleanEnd) return undefined;
    return this.dataDelivered && this.lastEventIdValue === '' ? cause : undefined;
  }

  resumeRequest(request: Request): Request {
    if (this.lastEventIdValue !== '') request.headers.set('last-event-id', this.lastEventIdValue);
    return request;
  }

  accept(response: Response): boolean {
    // 204 is how a server tells an event source to stop reconnecting.
    if (response.status === 204) {
      this.stopped = true;
      return false;
    }
    if (!response.ok) throw httpStatusError(response);
    const type = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'text/event-stream') {
      throw new ProtocolError(`the resumed response is ${type ?? 'untyped'}, not text/event-stream`);
    }
    return true;
  }

  /** Runs the line scanner over `chunk`; returns the offset just past the last event boundary, or -1. */
  private scan(chunk: Uint8Array, from: number): number {
    let boundary = -1;
    const length = chunk.byteLength;
    for (let i = from; i < length; i++) {
      const byte = chunk[i] as number;
      if (this.crPending) {
        this.crPending = false;
        if (byte === LF) {
          if (this.endLine()) boundary = i + 1;
          continue;
        }
        // A lone CR ended the line; only now is it known not to be the first half of CRLF.
        if (this.endLine()) boundary = i;
      }
      if (byte === CR) {
        this.crPending = true;
        continue;
      }
      if (byte === LF) {
        if (this.endLine()) boundary = i + 1;
        continue;
      }
      this.lineEmpty = false;
      if (this.field === NAME) {
        if (byte === COLON) {
          this.field = this.name === 'id' ? ID_VALUE : this.name === 'retry' ? RETRY_VALUE : IGNORED;
          if (this.name === 'data') this.blockHasData = true;
          this.skipSpace = true;
        } else if (this.name.length < 5) {
          this.name += String.fromCharCode(byte);
        } else {
          this.field = IGNORED;
        }
      } else if (this.field === ID_VALUE) {
        if (this.skipSpace && byte === SPACE) this.skipSpace = false;
        else {
          this.skipSpace = false;
          this.idBytes.push(byte);
        }
      } else if (this.field === RETRY_VALUE) {
        if (this.skipSpace && byte === SPACE) this.skipSpace = false;
        else {
          this.skipSpace = false;
          // Any byte but a digit makes the field invalid (it is then ignored, as the standard says).
          if (byte < DIGIT_0 || byte > DIGIT_9 || this.retryDigits.length >= MAX_RETRY_DIGITS) {
            this.field = IGNORED;
          } else this.retryDigits += String.fromCharCode(byte);
        }
      }
    }
    return boundary;
  }

  /** Ends the current line; true when it was blank, i.e. it ended an event. */
  private endLine(): boolean {
    if (this.lineEmpty) {
      this.lastEventIdValue = this.idBuffer;
      if (this.blockHasData) this.dataDelivered = true;
      this.blockHasData = false;
      this.resetLine();
      return true;
    }
    if (this.field === NAME) {
      // A line without a colon is a field with an empty value.
      if (this.name === 'id') this.idBuffer = '';
      else if (this.name === 'data') this.blockHasData = true;
    } else if (this.field === ID_VALUE && !this.idBytes.includes(0)) {
      this.idBuffer = this.decoder.decode(Uint8Array.from(this.idBytes));
    } else if (this.field === RETRY_VALUE && this.retryDigits !== '') {
      this.retryMs = Number(this.retryDigits);
    }
    this.resetLine();
    return false;
  }

  private resetLine(): void {
    this.lineEmpty = true;
    this.field = NAME;
    this.name = '';
    if (this.idBytes.length > 0) this.idBytes = [];
    this.retryDigits = '';
    this.skipSpace = false;
  }
}

function isPrefixOfBom(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.byteLength, BOM.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== BOM[i]) return false;
  return n > 0;
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
