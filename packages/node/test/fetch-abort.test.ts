import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import {
  byteServer,
  type Handler,
  pseudoRandomBytes,
  serveForTest,
  writeRange,
} from './support/http-servers.js';

/** Timers alive in this process: a wait left behind shows up here. */
function timers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

const MiB = 1024 * 1024;
const haFetch = createHAFetch({ backoff: { initialDelayMs: 60_000, jitter: 'none' } });

/** A body far longer than any test reads, served in bounded pieces until the client goes away. */
function endless(closed: (res: ServerResponse) => void): Handler {
  const piece = pseudoRandomBytes(MiB, 21);
  return async (_req, res) => {
    res.once('close', () => closed(res));
    res.writeHead(200, { etag: '"endless"', 'content-length': String(1024 * MiB) });
    for (let i = 0; i < 1024; i++) if (!(await writeRange(res, piece, 0, piece.byteLength))) return;
    res.end();
  };
}

describe('haFetch: abort', () => {
  it('aborting mid-body errors the stream with the reason; the server sees the socket close', async () => {
    let serverClosed!: () => void;
    const closedOnServer = new Promise<void>((resolve) => {
      serverClosed = resolve;
    });
    const server = await serveForTest(endless(() => serverClosed()));
    const baseline = timers();
    const controller = new AbortController();
    const response = await haFetch(`${server.url}/endless`, { signal: controller.signal });
    expect(response.lifeline.mode).toBe('bytes');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let received = 0;
    for (let i = 0; i < 10_000 && received < 2 * MiB; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
    }
    expect(received).toBeGreaterThanOrEqual(2 * MiB);
    const reason = new Error('user stopped');
    controller.abort(reason);
    await expect(reader.read()).rejects.toBe(reason);
    await closedOnServer;
    await server.idle();
    expect(server.requests).toHaveLength(1);
    expect(timers()).toBeLessThanOrEqual(baseline);
  });

  it('aborting during the backoff after a break ends at once, and leaves no timer', async () => {
    const original = pseudoRandomBytes(MiB, 22);
    const server = await serveForTest(byteServer(original, { breakAt: [300_000] }));
    const baseline = timers();
    const controller = new AbortController();
    const reason = new Error('give up waiting');
    const response = await haFetch(`${server.url}/f`, {
      signal: controller.signal,
      lifeline: {
        onEvent: (event) => {
          // The wait before the resume is 60 s: only the abort can end it within the test.
          if (event.type === 'recovering') controller.abort(reason);
        },
      },
    });
    const started = Date.now();
    const chunks: Uint8Array[] = [];
    const failure = await (async () => {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    })().catch((error: unknown) => error);
    expect(failure).toBe(reason);
    expect(Date.now() - started).toBeLessThan(10_000);
    const bytes = Buffer.concat(chunks);
    expect(bytes.equals(original.subarray(0, bytes.byteLength))).toBe(true);
    expect(server.requests).toHaveLength(1);
    await server.idle();
    expect(timers()).toBeLessThanOrEqual(baseline);
  });

  it('aborting while the resume request is in flight aborts that request too', async () => {
    const original = pseudoRandomBytes(MiB, 23);
    const ranged = byteServer(original, { breakAt: [400_000] });
    let resumeArrived!: () => void;
    const arrived = new Promise<void>((resolve) => {
      resumeArrived = resolve;
    });
    let resumeClosed!: () => void;
    const closedOnServer = new Promise<void>((resolve) => {
      resumeClosed = resolve;
    });
    const server = await serveForTest((req, res, index) => {
      if (index === 0) return ranged(req, res, index);
      // The resume hangs: no answer until the client goes away.
      res.once('close', () => resumeClosed());
      resumeArrived();
    });
    const fast = createHAFetch({ backoff: { initialDelayMs: 1, jitter: 'none' } });
    const controller = new AbortController();
    const response = await fast(`${server.url}/f`, { signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const reading = (async () => {
      for (let i = 0; i < 100_000; i++) if ((await reader.read()).done) return undefined;
      return undefined;
    })().catch((error: unknown) => error);
    await arrived;
    const reason = new Error('stop now');
    controller.abort(reason);
    expect(await reading).toBe(reason);
    await closedOnServer;
    await server.idle();
    expect(server.requests).toHaveLength(2);
  });

  it('aborting during the wait before retrying a 503 rejects with the reason', async () => {
    const server = await serveForTest((_req, res) => {
      res.writeHead(503).end();
    });
    const baseline = timers();
    const controller = new AbortController();
    const reason = new Error('not waiting a minute');
    const failure = await haFetch(`${server.url}/busy`, {
      signal: controller.signal,
      lifeline: {
        onEvent: (event) => {
          if (event.type === 'recovering') controller.abort(reason);
        },
      },
    }).catch((error: unknown) => error);
    expect(failure).toBe(reason);
    expect(server.requests).toHaveLength(1);
    expect(timers()).toBeLessThanOrEqual(baseline);
  });

  it('an already aborted signal rejects without a request', async () => {
    const server = await serveForTest((_req, res) => {
      res.end('x');
    });
    const reason = new Error('too late');
    await expect(haFetch(server.url, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(server.requests).toHaveLength(0);
  });

  it('cancelling the body closes the connection and stops recovery', async () => {
    let serverClosed!: () => void;
    const closedOnServer = new Promise<void>((resolve) => {
      serverClosed = resolve;
    });
    const server = await serveForTest(endless(() => serverClosed()));
    const response = await haFetch(`${server.url}/endless`);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel(new Error('enough'));
    expect((await reader.read()).done).toBe(true);
    await closedOnServer;
    await server.idle();
    expect(server.requests).toHaveLength(1);
    expect(response.lifeline.breaks).toBe(0);
  });
});
