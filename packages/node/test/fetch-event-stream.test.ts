import type { HAFetchEvent } from '@lifeline/core/internal';
import { describe, expect, it } from 'vitest';
import { createHAFetch } from '../src/fetch.js';
import {
  drainBody,
  type EventStreamServerOptions,
  eventStreamServer,
  serveForTest,
  type TestHttpServer,
} from './support/http-servers.js';

function serve(options: EventStreamServerOptions): Promise<TestHttpServer> {
  return serveForTest(eventStreamServer(options));
}

const haFetch = createHAFetch({ backoff: { initialDelayMs: 5, maxDelayMs: 20 } });

/** A minimal SSE parser (the spec's line rules): the `n` of each event's JSON data, in order. */
function parseEvents(text: string): { ns: number[]; ids: string[] } {
  const ns: number[] = [];
  const ids: string[] = [];
  let data: string[] = [];
  let id = '';
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data.length > 0) {
        ns.push((JSON.parse(data.join('\n')) as { n: number }).n);
        ids.push(id);
      }
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    if (field === 'id') id = value;
  }
  return { ns, ids };
}

/** Counts against the expected sequence 1..count. */
function tally(ns: readonly number[], count: number) {
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  let previous = 0;
  for (const n of ns) {
    if (seen.has(n)) duplicated++;
    if (n <= previous) outOfOrder++;
    seen.add(n);
    previous = n;
  }
  let lost = 0;
  for (let n = 1; n <= count; n++) if (!seen.has(n)) lost++;
  return { sent: count, received: ns.length, lost, duplicated, outOfOrder };
}

describe('haFetch: event-stream mode', () => {
  for (const [name, eol] of [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    it(`N events broken mid-event 4 times (${name} lines): every event once, in order, with the right Last-Event-ID`, async () => {
      const count = 2_000;
      const breakInEvent = [3, 500, 501, 1_999];
      const server = await serve({ count, breakInEvent, eol });
      const events: HAFetchEvent[] = [];
      const response = await haFetch(`${server.url}/events`, {
        headers: { accept: 'text/event-stream' },
        lifeline: { onEvent: (event) => events.push(event) },
      });
      expect(response.lifeline.mode).toBe('event-stream');
      const { bytes, error, completed } = await drainBody(response.body);
      expect(error).toBeUndefined();
      expect(completed).toBe(true);

      const text = bytes.toString('utf8');
      const { ns, ids } = parseEvents(text);
      expect(tally(ns, count)).toEqual({
        sent: count,
        received: count,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
      });
      expect(ids.at(-1)).toBe(String(count));
      expect(response.lifeline.resumes).toBe(4);
      expect(response.lifeline.bytesDelivered).toBe(bytes.byteLength);
      expect(response.lifeline.bytesDiscarded).toBeGreaterThan(0);

      // The server was asked to continue after the last complete event before each break.
      expect(server.requests.map((request) => request.headers['last-event-id'])).toEqual([
        undefined,
        ...breakInEvent.map((id) => String(id - 1)),
      ]);
      // Each break found the delivered stream cut at an event boundary: never half an event.
      const breaks = events.filter((event) => event.type === 'break');
      expect(breaks).toHaveLength(4);
      for (const event of breaks) {
        const delivered = bytes.subarray(0, event.bytesDelivered).toString('utf8');
        expect(delivered.endsWith(eol + eol)).toBe(true);
      }
    });
  }

  it('events without ids cannot be resumed once one was delivered: the break propagates unchanged', async () => {
    const server = await serve({ count: 100, breakInEvent: [50], noIds: true });
    const response = await haFetch(`${server.url}/events`);
    const { bytes, error, completed } = await drainBody(response.body);
    expect(completed).toBe(false);
    expect(error).toBeInstanceOf(TypeError);
    const { ns } = parseEvents(bytes.toString('utf8'));
    expect(tally(ns, 49)).toEqual({ sent: 49, received: 49, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(bytes.toString('utf8').endsWith('\n\n')).toBe(true);
    expect(server.requests).toHaveLength(1);
  });
});
