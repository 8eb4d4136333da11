import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { cleanups } from './cleanups.js';

/** What a test server saw of one request. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
}

/** A node:http server on 127.0.0.1, port 0, that records requests and closes every socket it opened. */
export interface TestHttpServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly requests: SeenRequest[];
  /** Sockets currently open. */
  readonly openSockets: number;
  /** Resolves when the server has no open socket (bounded by `timeoutMs`). */
  idle(timeoutMs?: number): Promise<void>;
  /** Destroys every socket and stops listening. */
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void | Promise<void>;

/**
 * {@link startHttpServer}, closed when the current test finishes (see cleanups.ts). Call it inside
 * a test or a `beforeEach`.
 */
export async function serveForTest(handler: Handler, port = 0): Promise<TestHttpServer> {
  const server = await startHttpServer(handler, port);
  cleanups.push(() => server.close());
  return server;
}

/**
 * Starts a server whose requests go to `handler` (with their 0-based index), on `port` (0: any
 * free port). A handler that throws answers 500. Use with `try/finally` or `afterEach` to `close()`.
 */
export async function startHttpServer(handler: Handler, port = 0): Promise<TestHttpServer> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const index = requests.length;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    Promise.resolve()
      .then(() => handler(req, res, index))
      .catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
        else res.destroy();
      });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      server.emit('socket-closed');
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    server,
    requests,
    get openSockets() {
      return sockets.size;
    },
    idle(timeoutMs = 5_000) {
      if (sockets.size === 0) return Promise.resolve();
      // A plain timer, cleared on success: tests count the process's timers right after this.
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (sockets.size > 0) return;
          clearTimeout(timer);
          server.off('socket-closed', check);
          resolve();
        };
        const timer = setTimeout(() => {
          server.off('socket-closed', check);
          reject(new Error(`${sockets.size} socket(s) still open after ${timeoutMs} ms`));
        }, timeoutMs);
        server.on('socket-closed', check);
      });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      if (!server.listening) return;
      server.close();
      await once(server, 'close');
    },
  };
}

/** A port on which nothing listens: connecting to it is refused. */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Deterministic pseudo-random bytes (xorshift32), the same for the same seed. */
export function pseudoRandomBytes(length: number, seed = 0x9e3779b9): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, length);
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const WRITE_CHUNK = 64 * 1024;

/**
 * Writes `body[from, to)` with backpressure. With `cut`, waits until the last byte was handed to
 * the kernel and then destroys the socket: the client sees the body break right there.
 * Stops early (returns false) when the client went away.
 */
export async function writeRange(
  res: ServerResponse,
  body: Uint8Array,
  from: number,
  to: number,
  cut = false,
): Promise<boolean> {
  const closed = once(res, 'close').then(() => false);
  for (let offset = from; offset < to; ) {
    if (res.destroyed) return false;
    const end = Math.min(to, offset + WRITE_CHUNK);
    const chunk = body.subarray(offset, end);
    offset = end;
    if (cut && offset === to) {
      // The callback runs once the bytes are handed to the kernel, so the client gets all of
      // them before the connection drops.
      await Promise.race([new Promise<void>((resolve) => res.write(chunk, () => resolve())), closed]);
      break;
    }
    if (!res.write(chunk) && !(await Promise.race([once(res, 'drain').then(() => true), closed])))
      return false;
  }
  if (cut) res.socket?.destroy();
  return true;
}

/** Options of {@link byteServer}. */
export interface ByteServerOptions {
  /** The ETag served; `undefined` for none. @default '"v1"' */
  etag?: string | undefined;
  /** From this request index on, this ETag is served instead (the entity changed). */
  changedEtag?: { fromRequest: number; etag: string };
  /** Offsets at which a response breaks (socket destroyed), each used once, in order. */
  breakAt?: readonly number[];
  /** Answer range requests with the whole body, as a server without Range support does. */
  ignoreRange?: boolean;
  /** Answer range requests with this status instead (412, 416...). */
  rangeStatus?: number;
  /** Rewrites the Content-Range of 206 answers (a forged or broken server). */
  forgeContentRange?: (start: number, end: number, total: number) => string | undefined;
  /** Send `Content-Length` on 200s. @default true */
  contentLength?: boolean;
}

/**
 * A handler serving `body` with a strong ETag and single byte ranges (`Range: bytes=a-` and
 * `bytes=a-b`, `If-Range`), breaking mid-body where told.
 */
