import { createHash } from 'node:crypto';
import { EntityChangedError, hasErrorCode, RangeMismatchError, RangeNotSupportedError } from '@lifeline/core';
import type { HAFetchEvent } from '@lifeline/core/internal';
import { Agent, buildConnector } from 'undici';
import { describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import {
  type ByteServerOptions,
  byteServer,
  drainBody,
  pseudoRandomBytes,
  serveForTest,
  sha256,
  type TestHttpServer,
} from './support/http-servers.js';

function serve(body: Uint8Array, options?: ByteServerOptions): Promise<TestHttpServer> {
  return serveForTest(byteServer(body, options));
}

const haFetch = createHAFetch({ backoff: { initialDelayMs: 5, maxDelayMs: 20 } });

const MiB = 1024 * 1024;

describe('haFetch: bytes mode', () => {
  it('downloads 64 MiB broken 5 times mid-body: same SHA-256, 5 resumes, exactly 64 MiB delivered', async () => {
    const original = pseudoRandomBytes(64 * MiB);
    const expectedHash = sha256(original);
    const cuts = [3_251_113, 11 * MiB + 77, 23 * MiB + 4_099, 40 * MiB + 13, 61 * MiB + 999_983];
    const server = await serve(original, { breakAt: cuts });
    const events: HAFetchEvent[] = [];

    const response = await haFetch(`${server.url}/big.bin`, {
      lifeline: { onEvent: (event) => events.push(event) },
    });
    expect(response.status).toBe(200);
    expect(response.lifeline.mode).toBe('bytes');
    const hash = createHash('sha256');
    let received = 0;
    let chunks = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      received += chunk.byteLength;
      chunks++;
      if (chunks > 1_000_000) throw new Error('runaway body');
    }

    expect(received).toBe(64 * MiB);
    expect(hash.digest('hex')).toBe(expectedHash);
    expect(response.lifeline.resumes).toBe(5);
    expect(response.lifeline.breaks).toBe(5);
    expect(response.lifeline.bytesDelivered).toBe(64 * MiB);
    expect(response.lifeline.bytesDiscarded).toBe(0);
    expect(events.filter((event) => event.type === 'break')).toHaveLength(5);
    expect(events.filter((event) => event.type === 'resumed')).toHaveLength(5);

    // One plain request, then one guarded range request per break, each asking for what was missing.
    expect(server.requests).toHaveLength(6);
    expect(server.requests[0]?.headers.range).toBeUndefined();
    let previous = 0;
    for (const [i, request] of server.requests.slice(1).entries()) {
      expect(request.headers['if-range']).toBe('"v1"');
      const start = Number(
        new RegExp(`^bytes=(\\d+)-${64 * MiB - 1}$`).exec(request.headers.range ?? '')?.[1],
      );
      expect(start).toBeGreaterThanOrEqual(previous);
      expect(start).toBeLessThanOrEqual(cuts[i] as number);
      previous = start;
    }
  });

  it('resumes the caller’s own range request inside that range', async () => {
    const original = pseudoRandomBytes(4 * MiB, 7);
    const server = await serve(original, { breakAt: [1 * MiB + 5, 2 * MiB + 3] });
    const response = await haFetch(`${server.url}/part.bin`, { headers: { range: 'bytes=100000-3000000' } });
    expect(response.status).toBe(206);
    const { bytes, error, completed } = await drainBody(response.body);
    expect(error).toBeUndefined();
    expect(completed).toBe(true);
    expect(bytes.equals(original.subarray(100_000, 3_000_001))).toBe(true);
    expect(response.lifeline.resumes).toBe(2);
    for (const request of server.requests.slice(1))
      expect(request.headers.range).toMatch(/^bytes=\d+-3000000$/);
  });

  it('a server that ignores Range: ERR_RANGE_NOT_SUPPORTED, and what was delivered is an exact prefix', async () => {
    const original = pseudoRandomBytes(8 * MiB, 11);
    const server = await serve(original, { ignoreRange: true, breakAt: [3 * MiB + 17] });
    const response = await haFetch(`${server.url}/f`);
    const { bytes, error, completed } = await drainBody(response.body);

    expect(completed).toBe(false);
    expect(error).toBeInstanceOf(RangeNotSupportedError);
    expect(hasErrorCode(error, 'ERR_RANGE_NOT_SUPPORTED')).toBe(true);
    expect(bytes.byteLength).toBeGreaterThan(0);
    expect(bytes.byteLength).toBeLessThanOrEqual(3 * MiB + 17);
    expect(bytes.equals(original.subarray(0, bytes.byteLength))).toBe(true);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.headers.range).toBe(`bytes=${bytes.byteLength}-${8 * MiB - 1}`);
  });

  it('no strong ETag: the break raises ERR_RANGE_NOT_SUPPORTED without a re-request', async () => {
    const original = pseudoRandomBytes(2 * MiB, 12);
    for (const etag of [undefined, 'W/"weak"']) {
      const server = await serve(original, { etag, breakAt: [1 * MiB] });
      const response = await haFetch(`${server.url}/f`);
      const { bytes, error } = await drainBody(response.body);
      expect(error).toBeInstanceOf(RangeNotSupportedError);
      expect((error as Error).cause).toBeInstanceOf(TypeError);
      expect(bytes.equals(original.subarray(0, bytes.byteLength))).toBe(true);
      expect(server.requests).toHaveLength(1);
    }
  });

  it('the entity changed (new ETag, or 412): ERR_ENTITY_CHANGED, prefix intact', async () => {
    const original = pseudoRandomBytes(4 * MiB, 13);
    const cases: ByteServerOptions[] = [
      { changedEtag: { fromRequest: 1, etag: '"v2"' }, breakAt: [2 * MiB + 1] },
      { rangeStatus: 412, breakAt: [2 * MiB + 1] },
    ];
    for (const options of cases) {
      const server = await serve(original, options);
      const response = await haFetch(`${server.url}/f`);
      const { bytes, error } = await drainBody(response.body);
      expect(error).toBeInstanceOf(EntityChangedError);
      expect(hasErrorCode(error, 'ERR_ENTITY_CHANGED')).toBe(true);
      expect(bytes.byteLength).toBeGreaterThan(0);
      expect(bytes.equals(original.subarray(0, bytes.byteLength))).toBe(true);
      expect(server.requests).toHaveLength(2);
    }
  });

  it('a forged or wrong Content-Range: ERR_RANGE_MISMATCH, prefix intact, not one duplicated byte', async () => {
    const original = pseudoRandomBytes(4 * MiB, 14);
    const forgeries: Record<string, (start: number, end: number, total: number) => string> = {
      'start too early (would duplicate)': (start, end, total) => `bytes ${start - 1000}-${end}/${total}`,
      'start too late (would skip)': (start, end, total) => `bytes ${start + 1}-${end}/${total}`,
      'wrong total': (start, end, total) => `bytes ${start}-${end}/${total + 1}`,
      garbage: () => 'bytes abc-def/ghi',
      'end past total': (start, _end, total) => `bytes ${start}-${total}/${total}`,
    };
    for (const [name, forge] of Object.entries(forgeries)) {
      const server = await serve(original, { forgeContentRange: forge, breakAt: [1 * MiB + 333] });
      const response = await haFetch(`${server.url}/f`);
      const { bytes, error } = await drainBody(response.body);
      expect(error, name).toBeInstanceOf(RangeMismatchError);
      expect(hasErrorCode(error, 'ERR_RANGE_MISMATCH'), name).toBe(true);
      expect(bytes.byteLength, name).toBeGreaterThan(0);
      expect(bytes.byteLength, name).toBeLessThanOrEqual(1 * MiB + 333);
      expect(bytes.equals(original.subarray(0, bytes.byteLength)), name).toBe(true);
      expect(response.lifeline.resumes, name).toBe(0);
    }
  });

  it('a body that is not broken passes through unchanged, with no extra request', async () => {
    const original = pseudoRandomBytes(1 * MiB, 15);
    const server = await serve(original);
    const response = await haFetch(`${server.url}/f`);
    expect(response.headers.get('etag')).toBe('"v1"');
    expect(response.url).toBe(`${server.url}/f`);
    expect(Buffer.from(await response.arrayBuffer()).equals(original)).toBe(true);
    expect(response.lifeline.breaks).toBe(0);
    expect(server.requests).toHaveLength(1);
  });

  it('re-requests go through the dispatcher given in init', async () => {
    const original = pseudoRandomBytes(2 * MiB, 16);
    const server = await serve(original, { breakAt: [700_000] });
    const connect = buildConnector({});
    let connections = 0;
    const agent = new Agent({
      connect: (options, callback) => {
        connections++;
        connect(options, callback);
      },
    });
    try {
      const response = await haFetch(`${server.url}/f`, { dispatcher: agent } as RequestInit);
      const { bytes, error } = await drainBody(response.body);
      expect(error).toBeUndefined();
      expect(bytes.equals(original)).toBe(true);
      expect(response.lifeline.resumes).toBe(1);
      expect(connections).toBe(2);
    } finally {
      await agent.close();
    }
  });

  it('the body is a byte stream, as fetch bodies are: a BYOB reader reads across breaks', async () => {
    const original = pseudoRandomBytes(3 * MiB, 17);
    const server = await serve(original, { breakAt: [1 * MiB + 1, 2 * MiB - 1] });
    const response = await haFetch(`${server.url}/f`);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader({ mode: 'byob' });
    const received = Buffer.alloc(original.byteLength);
    let offset = 0;
    for (let i = 0; i < 1_000_000; i++) {
      // Views smaller than the chunks, and of an odd size, so chunks are split across reads.
      const { done, value } = await reader.read(new Uint8Array(10_007));
      if (done) break;
      received.set(value, offset);
      offset += value.byteLength;
    }
    expect(offset).toBe(original.byteLength);
    expect(received.equals(original)).toBe(true);
    expect(response.lifeline.resumes).toBe(2);
  });
});
