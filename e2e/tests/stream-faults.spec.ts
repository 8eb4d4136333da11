import { FaultProxy } from '@lifeline/node/testing';
import { StreamServer } from '../fixtures/stream-server.js';
import { expect, test } from '../fixtures/test.js';

const FAULTS = 20;
const WINDOW = 8;

test('resume mode: streams both ways through HAWebSocket while the link is reset and black-holed 20 times, nothing lost, duplicated or reordered', async ({
  lifelinePage: page,
  keepScreenshot,
}) => {
  const server = await StreamServer.start({ tickMs: 5, mode: 'resume' });
  const proxy = await FaultProxy.start({ target: { port: server.port } });
  try {
    await page.evaluate(
      (url) =>
        window.lifeline.connect(
          url,
          {
            backoff: { initialDelayMs: 20, maxDelayMs: 200 },
            minUptimeMs: 100,
            maxAttemptsPerFailure: 100,
            connectTimeoutMs: 1_000,
            // The browser WebSocket has no ping: silence from a server that ticks every 5 ms is
            // the sign of a black-holed link.
            heartbeat: { intervalMs: 100, timeoutMs: 1_000 },
          },
          'resume',
        ),
      `ws://127.0.0.1:${proxy.port}`,
    );
    await page.evaluate((w) => window.lifeline.startStream({ window: w }), WINDOW);
    const faults: string[] = [];
    for (let fault = 0; fault < FAULTS; fault++) {
      const before = await page.evaluate(() => window.lifeline.snapshot());
      // Mid-stream: wait for fresh echoes on the current link before each fault.
      await page.waitForFunction(
        (received) => (window.lifeline.snapshot().stream?.echoes.received ?? 0) >= received + 100,
        before.stream?.echoes.received ?? 0,
      );
      if (fault % 2 === 0) {
        faults.push('reset');
        proxy.resetAll();
      } else {
        faults.push('blackhole');
        proxy.blackhole();
        await page.waitForFunction((downs) => window.lifeline.snapshot().linkDowns > downs, before.linkDowns);
        proxy.pass();
      }
      await page.waitForFunction((opens) => window.lifeline.snapshot().linkOpens > opens, before.linkOpens);
    }
    const counts = await page.evaluate(() => window.lifeline.stopStream());
    const snapshot = await page.evaluate(() => window.lifeline.snapshot());
    await keepScreenshot();

    expect(faults).toHaveLength(FAULTS);
    expect(snapshot.recoveries).toBe(FAULTS);
    expect(snapshot.linkOpens).toBe(FAULTS + 1);
    expect(snapshot.status).toBe('open');
    // One session all along, resumed after every fault.
    expect(snapshot.sessionsLost).toBe(0);
    expect(server.sessions).toBe(1);
    expect(counts.resume).toMatchObject({
      sessions: 1,
      resumes: FAULTS,
      rejected: [],
      reportedLost: [],
      unsettled: 0,
    });
    // Client to server: every send acknowledged and echoed exactly once, in order.
    expect(counts.echoes.sent).toBeGreaterThan(FAULTS * 100);
    expect(counts.resume?.acked).toBe(counts.echoes.sent);
    expect(counts.echoes).toMatchObject({ lost: 0, duplicated: 0, reordered: 0 });
    expect(counts.echoes.received).toBe(counts.echoes.sent);
    // Server to client: the session's ticks arrive gap-free and in order across all 21 links.
    expect(counts.links).toBe(FAULTS + 1);
    expect(counts.ticks.gapSamples).toEqual([]);
    expect(counts.ticks.gaps).toBe(0);
    expect(counts.ticks.received).toBeGreaterThan(0);
  } finally {
    await proxy.close();
    await server.close();
  }
});
