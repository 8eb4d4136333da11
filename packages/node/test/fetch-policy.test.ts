import type { IncomingMessage } from 'node:http';
import { HttpStatusError } from '@lifeline/core';
import type { HAFetchEvent } from '@lifeline/core/internal';
import { describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import {
  byteServer,
  drainBody,
  pseudoRandomBytes,
  refusedPort,
  serveForTest,
  type TestHttpServer,
  writeRange,
} from './support/http-servers.js';

async function bodyOf(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

const haFetch = createHAFetch({ maxAttemptsPerFailure: 4, backoff: { initialDelayMs: 5, maxDelayMs: 20 } });

describe('haFetch: what is retried and what is not', () => {
  it('401, 403 and 404 come back unchanged, after exactly one request', async () => {
    for (const status of [401, 403, 404]) {
      const server = await serveForTest((_req, res) => {
        res
          .writeHead(status, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain' })
          .end(`no ${status}`);
      });
      const response = await haFetch(`${server.url}/secret`);
      expect(response.status).toBe(status);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await response.text()).toBe(`no ${status}`);
      expect(response.lifeline.retries).toBe(0);
      expect(server.requests).toHaveLength(1);
    }
  });

  it('a 503 then a 200 on the first request: retried, and the 200 is returned', async () => {
    const server = await serveForTest((_req, res, index) => {
      if (index === 0) res.writeHead(503).end('busy');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('fine');
    });
    const response = await haFetch(`${server.url}/x`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('fine');
    expect(response.lifeline.retries).toBe(1);
    expect(server.requests).toHaveLength(2);
  });

  it('a refused connection is retried for a GET until the server is there', async () => {
    const port = await refusedPort();
    let late: Promise<TestHttpServer> | undefined;
    const response = await haFetch(`http://127.0.0.1:${port}/late`, {
      lifeline: {
        // The server comes up while the client backs off after its second refusal.
        onEvent: (event) => {
          if (event.type === 'recovering' && event.attempt === 2) {
            late = serveForTest((_req, res) => {
              res.writeHead(200, { 'content-type': 'text/plain' }).end('up');
            }, port);
          }
        },
        backoff: { initialDelayMs: 200, jitter: 'none' },
        maxAttemptsPerFailure: 10,
      },
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('up');
    expect(response.lifeline.retries).toBeGreaterThanOrEqual(2);
    expect((await late)?.requests).toHaveLength(1);
  });

  it('budget exhausted on statuses: the last response is returned as fetch would', async () => {
    const server = await serveForTest((_req, res, index) => {
      res.writeHead(503, { 'retry-after': '1' }).end(`attempt ${index}`);
    });
    const response = await haFetch(`${server.url}/down`, { lifeline: { maxAttemptsPerFailure: 2 } });
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('attempt 2');
    expect(server.requests).toHaveLength(3);
  });

  it('budget exhausted on refusals: the original error', async () => {
    const port = await refusedPort();
    const events: HAFetchEvent[] = [];
    const failure = await haFetch(`http://127.0.0.1:${port}/`, {
      lifeline: { maxAttemptsPerFailure: 3, onEvent: (event) => events.push(event) },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TypeError);
    expect(((failure as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(events.filter((event) => event.type === 'attempting')).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ type: 'gave-up', reason: 'attempts-exhausted' });
  });

  it('POST is not sent again by default; it is with retryNonIdempotent', async () => {
    const bodies: string[] = [];
    const server = await serveForTest(async (req, res, index) => {
      bodies.push(await bodyOf(req));
      if (index < 2) res.writeHead(503).end('busy');
      else res.writeHead(201).end('created');
    });
    const refused = await haFetch(`${server.url}/orders`, { method: 'POST', body: 'order-1' });
    expect(refused.status).toBe(503);
    expect(server.requests).toHaveLength(1);

    const accepted = await haFetch(`${server.url}/orders`, {
      method: 'POST',
      body: 'order-2',
      lifeline: { retryNonIdempotent: true },
    });
    expect(accepted.status).toBe(201);
    expect(server.requests).toHaveLength(3);
    expect(bodies).toEqual(['order-1', 'order-2', 'order-2']);
  });

  it('a POST whose response body breaks is not resumed: the break propagates unchanged', async () => {
    const original = pseudoRandomBytes(1024 * 1024, 3);
    const server = await serveForTest(async (req, res) => {
      await bodyOf(req);
      res.writeHead(200, { etag: '"v1"', 'content-length': String(original.byteLength) });
      await writeRange(res, original, 0, 300_000, true);
    });
    const response = await haFetch(`${server.url}/report`, { method: 'POST', body: 'q' });
    expect(response.lifeline.mode).toBe('none');
    const { bytes, error } = await drainBody(response.body);
    expect(error).toBeInstanceOf(TypeError);
    expect(bytes.equals(original.subarray(0, bytes.byteLength))).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('a request body that is a stream is never sent again, even for PUT', async () => {
    const server = await serveForTest(async (req, res) => {
      await bodyOf(req);
      res.writeHead(503).end('busy');
    });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('chunk'));
        controller.close();
      },
    });
    const response = await haFetch(`${server.url}/blob`, {
      method: 'PUT',
      body,
      duplex: 'half',
      lifeline: { retryNonIdempotent: true },
    } as RequestInit);
    expect(response.status).toBe(503);
    expect(server.requests).toHaveLength(1);
  });

  it('a resume that keeps failing ends the body with the original break once the budget is spent', async () => {
    const original = pseudoRandomBytes(512 * 1024, 4);
    const ranged = byteServer(original, { breakAt: [200_000] });
    const server = await serveForTest((req, res, index) => {
      if (index === 0) return ranged(req, res, index);
      res.writeHead(503).end();
    });
    const response = await haFetch(`${server.url}/f`, { lifeline: { maxAttemptsPerFailure: 3 } });
    const { bytes, error } = await drainBody(response.body);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('terminated');
    expect(bytes.equals(original.subarray(0, bytes.byteLength))).toBe(true);
    expect(server.requests).toHaveLength(4);
  });

  it('a resume answered 401 ends the body with that status at once', async () => {
    const original = pseudoRandomBytes(512 * 1024, 5);
    const ranged = byteServer(original, { breakAt: [100_000] });
    const server = await serveForTest((req, res, index) => {
      if (index === 0) return ranged(req, res, index);
      res.writeHead(401).end();
    });
    const response = await haFetch(`${server.url}/f`);
    const { error } = await drainBody(response.body);
    expect(error).toBeInstanceOf(HttpStatusError);
    expect((error as HttpStatusError).status).toBe(401);
    expect(server.requests).toHaveLength(2);
  });
});
