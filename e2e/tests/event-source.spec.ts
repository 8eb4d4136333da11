import { expectedEvent, type SseStep, sseScript } from '../../packages/node/test/support/sse-script.js';
import { expect, test } from '../fixtures/test.js';

const COUNT = 120;
const PER_RESPONSE = 15;
// Native EventSource waits its reconnection time (about 3 s in Chromium) after each clean end
// unless the stream says otherwise; both clients get the same `retry:`.
const RETRY_MS = 50;

test('conformance: native EventSource and HAEventSource read the same scripted stream alike; HAEventSource also through 503s and mid-event breaks', async ({
  lifelinePage: page,
  pageServer,
  keepScreenshot,
}) => {
  const origin = pageServer.url.replace(/\/$/, '');
  const expected = Array.from({ length: COUNT }, (_, i) => ({ ...expectedEvent(i + 1), origin }));

  // 1. Clean ends only: what native EventSource handles. Both must see exactly the same events.
  const read = async (kind: 'native' | 'ha', plan?: (index: number) => SseStep) => {
    const script = sseScript({ count: COUNT, perResponse: PER_RESPONSE, retryMs: RETRY_MS, plan });
    pageServer.sse = script.handle;
    const record = await page.evaluate(([url, which]) => window.lifeline.readEventStream(url, which), [
      `${pageServer.url}sse`,
      kind,
    ] as const);
    return { record, requests: script.requests };
  };
  const native = await read('native');
  const ha = await read('ha');
  expect(native.record.events).toEqual(expected);
  expect(ha.record.events).toEqual(native.record.events);
  // Both sent Last-Event-ID on every re-request, the same ones, and stopped at the 204.
  const ids = (requests: readonly { lastEventId: string | undefined }[]) =>
    requests.map((request) => request.lastEventId ?? null);
  const expectedIds = [
    null,
    ...Array.from({ length: COUNT / PER_RESPONSE }, (_, i) => String((i + 1) * PER_RESPONSE)),
  ];
  expect(ids(native.requests)).toEqual(expectedIds);
  expect(ids(ha.requests)).toEqual(expectedIds);
  expect(ha.record.opens).toBe(native.record.opens);
  expect(native.record.closedWith).toBe('closed');
  expect(ha.record.closedWith).toBe('204');

  // 2. What native EventSource gives up on: a 503 ends it for good.
  const steps: SseStep[] = ['end', 'unavailable', 'break', 'end', 'break', 'unavailable', 'break'];
  const plan = (index: number) => steps[index % steps.length] as SseStep;
  const nativeFaults = await read('native', plan);
  expect(nativeFaults.record.closedWith).toBe('closed');
  expect(nativeFaults.record.events.length).toBeLessThan(COUNT);

  // 3. HAEventSource through the same faults: every event once, in order, identical to the clean run.
  const haFaults = await read('ha', plan);
  await keepScreenshot();
  expect(haFaults.record.events).toEqual(expected);
  expect(haFaults.record.closedWith).toBe('204');
  expect(haFaults.requests.filter((request) => request.step === 'unavailable').length).toBeGreaterThan(0);
  expect(haFaults.requests.filter((request) => request.step === 'break').length).toBeGreaterThan(0);
});

test('HAEventSource in Chromium: Retry-After waited out, a fresh Authorization header on every request', async ({
  lifelinePage: page,
  pageServer,
}) => {
  const at: number[] = [];
  const steps: SseStep[] = ['break', 'unavailable', 'end', 'break'];
  const script = sseScript({
    count: 60,
    perResponse: 15,
    plan: (index) => steps[index % steps.length] as SseStep,
    retryAfterSeconds: 1,
  });
  pageServer.sse = (request, response) => {
    at.push(performance.now());
    script.handle(request, response);
  };
  const record = await page.evaluate(
    (url) => window.lifeline.readEventStream(url, 'ha', 60_000, true),
    `${pageServer.url}sse`,
  );
  const origin = pageServer.url.replace(/\/$/, '');
  expect(record.events).toEqual(Array.from({ length: 60 }, (_, i) => ({ ...expectedEvent(i + 1), origin })));
  expect(record.closedWith).toBe('204');
  expect(script.requests.map((request) => request.authorization)).toEqual(
    script.requests.map((_, i) => `Bearer page-${i + 1}`),
  );
  const unavailable = script.requests.findIndex((request) => request.step === 'unavailable');
  expect(unavailable).toBeGreaterThan(0);
  expect(at[unavailable + 1]! - at[unavailable]!).toBeGreaterThanOrEqual(990);
});
