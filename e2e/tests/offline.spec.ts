import { StreamServer } from '../fixtures/stream-server.js';
import { expect, test } from '../fixtures/test.js';

/**
 * How long the test watches an offline page for reconnect attempts. The backoff below would make
 * a dozen attempts in this time if the `online` signal did not hold them.
 */
const OFFLINE_WATCH_MS = 2_000;

test('offline: no reconnect attempt while the browser is offline, recovery within a second of coming back', async ({
  lifelinePage: page,
  context,
  keepScreenshot,
}) => {
  const server = await StreamServer.start({ tickMs: 20 });
  try {
    await page.evaluate(
      (url) =>
        window.lifeline.connect(url, {
          backoff: { initialDelayMs: 50, maxDelayMs: 150 },
          minUptimeMs: 100,
          maxAttemptsPerFailure: 5,
          // Chromium's offline emulation silences an open WebSocket without closing it, as a
          // network that went away does: the heartbeat notices (the server ticks every 20 ms).
          heartbeat: { intervalMs: 100, timeoutMs: 600 },
        }),
      server.url,
    );
    expect(server.opens).toBe(1);
    await context.setOffline(true);
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    const before = await page.evaluate(() => window.lifeline.snapshot());
    await page.waitForFunction(() => window.lifeline.snapshot().status === 'recovering');
    const failure = await page.evaluate(() => window.lifeline.snapshot().lastError);
    expect(failure).toMatch(/HeartbeatTimeoutError/);
    // The server side of the silenced link is gone too, as after a real outage.
    server.terminateAll();
    // An absence is asserted over a window of time: there is no event to wait for.
    await page.waitForTimeout(OFFLINE_WATCH_MS);
    const offline = await page.evaluate(() => window.lifeline.snapshot());
    expect(offline.status).toBe('recovering');
    expect(offline.attempts).toBe(before.attempts);
    expect(offline.attemptsWhileOffline).toBe(0);
    expect(server.opens).toBe(1);

    const back = Date.now();
    await context.setOffline(false);
    await page.waitForFunction(() => window.lifeline.snapshot().status === 'open', undefined, {
      timeout: 5_000,
    });
    const recoveredAfterMs = Date.now() - back;
    const snapshot = await page.evaluate(() => window.lifeline.snapshot());
    await keepScreenshot();

    expect(recoveredAfterMs).toBeLessThan(1_000);
    expect(server.opens).toBe(2);
    // The first attempt after coming back succeeded, and the offline time spent none of the 5.
    expect(snapshot.attempts).toBe(before.attempts + 1);
    expect(snapshot.attemptsWhileOffline).toBe(0);
    expect(snapshot.recoveries).toBe(1);
  } finally {
    await context.setOffline(false);
    await server.close();
  }
});
