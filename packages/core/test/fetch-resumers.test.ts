import { EventStreamResume, NdjsonResume, parseContentRange, strongETag } from '@lifeline/core/internal';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// Pure tests of the resumers' cutting rules: no sockets, every chunking fast-check can think of.

const encoder = new TextEncoder();

interface GeneratedStream {
  readonly bytes: Uint8Array;
  /** Byte offsets just past each blank line (event boundary). */
  readonly boundaries: readonly number[];
  /** The last event ID after each boundary, as the SSE parser defines it. */
  readonly idsAt: readonly string[];
}

const line = fc.oneof(
  fc.string({ maxLength: 12 }).map((text) => `data: ${text.replace(/[\r\n]/g, '')}`),
  fc.string({ maxLength: 6 }).map((text) => `data:${text.replace(/[\r\n]/g, '')}`),
  fc.constant('data'),
  fc.integer({ min: 0, max: 999 }).map((id) => `id: ${id}`),
  fc.constantFrom('id', 'id:', 'id:é7', 'event: tick', ': comment', 'retry: 10', 'idx: 1', 'ident: 3'),
);

const stream = fc
  .record({
    events: fc.array(fc.array(line, { minLength: 1, maxLength: 4 }), { maxLength: 12 }),
    eol: fc.constantFrom('\n', '\r\n', '\r'),
    bom: fc.boolean(),
  })
  .map(({ events, eol, bom }): GeneratedStream => {
    const parts: Uint8Array[] = [];
    let length = 0;
    const boundaries: number[] = [];
    const idsAt: string[] = [];
    let idBuffer = '';
    const add = (text: string) => {
      const bytes = encoder.encode(text);
      parts.push(bytes);
      length += bytes.byteLength;
    };
    if (bom) add('\uFEFF');
    for (const fields of events) {
      for (const field of fields) {
        add(field + eol);
        if (field === 'id') idBuffer = '';
        else if (field.startsWith('id:')) idBuffer = field.slice(3).replace(/^ /, '');
      }
      add(eol);
      boundaries.push(length);
      idsAt.push(idBuffer);
    }
    const bytes = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.byteLength;
    }
    return { bytes, boundaries, idsAt };
  });

/** Cut points for a body of `length` bytes. */
const cuts = (length: number) =>
  fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 8 })
    .map((points) => points.filter((point) => point < length).sort((a, b) => a - b));

function chunksOf(bytes: Uint8Array, points: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.byteLength]) {
    chunks.push(bytes.slice(from, point));
    from = point;
  }
  return chunks;
}

