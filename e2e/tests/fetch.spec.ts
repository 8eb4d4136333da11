import { BigBody } from '../fixtures/big-body.js';
import { expect, test } from '../fixtures/test.js';

const MiB = 1024 * 1024;

test('haFetch downloads 16 MiB broken mid-stream 5 times by the server: the same SHA-256 as the original', async ({
  lifelinePage: page,
  pageServer,
  keepScreenshot,
}) => {
  const breakAt = [1.5 * MiB, 4 * MiB, 7.25 * MiB, 10 * MiB, 15 * MiB].map(Math.round);
  const body = new BigBody(16 * MiB, breakAt);
  pageServer.bigBody = body;
  const result = await page.evaluate((url) => window.lifeline.fetchAndHash(url), `${pageServer.url}big.bin`);
  await keepScreenshot();

  expect(result.bytes).toBe(16 * MiB);
  expect(result.sha256).toBe(body.sha256);
  expect(body.breaks).toBe(breakAt.length);
  expect(result.breaks).toBe(breakAt.length);
  expect(result.resumes).toBe(breakAt.length);
  // One full request, then one ranged request per break, each starting where the page stopped
  // reading (at or before the break: bytes in flight when the connection died are asked again;
  // Chromium may drop everything it had buffered, so a resume can start where the last one did).
  expect(body.requests).toHaveLength(breakAt.length + 1);
  expect(body.requests[0]).toEqual({ start: 0, status: 200, range: undefined });
  const ranged = body.requests.slice(1);
  for (const [i, request] of ranged.entries()) {
    expect(request.status).toBe(206);
    expect(request.start).toBeLessThanOrEqual(breakAt[i]!);
    expect(request.start).toBeGreaterThanOrEqual(i === 0 ? 0 : ranged[i - 1]!.start);
  }
});
