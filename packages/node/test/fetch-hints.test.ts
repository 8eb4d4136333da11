/**
 * haFetch against what servers say about retrying and ranges: Retry-After (both forms), the SSE
 * `retry:` field, an event stream ended cleanly, `Content-Range: bytes a-b/*`, a 206 without
 * its ETag, and a download cut every 64 KiB at default options.
 */
import { performance } from 'node:perf_hooks';
import { EntityChangedError } from '@lifeline/core';
import { type HAFetchEvent, parseRetryAfter } from '@lifeline/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import {
  byteServer,
  drainBody,
  type Handler,
  pseudoRandomBytes,
  sha256,
  startHttpServer,
  type TestHttpServer,
  writeRange,
} from './support/http-servers.js';
import { tallyIds } from './support/resume-tally.js';

const servers: TestHttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** A server that also records when (monotonic ms) each request arrived. */
async function serve(handler: Handler): Promise<TestHttpServer & { readonly at: number[] }> {
  const at: number[] = [];
  const server = await startHttpServer((req, res, index) => {
    at.push(performance.now());
    return handler(req, res, index);
  });
  servers.push(server);
  return Object.assign(server, { at });
}

const fast = { backoff: { initialDelayMs: 5, maxDelayMs: 20 } };
const haFetch = createHAFetch(fast);
const KiB = 1024;
const MiB = 1024 * KiB;

/** Ids of the events in an SSE text, in order (a minimal parser of `id:` and blank lines). */
function eventIds(text: string): number[] {
  const ids: number[] = [];
  let id = '';
  let data = false;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data) ids.push(Number(id));
      data = false;
    } else if (line.startsWith('id:')) id = line.slice(3).trim();
    else if (line.startsWith('data:')) data = true;
  }
  return ids;
}

const tally = tallyIds;

