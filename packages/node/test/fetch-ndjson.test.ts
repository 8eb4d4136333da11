import { InvalidOptionError } from '@lifeline/core';
import type { NdjsonCursor } from '@lifeline/core/internal';
import { Request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import { drainBody, ndjsonServer, startHttpServer, type TestHttpServer } from './support/http-servers.js';
import { tallyIds } from './support/resume-tally.js';

const servers: TestHttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const haFetch = createHAFetch({ backoff: { initialDelayMs: 5, maxDelayMs: 20 } });

/** Resumes after the last record's id, as `?after=<id>`. */
const afterId: NdjsonCursor = {
  fromLine: (line) => String((JSON.parse(line) as { id: number }).id),
  applyToRequest: (request, cursor) => {
    const url = new URL(request.url);
    url.searchParams.set('after', cursor);
    return new Request(url, request as never) as unknown as globalThis.Request;
  },
};

const tally = (lines: readonly string[], count: number) => ({
  sent: count,
  ...tallyIds(
    lines.map((line) => (JSON.parse(line) as { id: number }).id),
    count,
  ),
});

describe('haFetch: ndjson mode', () => {
  it('lines broken mid-line 3 times: complete lines only, none lost or repeated', async () => {
    const count = 5_000;
    const server = await startHttpServer(ndjsonServer(count, [1, 2_500, 4_999]));
    servers.push(server);
    const breaksAt: number[] = [];
    const response = await haFetch(`${server.url}/records`, {
      lifeline: {
        cursor: afterId,
        onEvent: (event) => {
          if (event.type === 'break') breaksAt.push(event.bytesDelivered);
        },
      },
    });
    expect(response.lifeline.mode).toBe('ndjson');
    const { bytes, error, completed } = await drainBody(response.body);
    expect(error).toBeUndefined();
    expect(completed).toBe(true);

    const text = bytes.toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.split('\n').slice(0, -1);
    expect(tally(lines, count)).toEqual({
      sent: count,
      received: count,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(response.lifeline.resumes).toBe(3);
    expect(response.lifeline.bytesDiscarded).toBeGreaterThan(0);
    // A break inside the first line has no cursor yet and nothing delivered: the request is sent as it was.
    expect(server.requests.map((request) => request.url)).toEqual([
      '/records',
      '/records',
      '/records?after=2499',
      '/records?after=4998',
    ]);
    // At each break the delivered text ended with a complete line.
    for (const delivered of breaksAt) {
      expect(delivered === 0 || bytes[delivered - 1] === 0x0a).toBe(true);
    }
  });

  it('without a cursor, auto mode leaves NDJSON untouched and resume: ndjson is refused', async () => {
    const server = await startHttpServer(ndjsonServer(10, [5]));
    servers.push(server);
    const response = await haFetch(`${server.url}/records`);
    expect(response.lifeline.mode).toBe('none');
    const { error } = await drainBody(response.body);
    expect(error).toBeInstanceOf(TypeError);
    expect(server.requests).toHaveLength(1);
    await expect(haFetch(`${server.url}/records`, { lifeline: { resume: 'ndjson' } })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
  });
});