describe('EventStreamResume', () => {
  it('delivers only whole events, in any chunking, and all of them at the end', () => {
    fc.assert(
      fc.property(
        stream.chain((s) => fc.tuple(fc.constant(s), cuts(s.bytes.byteLength))),
        ([{ bytes, boundaries, idsAt }, points]) => {
          const resume = new EventStreamResume();
          let delivered = 0;
          const out: Uint8Array[] = [];
          const deliver = (chunk: Uint8Array) => {
            out.push(chunk);
            delivered += chunk.byteLength;
          };
          for (const chunk of chunksOf(bytes, points)) {
            resume.push(chunk, deliver);
            // After every chunk the reader holds a prefix ending at an event boundary (or nothing),
            // and the last event ID is the one of the last event it holds.
            const index = boundaries.lastIndexOf(delivered);
            expect(delivered === 0 || index >= 0).toBe(true);
            const lastComplete = boundaries.filter((boundary) => boundary <= delivered).length - 1;
            expect(resume.lastEventId).toBe(lastComplete >= 0 ? idsAt[lastComplete] : '');
          }
          resume.end(deliver);
          expect(Buffer.concat(out).equals(Buffer.from(bytes))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a break drops only the unfinished event; a continuation’s BOM is dropped too', () => {
    const resume = new EventStreamResume();
    const out: string[] = [];
    const deliver = (chunk: Uint8Array) => out.push(Buffer.from(chunk).toString('utf8'));
    resume.push(encoder.encode('\uFEFFid: 1\ndata: a\n\nid: 2\ndata: b'), deliver);
    expect(out.join('')).toBe('\uFEFFid: 1\ndata: a\n\n');
    expect(resume.discard()).toBe(encoder.encode('id: 2\ndata: b').byteLength);
    expect(resume.lastEventId).toBe('1');
    const request = new Request('http://x/');
    expect(resume.resumeRequest(request).headers.get('last-event-id')).toBe('1');
    resume.push(encoder.encode('\uFEFF'), deliver);
    resume.push(encoder.encode('id: 2\ndata: b\n\n'), deliver);
    expect(out.join('')).toBe('\uFEFFid: 1\ndata: a\n\nid: 2\ndata: b\n\n');
    expect(resume.lastEventId).toBe('2');
  });

  it('refuses to resume only when an event without an ID was delivered', () => {
    const cause = new TypeError('terminated');
    const fresh = new EventStreamResume();
    fresh.push(encoder.encode(': hello\n\nretry: 5\n\n'), () => {});
    expect(fresh.refusal(cause)).toBeUndefined();
    fresh.push(encoder.encode('data: x\n\n'), () => {});
    expect(fresh.refusal(cause)).toBe(cause);
    fresh.push(encoder.encode('id: 9\ndata: y\n\n'), () => {});
    expect(fresh.refusal(cause)).toBeUndefined();
  });
});

describe('NdjsonResume', () => {
  it('delivers only complete lines and moves the cursor with them, in any chunking', () => {
    fc.assert(
      fc.property(
        fc
          .array(fc.record({ id: fc.nat(), text: fc.string({ maxLength: 20 }) }), { maxLength: 30 })
          .chain((records) => {
            const bytes = encoder.encode(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
            return fc.tuple(fc.constant({ records, bytes }), cuts(bytes.byteLength));
          }),
        ([{ records, bytes }, points]) => {
          const resume = new NdjsonResume({
            fromLine: (text) => String((JSON.parse(text) as { id: number }).id),
            applyToRequest: (request, cursor) => {
              request.headers.set('x-after', cursor);
              return request;
            },
          });
          const out: Uint8Array[] = [];
          for (const chunk of chunksOf(bytes, points)) {
            resume.push(chunk, (piece) => out.push(piece));
            const text = Buffer.concat(out).toString('utf8');
            expect(text === '' || text.endsWith('\n')).toBe(true);
            const lines = text.split('\n').slice(0, -1);
            const header = resume.resumeRequest(new Request('http://x/')).headers.get('x-after');
            expect(header).toBe(lines.length === 0 ? null : String(records[lines.length - 1]?.id));
          }
          resume.end((piece) => out.push(piece));
          expect(Buffer.concat(out).equals(Buffer.from(bytes))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('Content-Range and ETag parsing', () => {
  it('accepts single, consistent ranges only', () => {
    expect(parseContentRange('bytes 0-99/100')).toEqual({ start: 0, end: 99, total: 100 });
    expect(parseContentRange('bytes 5-9/*')).toEqual({ start: 5, end: 9, total: undefined });
    for (const bad of [
      null,
      '',
      'bytes */100',
      'bytes 10-5/100',
      'bytes 0-100/100',
      'items 0-1/2',
      'bytes 0-1/2, 3-4/5',
    ]) {
      expect(parseContentRange(bad)).toBeUndefined();
    }
  });

  it('takes strong ETags only', () => {
    expect(strongETag('"abc"')).toBe('"abc"');
    expect(strongETag(' "abc" ')).toBe('"abc"');
    expect(strongETag('W/"abc"')).toBeUndefined();
    expect(strongETag('abc')).toBeUndefined();
    expect(strongETag(null)).toBeUndefined();
  });
});
