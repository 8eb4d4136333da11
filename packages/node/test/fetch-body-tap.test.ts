// haFetch on Node reads the bodies it resumes from undici's dispatcher (BodyTap), not through
// fetch's body stream. These pin what must not change for the caller: responses haFetch returns
// untouched stay fetch's, byte for byte; encoded bodies are decoded; fetch's own Response being
// collected does not abort a body being read; redirects and undici's MockAgent still work.
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { Agent, MockAgent, Request as UndiciRequest } from 'undici';
import { describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import { isCallbackHandler } from '../src/fetch-body-tap.js';
import {
  byteServer,
  drainBody,
  type Handler,
  pseudoRandomBytes,
  serveForTest,
} from './support/http-servers.js';

const haFetch = createHAFetch({ backoff: { initialDelayMs: 5, maxDelayMs: 20 } });
const MiB = 1024 * 1024;

/** A handler answering every request with `body` in one 200, written in 64 KiB pieces with backpressure. */
function plainBody(body: Buffer, headers: Record<string, string> = {}): Handler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', etag: '"p1"', ...headers });
    for (let offset = 0; offset < body.byteLength; offset += 64 * 1024) {
      if (!res.write(body.subarray(offset, offset + 64 * 1024))) await once(res, 'drain');
    }
    res.end();
  };
}