export function byteServer(body: Uint8Array, options: ByteServerOptions = {}): Handler {
  const breaks = [...(options.breakAt ?? [])].sort((a, b) => a - b);
  let nextBreak = 0;
  const total = body.byteLength;
  return async (req, res, index) => {
    const etag =
      options.changedEtag && index >= options.changedEtag.fromRequest
        ? options.changedEtag.etag
        : 'etag' in options
          ? options.etag
          : '"v1"';
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    if (etag !== undefined) headers.etag = etag;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    const rangeApplies =
      range !== undefined && !options.ignoreRange && (ifRange === undefined || ifRange === etag);
    if (range !== undefined && options.rangeStatus !== undefined) {
      res.writeHead(options.rangeStatus, headers).end();
      return;
    }
    if (rangeApplies) {
      const match = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!match) {
        res.writeHead(416, headers).end();
        return;
      }
      start = Number(match[1]);
      end = match[2] === '' ? total - 1 : Math.min(total - 1, Number(match[2]));
      if (start >= total) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${total}` }).end();
        return;
      }
      status = 206;
      const contentRange = options.forgeContentRange?.(start, end, total) ?? `bytes ${start}-${end}/${total}`;
      headers['content-range'] = contentRange;
      headers['content-length'] = String(end - start + 1);
    } else if (options.contentLength !== false) {
      headers['content-length'] = String(total);
    }
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    while (nextBreak < breaks.length && (breaks[nextBreak] as number) <= start) nextBreak++;
    const cut = breaks[nextBreak];
    if (cut !== undefined && cut <= end) {
      nextBreak++;
      await writeRange(res, body, start, cut, true);
      return;
    }
    if (await writeRange(res, body, start, end + 1)) res.end();
  };
}

/** One SSE event as the test server writes it. */
export function sseEvent(id: number, eol = '\n'): string {
  return `id: ${id}${eol}event: tick${eol}data: {"n":${id},${eol}data: "pad":"${'x'.repeat(id % 37)}"}${eol}${eol}`;
}

/** Options of {@link eventStreamServer}. */
export interface EventStreamServerOptions {
  /** Events 1..count. */
  count: number;
  /** Event ids in the middle of which a response breaks (after its first half), each once. */
  breakInEvent?: readonly number[];
  /** Line ending. @default '\n' */
  eol?: string;
  /** Write no `id:` lines. */
  noIds?: boolean;
}

/** A handler serving SSE events 1..count, continuing after `Last-Event-ID`, breaking mid-event where told. */
export function eventStreamServer(options: EventStreamServerOptions): Handler {
  const breaks = new Set(options.breakInEvent ?? []);
  return async (req, res) => {
    const last = Number(req.headers['last-event-id'] ?? 0);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(`: stream from ${last}${options.eol ?? '\n'}${options.eol ?? '\n'}`);
    let text = '';
    for (let id = last + 1; id <= options.count; id++) {
      let event = sseEvent(id, options.eol);
      if (options.noIds) event = event.replace(/^id: \d+\r?\n?/, '');
      if (breaks.has(id)) {
        breaks.delete(id);
        text += event.slice(0, Math.floor(event.length / 2));
        const bytes = Buffer.from(text);
        await writeRange(res, bytes, 0, bytes.byteLength, true);
        return;
      }
      text += event;
      if (text.length > 16 * 1024) {
        const bytes = Buffer.from(text);
        text = '';
        if (!(await writeRange(res, bytes, 0, bytes.byteLength))) return;
      }
    }
    res.end(text);
  };
}

/** One NDJSON record as the test server writes it. */
export function ndjsonLine(id: number): string {
  return `${JSON.stringify({ id, text: `line ${id} ${'y'.repeat(id % 53)}` })}\n`;
}

/** A handler serving NDJSON records 1..count, continuing after `?after=<id>`, breaking mid-line where told. */
export function ndjsonServer(count: number, breakInLine: readonly number[] = []): Handler {
  const breaks = new Set(breakInLine);
  return async (req, res) => {
    const after = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('after') ?? 0);
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let text = '';
    for (let id = after + 1; id <= count; id++) {
      const line = ndjsonLine(id);
      if (breaks.has(id)) {
        breaks.delete(id);
        text += line.slice(0, Math.floor(line.length / 2));
        const bytes = Buffer.from(text);
        await writeRange(res, bytes, 0, bytes.byteLength, true);
        return;
      }
      text += line;
      if (text.length > 16 * 1024) {
        const bytes = Buffer.from(text);
        text = '';
        if (!(await writeRange(res, bytes, 0, bytes.byteLength))) return;
      }
    }
    res.end(text);
  };
}

/** Everything a body delivered before it ended or failed, and how it ended. */
export interface DrainedBody {
  readonly bytes: Buffer;
  readonly chunks: number;
  /** The error the body failed with; `undefined` when it completed. */
  readonly error: unknown;
  readonly completed: boolean;
}

/** Reads a body to its end or its error (bounded by `maxChunks`), keeping every byte. */
export async function drainBody(
  body: ReadableStream<Uint8Array> | null,
  maxChunks = 1_000_000,
): Promise<DrainedBody> {
  if (body === null) throw new Error('no body');
  const chunks: Uint8Array[] = [];
  const reader = body.getReader();
  let error: unknown;
  let completed = false;
  try {
    for (let i = 0; i < maxChunks; i++) {
      const { done, value } = await reader.read();
      if (done) {
        completed = true;
        break;
      }
      chunks.push(value);
    }
  } catch (caught) {
    error = caught;
  }
  return { bytes: Buffer.concat(chunks), chunks: chunks.length, error, completed };
}
