import { ok as assert, deepStrictEqual as assertEquals } from 'node:assert/strict';
import {
  createHAFetch,
  HAEventSource,
  type HAEventSourceErrorEvent,
  HttpStatusError,
  haFetch,
} from '../src/index.ts';
import { head, RawHttpServer, writeAll } from './support/raw-http.ts';

const fast = { backoff: { initialDelayMs: 5, maxDelayMs: 20 } } as const;
const encoder = new TextEncoder();

function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Serves `body` with a strong ETag and `Range: bytes=a-` (or `a-<last>`); each response is cut at the next offset of `cuts`. */
function byteHandler(body: Uint8Array, cuts: number[]) {
  return async (request: { headers: Headers }, conn: Deno.Conn) => {
    const match = /^bytes=(\d+)-(\d*)$/.exec(request.headers.get('range') ?? '');
    const start = match ? Number(match[1]) : 0;
    const headers: Record<string, string> = {
      etag: '"deno-v1"',
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'content-length': String(body.byteLength - start),
    };
    if (match) headers['content-range'] = `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`;
    if (!(await writeAll(conn, head(match ? 206 : 200, headers)))) return;
    const cut = cuts.find((offset) => offset > start);
    // Cut: send up to the offset, then close the connection with the body unfinished.
    await writeAll(conn, body.subarray(start, cut ?? body.byteLength));
  };
}

Deno.test('haFetch: a 4 MiB body broken mid-stream 4 times by the server arrives whole (same SHA-256)', async () => {
  const body = pseudoRandomBytes(4 * 1024 * 1024, 7);
  const cuts = [973_662, 1_500_001, 2_750_000, 4_000_000];
  const server = RawHttpServer.start(byteHandler(body, cuts));
  try {
    const response = await createHAFetch({ fetch: (input, init) => fetch(input, init), ...fast })(
      `${server.url}/big.bin`,
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    assertEquals(bytes.byteLength, body.byteLength);
    assertEquals(await sha256(bytes), await sha256(body));
    assertEquals(response.lifeline.breaks, cuts.length);
    assertEquals(response.lifeline.resumes, cuts.length);
    assertEquals(
      server.requests.map((request) => request.headers.get('range')),
      [null, ...cuts.map((cut) => `bytes=${cut}-${body.byteLength - 1}`)],
    );
  } finally {
    await server.close();
  }
});

Deno.test('haFetch at default options (the package export): a break mid-body is resumed', async () => {
  const body = pseudoRandomBytes(1024 * 1024, 9);
  const server = RawHttpServer.start(byteHandler(body, [300_007]));
  try {
    const response = await haFetch(`${server.url}/f`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    assertEquals(await sha256(bytes), await sha256(body));
    assertEquals(response.lifeline.resumes, 1);
  } finally {
    await server.close();
  }
});

/** SSE events `from..to`; every third named `tick`. */
function events(from: number, to: number): string {
  let text = '';
  for (let id = from; id <= to; id++)
    text += `${id % 3 === 0 ? 'event: tick\n' : ''}id: ${id}\ndata: event ${id}\n\n`;
  return text;
}

Deno.test('HAEventSource: 300 events across mid-event breaks, clean ends and 503s, each once and in order', async () => {
  const count = 300;
  const per = 25;
  const steps = ['break', 'end', 'unavailable', 'break'] as const;
  let step = 0;
  const server = RawHttpServer.start(async (request, conn) => {
    const last = Number(request.headers.get('last-event-id') ?? 0);
    if (last >= count) {
      await writeAll(conn, head(204, {}));
      return;
    }
    const kind = steps[step++ % steps.length];
    if (kind === 'unavailable') {
      await writeAll(conn, head(503, { 'retry-after': '0', 'content-length': '0' }));
      return;
    }
    const to = Math.min(count, last + per);
    let text = events(last + 1, to);
    if (kind === 'break' && to < count) text += `id: ${to + 1}\ndata: half of ev`;
    const bytes = encoder.encode(text);
    // A break announces more than it sends, so the client sees the body cut, not ended.
    const length = kind === 'break' && to < count ? bytes.byteLength + 100 : bytes.byteLength;
    await writeAll(
      conn,
      head(200, { 'content-type': 'text/event-stream', 'content-length': String(length) }),
    );
    await writeAll(conn, bytes);
  });
  const source = new HAEventSource(`${server.url}/feed`, fast);
  const seen: { type: string; data: string; lastEventId: string }[] = [];
  const record = (event: MessageEvent<string>) =>
    seen.push({ type: event.type, data: event.data, lastEventId: event.lastEventId });
  source.onmessage = record;
  source.addEventListener('tick', record);
  const closed = Promise.withResolvers<unknown>();
  source.onerror = (event: HAEventSourceErrorEvent) => {
    if (source.readyState === source.CLOSED) closed.resolve(event.error);
  };
  const timer = setTimeout(() => closed.reject(new Error('not closed after 30 s')), 30_000);
  try {
    const error = await closed.promise;
    assert(error instanceof HttpStatusError && error.status === 204, String(error));
    assertEquals(
      seen,
      Array.from({ length: count }, (_, i) => ({
        type: (i + 1) % 3 === 0 ? 'tick' : 'message',
        data: `event ${i + 1}`,
        lastEventId: String(i + 1),
      })),
    );
    const ids = server.requests.map((request) => request.headers.get('last-event-id'));
    assertEquals(ids[0], null);
    // Every re-request after the first carried an id, never going back.
    for (let i = 1; i < ids.length; i++) assert(Number(ids[i]) >= Number(ids[i - 1] ?? 0), `request ${i}`);
  } finally {
    clearTimeout(timer);
    source.close();
    await server.close();
  }
});

Deno.test('haFetch: a 503 with Retry-After: 1 is retried no sooner than 1 s later; an HTTP-date likewise', async () => {
  const at: number[] = [];
  const server = RawHttpServer.start(async (request, conn) => {
    at.push(performance.now());
    if (request.index === 0) await writeAll(conn, head(503, { 'retry-after': '1', 'content-length': '0' }));
    else if (request.index === 2) {
      const date = new Date(Date.now() + 2_000).toUTCString();
      await writeAll(conn, head(429, { 'retry-after': date, 'content-length': '0' }));
    } else
      await writeAll(
        conn,
        encoder.encode(`HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok`),
      );
  });
  try {
    const haFetchFast = createHAFetch({ fetch: (input, init) => fetch(input, init), ...fast });
    assertEquals(await (await haFetchFast(server.url)).text(), 'ok');
    assertEquals(await (await haFetchFast(server.url)).text(), 'ok');
    assert(at[1]! - at[0]! >= 990, `waited ${at[1]! - at[0]!} ms after Retry-After: 1`);
    // An HTTP-date has 1 s resolution: the wait is between 1 and 2 s.
    assert(at[3]! - at[2]! >= 990, `waited ${at[3]! - at[2]!} ms after an HTTP-date 2 s ahead`);
  } finally {
    await server.close();
  }
});
