import { ChildDenoResumeServer } from '../fixtures/child-deno-resume-server.js';
import { expect, test } from '../fixtures/test.js';

const KILLS = 3;
const WINDOW = 8;

test('resume mode against the Deno resume server (@lifeline/deno/server, SQLite store) killed with SIGKILL 3 times: the page resumes its one session; sends acknowledged once, ticks gap-free, echoes 0 lost, 0 duplicated, 0 reordered', async ({
  lifelinePage: page,
  keepScreenshot,
}) => {
  // A durable store: the restarted process takes the session over, so each kill is a resume.
  const server = new ChildDenoResumeServer(5);
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
      await page.waitForFunction((downs) => window.lifeline.snapshot().linkDowns > downs, before.linkDowns);
      await server.start();
      await page.waitForFunction((opens) => window.lifeline.snapshot().linkOpens > opens, before.linkOpens);
    }
    const counts = await page.evaluate(() => window.lifeline.stopStream());
    const snapshot = await page.evaluate(() => window.lifeline.snapshot());
    await keepScreenshot();

    expect(server.starts).toBe(KILLS + 1);
    expect(snapshot.status).toBe('open');
    const resume = counts.resume!;
    // One session across every kill: each restart resumed it from the store.
    expect(snapshot.sessionsLost).toBe(0);
    expect(resume.sessions).toBe(1);
    expect(resume.resumes).toBeGreaterThanOrEqual(KILLS);
    expect(resume.rejected).toEqual([]);
    expect(resume.unsettled).toBe(0);
    expect(resume.acked).toBe(counts.echoes.sent);
    // Client to server: every send acknowledged (above), so delivered exactly once. Back: every
    // echo exactly once, in order. The application answers synchronously in `messages$`
    // (e2e/fixtures/deno-resume-server.ts, streamApp), so the server stores each answer before the
    // receipt of the message it answers (docs/protocol.md, "Answers before acknowledgements"): a
    // kill leaves the message unacknowledged (handed again, answered then) or acknowledged with its
    // answer in the replay log, and the application skips what its stored cursor says it answered.
    console.info('deno server SIGKILL, page', {
      echoes: counts.echoes,
      resumes: resume.resumes,
      ticks: counts.ticks.received,
    });
    expect(counts.echoes.sent).toBeGreaterThan(KILLS * 200);
    expect(counts.echoes).toMatchObject({ lost: 0, duplicated: 0, reordered: 0 });
    expect(counts.echoes.received).toBe(counts.echoes.sent);
    expect(resume.unechoedUnreported).toBe(0);
    // Server to client: the ticks of the one session, gap-free across the kills.
    expect(counts.ticks.gaps).toBe(0);
    expect(counts.ticks.gapSamples).toEqual([]);
  } finally {
    await server.dispose();
  }
});