describe('Retry-After (RFC 9110 §10.2.3)', () => {
  it('parses delta-seconds and HTTP-dates; ignores what is neither', () => {
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:39 GMT', now)).toBe(2_000);
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:40 GMT', now)).toBe(3_000);
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-1')).toBeUndefined();
    expect(parseRetryAfter('1.5')).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('a 503 with Retry-After: 1 is retried no sooner than 1 s later', async () => {
    const server = await serve((_req, res, index) => {
      if (index === 0) res.writeHead(503, { 'retry-after': '1' }).end();
      else res.writeHead(200).end('ok');
    });
    const response = await haFetch(server.url);
    expect(await response.text()).toBe('ok');
    expect(response.lifeline.retries).toBe(1);
    expect((server.at[1] as number) - (server.at[0] as number)).toBeGreaterThanOrEqual(990);
  });

  it('a 429 with an HTTP-date 2 s ahead is retried no sooner than that date (to its 1 s resolution)', async () => {
    const server = await serve((_req, res, index) => {
      if (index === 0) {
        res.writeHead(429, { 'retry-after': new Date(Date.now() + 2_000).toUTCString() }).end();
      } else res.writeHead(200).end('ok');
    });
    const response = await haFetch(server.url);
    expect(await response.text()).toBe('ok');
    // The date drops the sub-second part, so the wait is between 1 and 2 s.
    expect((server.at[1] as number) - (server.at[0] as number)).toBeGreaterThanOrEqual(990);
  });

  it('a Retry-After on the answer to a resume is honoured too', async () => {
    const body = pseudoRandomBytes(256 * KiB);
    const bytes = byteServer(body, { breakAt: [100 * KiB] });
    const server = await serve((req, res, index) => {
      if (index === 1) res.writeHead(503, { 'retry-after': '1' }).end();
      else return bytes(req, res, index);
    });
    const response = await haFetch(server.url);
    const drained = await drainBody(response.body);
    expect(drained.error).toBeUndefined();
    expect(sha256(drained.bytes)).toBe(sha256(body));
    expect((server.at[2] as number) - (server.at[1] as number)).toBeGreaterThanOrEqual(990);
  });

  it('is capped by retryAfter.maxDelayMs, and ignored with retryAfter: false', async () => {
    const server = await serve((_req, res, index) => {
      if (index % 2 === 0) res.writeHead(503, { 'retry-after': '30' }).end();
      else res.writeHead(200).end('ok');
    });
    const capped = await haFetch(server.url, { lifeline: { retryAfter: { maxDelayMs: 300 } } });
    expect(await capped.text()).toBe('ok');
    const cappedWait = (server.at[1] as number) - (server.at[0] as number);
    expect(cappedWait).toBeGreaterThanOrEqual(290);
    expect(cappedWait).toBeLessThan(5_000);
    const ignored = await haFetch(server.url, { lifeline: { retryAfter: false } });
    expect(await ignored.text()).toBe('ok');
    expect((server.at[3] as number) - (server.at[2] as number)).toBeLessThan(1_000);
  });
});

/** SSE events `from..to` as the test server writes them. */
function events(from: number, to: number): string {
  let text = '';
  for (let id = from; id <= to; id++) text += `id: ${id}\ndata: event ${id}\n\n`;
  return text;
}

describe('event streams: retry: and the clean end', () => {
  it('after `retry: 1500` and a break, the re-request waits at least 1.5 s', async () => {
    const server = await serve(async (req, res, index) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (index === 0) {
        const text = Buffer.from(`retry: 1500\n\n${events(1, 5)}id: 6\ndata: half`);
        await writeRange(res, text, 0, text.byteLength, true);
        return;
      }
      expect(req.headers['last-event-id']).toBe('5');
      res.end(events(6, 10));
    });
    const response = await haFetch(server.url);
    const drained = await drainBody(response.body);
    expect(drained.error).toBeUndefined();
    expect(tally(eventIds(drained.bytes.toString()), 10)).toEqual({
      received: 10,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect((server.at[1] as number) - (server.at[0] as number)).toBeGreaterThanOrEqual(1_490);
  });

  it('reconnectOnEnd: a stream ended cleanly every 50 events is continued with Last-Event-ID until a 204', async () => {
    const count = 1_000;
    const seenIds: (string | undefined)[] = [];
    const server = await serve((req, res) => {
      const last = Number(req.headers['last-event-id'] ?? 0);
      seenIds.push(req.headers['last-event-id'] as string | undefined);
      if (last >= count) {
        res.writeHead(204).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Ends mid-event too: the unfinished event is dropped and comes again after Last-Event-ID.
      res.end(`${events(last + 1, Math.min(count, last + 50))}id: 0\ndata: unfinished`);
    });
    const onEvent: HAFetchEvent[] = [];
    const response = await haFetch(server.url, {
      lifeline: { reconnectOnEnd: true, onEvent: (event) => onEvent.push(event) },
    });
    const drained = await drainBody(response.body);
    expect(drained.error).toBeUndefined();
    expect(drained.completed).toBe(true);
    expect(tally(eventIds(drained.bytes.toString()), count)).toEqual({
      received: count,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(drained.bytes.toString()).not.toContain('unfinished');
    expect(server.requests).toHaveLength(count / 50 + 1);
    expect(seenIds.slice(1)).toEqual(Array.from({ length: count / 50 }, (_, i) => String((i + 1) * 50)));
    // Every continuation delivered events, so none counted against the next: attempt 1 each time.
    const attempts = onEvent.flatMap((event) => (event.type === 'recovering' ? [event.attempt] : []));
    expect(attempts).toEqual(Array.from({ length: count / 50 }, () => 1));
  });

  it('without reconnectOnEnd a clean end ends the body, as fetch does', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(events(1, 3));
    });
    const drained = await drainBody((await haFetch(server.url)).body);
    expect(drained.completed).toBe(true);
    expect(eventIds(drained.bytes.toString())).toEqual([1, 2, 3]);
    expect(server.requests).toHaveLength(1);
  });
});

describe('byte ranges', () => {
  it('a 206 with `Content-Range: bytes a-b/*` is accepted when start, end and ETag match', async () => {
    const body = pseudoRandomBytes(300 * KiB);
    const server = await serve(
      byteServer(body, {
        breakAt: [123_457],
        forgeContentRange: (start, end) => `bytes ${start}-${end}/*`,
      }),
    );
    const response = await haFetch(server.url);
    const drained = await drainBody(response.body);
    expect(drained.error).toBeUndefined();
    expect(drained.bytes.byteLength).toBe(body.byteLength);
    expect(sha256(drained.bytes)).toBe(sha256(body));
    expect(response.lifeline.resumes).toBe(1);
  });

  it('a resumed 206 without an ETag is refused (EntityChangedError): no foreign byte is spliced in', async () => {
    const body = pseudoRandomBytes(300 * KiB, 1);
    const foreign = pseudoRandomBytes(300 * KiB, 2);
    const cut = 100_003;
    const server = await serve(async (req, res, index) => {
      if (index === 0) {
        res.writeHead(200, { etag: '"v1"', 'content-length': String(body.byteLength) });
        await writeRange(res, body, 0, cut, true);
        return;
      }
      // A cache that dropped the validator and serves another entity's bytes for the range.
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1]);
      res.writeHead(206, {
        'content-range': `bytes ${start}-${foreign.byteLength - 1}/${foreign.byteLength}`,
        'content-length': String(foreign.byteLength - start),
      });
      res.end(foreign.subarray(start));
    });
    const response = await haFetch(server.url);
    const drained = await drainBody(response.body);
    expect(drained.error).toBeInstanceOf(EntityChangedError);
    expect(drained.bytes.byteLength).toBe(cut);
    expect(sha256(drained.bytes)).toBe(sha256(body.subarray(0, cut)));
  });

  it('a 2 MiB file whose every response is cut after 64 KiB completes at default options', async () => {
    const body = pseudoRandomBytes(2 * MiB, 3);
    const server = await serve(async (req, res) => {
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      const end = Math.min(body.byteLength, start + 64 * KiB);
      const headers = { etag: '"big"', 'accept-ranges': 'bytes' };
      if (start === 0) res.writeHead(200, { ...headers, 'content-length': String(body.byteLength) });
      else {
        res.writeHead(206, {
          ...headers,
          'content-range': `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`,
          'content-length': String(body.byteLength - start),
        });
      }
      await writeRange(res, body, start, end, end < body.byteLength);
      if (end === body.byteLength) res.end();
    });
    const events: HAFetchEvent[] = [];
    const response = await createHAFetch()(server.url, {
      lifeline: { onEvent: (event) => events.push(event) },
    });
    const drained = await drainBody(response.body);
    expect(drained.error).toBeUndefined();
    expect(drained.bytes.byteLength).toBe(2 * MiB);
    expect(sha256(drained.bytes)).toBe(sha256(body));
    expect(response.lifeline.breaks).toBe(31);
    expect(response.lifeline.resumes).toBe(31);
    // Each continuation delivered bytes, which ended its failure: every break starts at attempt 1.
    const attempts = events.flatMap((event) => (event.type === 'recovering' ? [event.attempt] : []));
    expect(attempts).toEqual(Array.from({ length: 31 }, () => 1));
  }, 60_000);
});