describe('haFetch on Node: bodies read from the dispatcher', () => {
  it('a response returned untouched (POST; GET with resume: none) is fetch’s body, byte for byte', async () => {
    const original = pseudoRandomBytes(4 * MiB, 21);
    const server = await serveForTest(plainBody(original));
    for (const init of [{ method: 'POST', body: 'x' }, { lifeline: { resume: 'none' as const } }]) {
      const response = await haFetch(`${server.url}/f`, init);
      expect(response.lifeline.mode).toBe('none');
      const { bytes, completed, error } = await drainBody(response.body);
      expect(error).toBeUndefined();
      expect(completed).toBe(true);
      expect(bytes.equals(original)).toBe(true);
    }
    expect(server.requests).toHaveLength(2);
  });

  it('a gzip-encoded 200 is decoded as fetch decodes it', async () => {
    const original = pseudoRandomBytes(1 * MiB, 22);
    const server = await serveForTest(plainBody(gzipSync(original), { 'content-encoding': 'gzip' }));
    const response = await haFetch(`${server.url}/f.gz`);
    expect(response.lifeline.mode).toBe('bytes');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.equals(original)).toBe(true);
  });

  it('a body being read is not aborted when fetch’s own Response is garbage collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const original = pseudoRandomBytes(16 * MiB, 23);
    const server = await serveForTest(plainBody(original));
    const response = await haFetch(`${server.url}/f`);
    expect(response.lifeline.mode).toBe('bytes');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    // undici's finalizer cancels the body of a collected fetch Response that nobody read: fetch's
    // Response is out of reach here, its body never read (the bytes come from the dispatcher).
    // The tap holds that body locked; without the lock (and with core not happening to keep the
    // Response reachable) this read fails, which was checked by removing both.
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const chunks: Uint8Array[] = [first.value as Uint8Array];
    let error: unknown;
    try {
      for (let i = 0; i < 1_000_000; i++) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeUndefined();
    expect(Buffer.concat(chunks).equals(original)).toBe(true);
  });

  it('after a redirect, breaks resume through the final response', async () => {
    const original = pseudoRandomBytes(4 * MiB, 24);
    const bytes = byteServer(original, { breakAt: [1 * MiB + 3, 3 * MiB + 1] });
    const server = await serveForTest((req, res, index) => {
      if (req.url === '/old') {
        res.writeHead(302, { location: '/new' }).end();
        return;
      }
      return bytes(req, res, index);
    });
    const response = await haFetch(`${server.url}/old`);
    expect(response.redirected).toBe(true);
    expect(response.url).toBe(`${server.url}/new`);
    const drained = await drainBody(response.body);
    expect(drained.error).toBeUndefined();
    expect(drained.bytes.equals(original)).toBe(true);
    expect(response.lifeline.resumes).toBe(2);
  });

  it('a dispatcher carried by an undici Request is the one used, for the first response and the continuation', async () => {
    const original = pseudoRandomBytes(2 * MiB, 25);
    const server = await serveForTest(byteServer(original, { breakAt: [1 * MiB + 7] }));
    const agent = new Agent();
    let dispatched = 0;
    const dispatcher = agent.compose((dispatch) => (options, handler) => {
      dispatched++;
      return dispatch(options, handler);
    });
    try {
      // fetch(request) uses the Request's own dispatcher when the init names none; the tap must
      // wrap that one, not undici's global dispatcher.
      const request = new UndiciRequest(`${server.url}/f`, { dispatcher } as never);
      const response = await haFetch(request as unknown as Request);
      expect(response.lifeline.mode).toBe('bytes');
      const drained = await drainBody(response.body);
      expect(drained.error).toBeUndefined();
      expect(drained.bytes.equals(original)).toBe(true);
      expect(response.lifeline.resumes).toBe(1);
      expect(dispatched).toBe(2);
    } finally {
      await agent.close();
    }
  });

  it('a resumable body dropped unread frees its connection once collected, as fetch’s own does', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const original = pseudoRandomBytes(16 * MiB, 26);
    const server = await serveForTest(plainBody(original));
    // One connection: the second request gets it only when the first response lets it go.
    const agent = new Agent({ connections: 1 });
    try {
      await (async () => {
        const dropped = await haFetch(`${server.url}/a`, { dispatcher: agent } as RequestInit);
        expect(dropped.lifeline.mode).toBe('bytes');
      })();
      let second: Response | undefined;
      const request = haFetch(`${server.url}/b`, { dispatcher: agent } as RequestInit).then((response) => {
        second = response;
      });
      // Bounded: 200 collections with a turn of the loop between (a plain fetch body is freed
      // after the first few). Before, the first response held the connection for good.
      for (let i = 0; i < 200 && second === undefined; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(second).toBeDefined();
      await request;
      await second!.body?.cancel();
    } finally {
      // destroy, not close: close() waits for a request that never ends when the test fails.
      await agent.destroy();
    }
  });

  it('works through undici’s MockAgent', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get('http://127.0.0.1:8123')
      .intercept({ path: '/mocked', method: 'GET' })
      .reply(200, 'hello from the mock', { headers: { etag: '"m1"' } });
    try {
      const response = await haFetch('http://127.0.0.1:8123/mocked', { dispatcher: agent } as RequestInit);
      expect(response.lifeline.mode).toBe('bytes');
      expect(await response.text()).toBe('hello from the mock');
    } finally {
      await agent.close();
    }
  });

  it('taps only handlers in the callback form undici 7’s fetch uses; another form passes through untapped', async () => {
    const original = pseudoRandomBytes(256 * 1024, 23);
    const server = await serveForTest(plainBody(original));
    const seen: unknown[] = [];
    const agent = new Agent();
    const dispatcher = {
      dispatch(options: unknown, handler: unknown) {
        seen.push(handler);
        return agent.dispatch(options as never, handler as never);
      },
    };
    try {
      const response = await haFetch(`${server.url}/f`, { dispatcher } as RequestInit);
      expect((await drainBody(response.body)).bytes.equals(original)).toBe(true);
    } finally {
      await agent.close();
    }
    // What reaches the caller's dispatcher is the tap's handler, in the callback form.
    expect(seen).toHaveLength(1);
    expect(isCallbackHandler(seen[0])).toBe(true);
    // undici's newer handler form (onResponseStart/onResponseData) is not wrapped: a tap speaking
    // the callback form to it would never deliver the headers.
    const newForm = {
      onRequestStart() {},
      onResponseStart() {},
      onResponseData() {},
      onResponseEnd() {},
      onResponseError() {},
    };
    expect(isCallbackHandler(newForm)).toBe(false);
    expect(isCallbackHandler({ onHeaders() {} })).toBe(false);
  });
});
