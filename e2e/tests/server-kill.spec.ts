import { DEFAULT_ACK_EVERY } from '@lifeline/core/resume';
import { ChildServer } from '../fixtures/child-server.js';
import { expect, test } from '../fixtures/test.js';

const KILLS = 4;
const WINDOW = 8;

test('resume mode: the page recovers each time the server process is killed with SIGKILL mid-stream; each lost session reports exactly its unacknowledged sends', async ({
  lifelinePage: page,
  keepScreenshot,
}) => {
  // In-memory session store: a killed process takes its sessions with it, so every resume after a
  // kill is refused and the client starts a new session (the session-lost path).
  const server = new ChildServer(5, 'resume');
  await server.start();
  try {
    await page.evaluate(
      (url) =>
        window.lifeline.connect(
          url,
          { backoff: { initialDelayMs: 20, maxDelayMs: 250 }, minUptimeMs: 100, maxAttemptsPerFailure: 200 },
          'resume',
        ),
      server.url,
    );
    await page.evaluate((w) => window.lifeline.startStream({ window: w }), WINDOW);
    for (let kill = 0; kill < KILLS; kill++) {
      const before = await page.evaluate(() => window.lifeline.snapshot());
      await page.waitForFunction(
        (received) => (window.lifeline.snapshot().stream?.echoes.received ?? 0) >= received + 200,
        before.stream?.echoes.received ?? 0,
      );
      await server.kill();
      // The page notices the dead server and retries against a closed port before it comes back.
      await page.waitForFunction((downs) => window.lifeline.snapshot().linkDowns > downs, before.linkDowns);
      await server.start();
      await page.waitForFunction(
        (lost) => window.lifeline.snapshot().sessionsLost > lost,
        before.sessionsLost,
      );
      await page.waitForFunction((opens) => window.lifeline.snapshot().linkOpens > opens, before.linkOpens);
    }
    const counts = await page.evaluate(() => window.lifeline.stopStream());
    const snapshot = await page.evaluate(() => window.lifeline.snapshot());
    await keepScreenshot();

    expect(server.starts).toBe(KILLS + 1);
    expect(server.opens).toBe(KILLS + 1);
    expect(snapshot.recoveries).toBe(KILLS);
    expect(snapshot.status).toBe('open');
    expect(counts.links).toBe(KILLS + 1);
    const resume = counts.resume!;
    // Every kill lost the session (the store died with the process); a new one took over each time.
    expect(snapshot.sessionsLost).toBe(KILLS);
    expect(resume.sessions).toBe(KILLS + 1);
    expect(resume.resumes).toBe(0);
    // The lost sessions reported exactly the sends they never got acknowledged: the very sends
    // whose promises rejected, none that was acknowledged, and together with the acknowledged
    // ones every send made.
    expect(resume.unsettled).toBe(0);
    expect(resume.reportedLost).toEqual(resume.rejected);
    expect(resume.ackedAndLost).toBe(0);
    expect(resume.acked + resume.reportedLost.length).toBe(counts.echoes.sent);
    expect(resume.reportedLost.length).toBeGreaterThan(0);
    // Unacknowledged at a kill: the sends ahead of the echoes (the window) plus those echoed but
    // not yet acknowledged (the server acknowledges every DEFAULT_ACK_EVERY messages or after a delay).
    expect(resume.reportedLost.length).toBeLessThanOrEqual((WINDOW + DEFAULT_ACK_EVERY) * KILLS);
    // Echoes: never duplicated or reordered. An acknowledged send was always echoed (the echo goes
    // out before the acknowledgement on the same ordered link): every missing echo is of a send
    // that a lost session reported. Some reported sends were echoed: processed, but unacknowledged.
    expect(counts.echoes.duplicated).toBe(0);
    expect(counts.echoes.reordered).toBe(0);
    expect(resume.unechoedUnreported).toBe(0);
    expect(counts.echoes.lost).toBeLessThanOrEqual(resume.reportedLost.length);
    expect(counts.echoes.sent).toBeGreaterThan(KILLS * 200);
    // Ticks: gap-free within each session.
    expect(counts.ticks.gapSamples).toEqual([]);
    expect(counts.ticks.perLink).toHaveLength(KILLS + 1);
    expect(counts.ticks.perLink.every((ticks) => ticks > 0)).toBe(true);
  } finally {
    await server.kill();
  }
});
