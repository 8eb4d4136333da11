/**
 * HAEventSource on real HTTP servers: every event once and in order across mid-event breaks,
 * clean ends and 503s with Retry-After; Last-Event-ID on every re-request; fresh headers per
 * attempt; irrecoverable statuses close it with the original status.
 */
import { performance } from 'node:perf_hooks';
import { HttpStatusError } from '@lifeline/core';
import { waitFor } from '@lifeline/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { HAEventSource, type HAEventSourceErrorEvent, type HAEventSourceInstance } from '../src/fetch.js';
import { startHttpServer, type TestHttpServer } from './support/http-servers.js';
import { tallyIds } from './support/resume-tally.js';
import { expectedEvent, type SseScriptOptions, sseScript } from './support/sse-script.js';

const servers: TestHttpServer[] = [];
const sources: HAEventSourceInstance[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) source.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const fast = { backoff: { initialDelayMs: 5, maxDelayMs: 20 } };

async function serveScript(options: SseScriptOptions) {
  const script = sseScript(options);
  const server = await startHttpServer((req, res) => script.handle(req, res));
  servers.push(server);
  return { server, requests: script.requests };
}

interface Seen {
  type: string;
  data: string;
  lastEventId: string;
  origin: string;
}

/** Records every event of `source` until it closes (bounded by `timeoutMs`). */
function record(source: HAEventSourceInstance, timeoutMs = 30_000) {
  const events: Seen[] = [];
  const states: string[] = [];
  const errors: unknown[] = [];
  const onMessage = (event: MessageEvent<string>) =>
    events.push({ type: event.type, data: event.data, lastEventId: event.lastEventId, origin: event.origin });
  source.onmessage = onMessage;
  source.addEventListener('tick', onMessage);
  source.onopen = () => states.push('open');
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed after ${timeoutMs} ms`)), timeoutMs);
    source.onerror = (event: HAEventSourceErrorEvent) => {
      errors.push(event.error);
      states.push(source.readyState === source.CLOSED ? 'closed' : 'reconnecting');
      if (source.readyState === source.CLOSED) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  return { events, states, errors, closed };
}

const tally = (events: readonly Seen[], count: number) =>
  tallyIds(
    events.map((event) => Number(event.lastEventId)),
    count,
  );

describe('HAEventSource', () => {
  it('has the EventSource constants and shape', () => {
    expect([HAEventSource.CONNECTING, HAEventSource.OPEN, HAEventSource.CLOSED]).toEqual([0, 1, 2]);
    const source = new HAEventSource('http://127.0.0.1:1/never', { maxAttemptsPerFailure: 1 });
    sources.push(source);
    expect(source.readyState).toBe(source.CONNECTING);
    expect(source.url).toBe('http://127.0.0.1:1/never');
    expect(source.withCredentials).toBe(false);
    source.close();
    expect(source.readyState).toBe(source.CLOSED);
  });

  it('600 events across mid-event breaks, clean ends and 503s: each once, in order, with its id, type, data and origin', async () => {
    const count = 600;
    const steps = ['break', 'end', 'unavailable', 'break', 'break', 'end', 'unavailable'] as const;
    const { server, requests } = await serveScript({
      count,
      perResponse: 40,
      plan: (index) => steps[index % steps.length] as (typeof steps)[number],
      retryAfterSeconds: 0,
    });
    const source = new HAEventSource(`${server.url}/feed`, fast);
    sources.push(source);
    const seen = record(source);
    await seen.closed;

    expect(tally(seen.events, count)).toEqual({ received: count, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(seen.events).toEqual(
      Array.from({ length: count }, (_, i) => ({ ...expectedEvent(i + 1), origin: server.url })),
    );
    // Every re-request carried the id of the last event delivered before it.
    const served = requests.filter((request) => request.step !== 'unavailable');
    let delivered = 0;
    for (const [i, request] of requests.entries()) {
      expect(request.lastEventId, `request ${i}`).toBe(i === 0 ? undefined : String(delivered));
      if (request.step === 'end' || request.step === 'break') delivered = Math.min(count, delivered + 40);
    }
    expect(served.at(-1)?.step).toBe('no-content');
    // The 204 closed it: the last error says so, with the status.
    expect(seen.errors.at(-1)).toBeInstanceOf(HttpStatusError);
    expect((seen.errors.at(-1) as HttpStatusError).status).toBe(204);
    expect(source.readyState).toBe(source.CLOSED);
  });

  it('sends fresh headers on every attempt (a function), static headers too', async () => {
    const { server, requests } = await serveScript({ count: 30, perResponse: 10 });
    let token = 0;
    const source = new HAEventSource(`${server.url}/feed`, {
      ...fast,
      headers: async () => ({ authorization: `Bearer t${++token}` }),
    });
    sources.push(source);
    const seen = record(source);
    await seen.closed;
    expect(tally(seen.events, 30)).toEqual({ received: 30, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(requests.map((request) => request.authorization)).toEqual([
      'Bearer t1',
      'Bearer t2',
      'Bearer t3',
      'Bearer t4',
    ]);

    const fixed = await serveScript({ count: 10, perResponse: 10 });
    const second = new HAEventSource(`${fixed.server.url}/feed`, {
      ...fast,
      headers: { authorization: 'Bearer fixed' },
    });
    sources.push(second);
    await record(second).closed;
    expect(fixed.requests.map((request) => request.authorization)).toEqual(['Bearer fixed', 'Bearer fixed']);
  });

  for (const status of [401, 403, 404]) {
    it(`a ${status} closes it with that status, after one request`, async () => {
      const server = await startHttpServer((_req, res) => {
        res.writeHead(status).end();
      });
      servers.push(server);
      const source = new HAEventSource(server.url, fast);
      sources.push(source);
      const seen = record(source);
      await seen.closed;
      expect(seen.errors).toHaveLength(1);
      expect(seen.errors[0]).toBeInstanceOf(HttpStatusError);
      expect((seen.errors[0] as HttpStatusError).status).toBe(status);
      expect(server.requests).toHaveLength(1);
      expect(seen.states).toEqual(['closed']);
    });
  }

  it('a reconnect answered 401 closes it with 401 after the events before it', async () => {
    const { server } = await serveScript({ count: 100, perResponse: 10 });
    const script = sseScript({ count: 100, perResponse: 10 });
    server.server.removeAllListeners('request');
    let index = 0;
    server.server.on('request', (req, res) => {
      if (index++ === 0) script.handle(req, res);
      else res.writeHead(401).end();
    });
    const source = new HAEventSource(server.url, fast);
    sources.push(source);
    const seen = record(source);
    await seen.closed;
    expect(tally(seen.events, 10)).toEqual({ received: 10, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect((seen.errors.at(-1) as HttpStatusError).status).toBe(401);
    expect(seen.states).toEqual(['open', 'reconnecting', 'closed']);
  });

  it('a server that answers 503 to every request: backoff under the budget, then closed with 503', async () => {
    const server = await startHttpServer((_req, res) => {
      res.writeHead(503).end();
    });
    servers.push(server);
    const source = new HAEventSource(server.url, { ...fast, maxAttemptsPerFailure: 3 });
    sources.push(source);
    const seen = record(source);
    await seen.closed;
    expect(server.requests).toHaveLength(4);
    expect((seen.errors.at(-1) as HttpStatusError).status).toBe(503);
    expect(seen.states).toEqual(['closed']);
  });

  it('retry: is the least wait before a reconnect', async () => {
    const at: number[] = [];
    const script = sseScript({ count: 10, perResponse: 5, retryMs: 400 });
    const server = await startHttpServer((req, res) => {
      at.push(performance.now());
      script.handle(req, res);
    });
    servers.push(server);
    const source = new HAEventSource(server.url, fast);
    sources.push(source);
    const seen = record(source);
    await seen.closed;
    expect(tally(seen.events, 10)).toEqual({ received: 10, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(at).toHaveLength(3);
    for (let i = 1; i < at.length; i++)
      expect((at[i] as number) - (at[i - 1] as number)).toBeGreaterThanOrEqual(390);
  });

  it('a non-callable onmessage counts as none (WHATWG event handler IDL): listeners get every event, nothing reported', async () => {
    const { server } = await serveScript({ count: 10, perResponse: 10 });
    const source = new HAEventSource(server.url, fast);
    sources.push(source);
    const reports: unknown[] = [];
    const report = (error: unknown) => reports.push(error);
    // HAEventSource reports a handler's throw with reportError where the runtime has it.
    (globalThis as { reportError?: unknown }).reportError = report;
    const ids: string[] = [];
    source.addEventListener('message', (event) => ids.push((event as MessageEvent).lastEventId));
    (source as unknown as { onmessage: unknown }).onmessage = 'not a function';
    try {
      // The events whose id is not a multiple of 3 are `message`s (the others are `tick`s).
      await waitFor(() => ids.length === 7, { timeoutMs: 15_000, what: 'the seven message events' });
    } finally {
      delete (globalThis as { reportError?: unknown }).reportError;
    }
    expect(ids).toEqual(['1', '2', '4', '5', '7', '8', '10']);
    expect(reports).toEqual([]);
  });

  it('close() stops it for good: no event after, no request after, sockets released', async () => {
    const { server, requests } = await serveScript({ count: 1_000_000, perResponse: 5, retryMs: 20 });
    const source = new HAEventSource(server.url, fast);
    sources.push(source);
    const received: string[] = [];
    await new Promise<void>((resolve) => {
      source.onmessage = (event) => {
        received.push(event.lastEventId);
        if (received.length === 12) {
          source.close();
          resolve();
        }
      };
    });
    const requestsAtClose = requests.length;
    await server.idle(10_000);
    expect(received).toHaveLength(12);
    expect(requests).toHaveLength(requestsAtClose);
    expect(source.readyState).toBe(source.CLOSED);
  });
});
