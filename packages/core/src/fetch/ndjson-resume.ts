import { HeldBytes } from './held-bytes.js';
import { type BodyResume, DEFAULT_MAX_HELD_BYTES } from './resumable-body.js';
import { httpStatusError } from './retry-after.js';

const LF = 0x0a;

/**
 * Tells an NDJSON resume where the stream is and how to ask for what follows.
 *
 * @example
 * ```ts
 * const cursor: NdjsonCursor = {
 *   fromLine: (line) => String(JSON.parse(line).id),
 *   applyToRequest: (request, after) => {
 *     const url = new URL(request.url);
 *     url.searchParams.set('after', after);
 *     return new Request(url, request);
 *   },
 * };
 * ```
 */
export interface NdjsonCursor {
  /** The cursor a complete line moves the stream to, or `undefined` if the line does not move it. */
  fromLine(line: string): string | undefined;
  /**
   * The request for the lines after `cursor`, made from a fresh copy of the original request
   * (put it in the URL or a header). Build a new request with the `Request` class of the fetch
   * in use, or change `request.headers` and return it.
   */
  applyToRequest(request: Request, cursor: string): Request;
}

/**
 * Resumes an NDJSON / JSON Lines body: only complete lines are delivered, each is shown to the
 * user's {@link NdjsonCursor}, and a break re-requests from the last cursor. The part of a line
 * cut by a break is dropped and comes again in the continuation.
 *
 * Without a cursor from any delivered line, a break propagates unchanged: re-requesting from the
 * start would deliver lines twice.
 *
 * @example
 * ```ts
 * const resume = new NdjsonResume(cursor);
 * ```
 * @see https://github.com/ndjson/ndjson-spec
 */
export class NdjsonResume implements BodyResume {
  private readonly held: HeldBytes;
  private cursor: string | undefined;
  private lines = 0;
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly cursorOf: NdjsonCursor,
    maxHeldBytes = DEFAULT_MAX_HELD_BYTES,
  ) {
    this.held = new HeldBytes(maxHeldBytes);
  }

  push(chunk: Uint8Array, deliver: (bytes: Uint8Array) => void): void {
    const last = chunk.lastIndexOf(LF);
    if (last < 0) {
      this.held.hold(chunk);
      return;
    }
    const lines = chunk.subarray(0, last + 1);
    let text = '';
    for (const bytes of this.held.parts) text += this.decoder.decode(bytes, { stream: true });
    text += this.decoder.decode(lines);
    // The cursor moves only once every line before it is delivered, so a throwing `fromLine`
    // leaves it at a line the reader has.
    let cursor = this.cursor;
    let count = 0;
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; start = end + 1, end = text.indexOf('\n', start)) {
      const line = text.charCodeAt(end - 1) === 0x0d ? text.slice(start, end - 1) : text.slice(start, end);
      count++;
      if (line.trim() === '') continue;
      const next = this.cursorOf.fromLine(line);
      if (next !== undefined) cursor = next;
    }
    // Copied (by the constructor: a Node Buffer's own `slice` is a view), and before delivering: a
    // delivered chunk's buffer passes to the reader.
    const tail = last + 1 < chunk.byteLength ? new Uint8Array(chunk.subarray(last + 1)) : undefined;
    this.held.release(deliver);
    deliver(lines);
    this.cursor = cursor;
    this.lines += count;
    if (tail !== undefined) this.held.hold(tail);
  }

  end(deliver: (bytes: Uint8Array) => void): void {
    this.held.release(deliver);
  }

  discard(): number {
    const discarded = this.held.clear();
    return discarded;
  }

  get complete(): boolean {
    return false;
  }

  refusal(cause: unknown): unknown {
    return this.lines > 0 && this.cursor === undefined ? cause : undefined;
  }

  resumeRequest(request: Request): Request {
    return this.cursor === undefined ? request : this.cursorOf.applyToRequest(request, this.cursor);
  }

  accept(response: Response): boolean {
    if (response.status === 204) return false;
    if (!response.ok) throw httpStatusError(response);
    return true;
  }
}
