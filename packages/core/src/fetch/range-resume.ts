import {
  EntityChangedError,
  LinkFailedError,
  RangeMismatchError,
  RangeNotSupportedError,
} from '../engine/errors.js';
import type { BodyResume } from './resumable-body.js';
import { httpStatusError } from './retry-after.js';

/** A parsed `Content-Range: bytes <start>-<end>/<total>`; `total` is undefined for `*`. */
export interface ContentRange {
  readonly start: number;
  readonly end: number;
  readonly total: number | undefined;
}

const CONTENT_RANGE = /^bytes[ \t]+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/i;
// RFC 9110 entity-tag, strong form only: a weak tag (W/"...") may not guard a byte range.
const STRONG_ETAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/;

/**
 * Parses a single-range `Content-Range` header; `undefined` when it is absent or malformed
 * (including an end before its start or past the total).
 *
 * @example
 * ```ts
 * parseContentRange('bytes 100-199/1000') // { start: 100, end: 199, total: 1000 }
 * ```
 */
export function parseContentRange(value: string | null): ContentRange | undefined {
  const match = value === null ? null : CONTENT_RANGE.exec(value.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const total = match[3] === '*' ? undefined : Number(match[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

/** The header's value when it is a strong entity tag, else `undefined`. */
export function strongETag(value: string | null): string | undefined {
  if (value === null) return undefined;
  const tag = value.trim();
  return STRONG_ETAG.test(tag) ? tag : undefined;
}

/**
 * Resumes a body by byte range: `Range: bytes=<next>-` guarded by `If-Range: <strong ETag>`, and
 * only a `206` whose `Content-Range` starts exactly at the next byte, ends where the body ends and
 * has the original total (or `*`), under the same strong ETag, is accepted. Anything else is a
 * typed error (a 206 without its ETag included), raised before a single
 * byte of the answer is delivered: a duplicated or foreign byte never reaches the reader.
 *
 * @example
 * ```ts
 * const resume = new RangeResume(response); // a 200 or 206 to a GET
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#name-range-requests
 */
export class RangeResume implements BodyResume {
  private readonly etag: string | undefined;
  /** Offset in the entity of the body's first byte (non-zero when the caller asked for a range). */
  private readonly start: number;
  /** Offset of the body's last byte, when known. */
  private last: number | undefined;
  private total: number | undefined;
  private readonly refusalReason: string | undefined;
  private received = 0;

  constructor(response: Response) {
    const headers = response.headers;
    this.etag = strongETag(headers.get('etag'));
    const encoding = headers.get('content-encoding');
    const encoded = encoding !== null && encoding.trim().toLowerCase() !== 'identity';
    let start = 0;
    let refusal: string | undefined;
    if (response.status === 206) {
      const range = parseContentRange(headers.get('content-range'));
      if (range === undefined) refusal = 'the response has no single Content-Range';
      else {
        start = range.start;
        this.last = range.end;
        this.total = range.total;
      }
    } else if (!encoded) {
      const length = headers.get('content-length');
      if (length !== null && /^\d{1,15}$/.test(length.trim())) {
        this.total = Number(length);
        this.last = this.total - 1;
      }
    }
    this.start = start;
    if (encoded) {
      // Ranges address the encoded bytes while the reader gets decoded ones: they cannot be matched.
      this.last = undefined;
      refusal = `the body is content-encoded (${encoding})`;
    } else if (this.etag === undefined) {
      refusal = 'the response has no strong ETag to guard a range request';
    } else if (headers.get('accept-ranges')?.trim().toLowerCase() === 'none') {
      refusal = 'the server announced Accept-Ranges: none';
    }
    this.refusalReason = refusal;
  }

  private get next(): number {
    return this.start + this.received;
  }

  push(chunk: Uint8Array, deliver: (bytes: Uint8Array) => void): void {
    if (this.last !== undefined && this.next + chunk.byteLength > this.last + 1) {
      const room = this.last + 1 - this.next;
      this.received += room;
      deliver(chunk.subarray(0, room));
      throw new RangeMismatchError(`the body runs past its last byte (${this.last})`);
    }
    this.received += chunk.byteLength;
    deliver(chunk);
  }

  end(): void {
    if (this.last !== undefined && this.next <= this.last) {
      throw new LinkFailedError(`the body ended ${this.last + 1 - this.next} bytes short of its length`, {
        recoverable: true,
      });
    }
  }

  discard(): number {
    return 0;
  }

  get complete(): boolean {
    return this.last !== undefined && this.next > this.last;
  }

  refusal(cause: unknown): unknown {
    return this.refusalReason === undefined
      ? undefined
      : new RangeNotSupportedError(`cannot resume the body by range: ${this.refusalReason}`, { cause });
  }

  resumeRequest(request: Request): Request {
    request.headers.set('range', `bytes=${this.next}-${this.last ?? ''}`);
    request.headers.set('if-range', this.etag ?? '');
    // The first body was not content-encoded; its continuation must not be either.
    request.headers.set('accept-encoding', 'identity');
    return request;
  }

  accept(response: Response): boolean {
    const headers = response.headers;
    const etag = headers.get('etag');
    switch (response.status) {
      case 206:
        break;
      case 200:
        // If-Range matched yet the whole entity came back: the server ignores Range.
        if (strongETag(etag) === this.etag) {
          throw new RangeNotSupportedError('the server answered a range request with the whole body (200)');
        }
        throw new EntityChangedError(`the entity changed (ETag ${this.etag} became ${etag ?? 'absent'})`, {
          etag: etag ?? undefined,
        });
      case 412:
        throw new EntityChangedError('the entity changed (412 Precondition Failed)');
      case 416:
        throw new RangeMismatchError(`the server refused the range from byte ${this.next} (416)`);
      default:
        throw httpStatusError(response);
    }
    // RFC 9110 §15.3.7: a 206 carries the ETag a 200 would have. One without it was not checked
    // against our If-Range (a cache or proxy that drops validators, or another entity): its
    // bytes cannot be shown to continue ours, so none of them is delivered.
    if (etag === null) {
      throw new EntityChangedError(`the 206 carries no ETag, so its bytes cannot be matched to ${this.etag}`);
    }
    if (strongETag(etag) !== this.etag) {
      throw new EntityChangedError(`the entity changed (ETag ${this.etag} became ${etag})`, { etag });
    }
    const raw = headers.get('content-range');
    const range = parseContentRange(raw);
    if (range === undefined) throw new RangeMismatchError('a 206 without a single valid Content-Range', raw);
    if (range.start !== this.next) {
      throw new RangeMismatchError(`the range starts at byte ${range.start}, not ${this.next}`, raw);
    }
    // `*` (total unknown, RFC 9110 §14.4) is no contradiction when the start, end and ETag match.
    if (this.total !== undefined && range.total !== undefined && range.total !== this.total) {
      throw new RangeMismatchError(`the range's total is ${range.total ?? '*'}, not ${this.total}`, raw);
    }
    const end = this.last ?? (range.total === undefined ? range.end : range.total - 1);
    if (range.end !== end)
      throw new RangeMismatchError(`the range ends at byte ${range.end}, not ${end}`, raw);
    const encoding = headers.get('content-encoding');
    if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
      throw new RangeMismatchError(`the range is content-encoded (${encoding})`, raw);
    }
    if (this.total === undefined) this.total = range.total;
    if (this.last === undefined && range.total !== undefined) this.last = range.total - 1;
    return true;
  }
}
