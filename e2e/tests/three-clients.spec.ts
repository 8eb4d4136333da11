import { DEFAULT_ACK_EVERY } from '@lifeline/core/resume';
import type { StreamCounts } from '../clients/stream-session.js';
import { ChildServer } from '../fixtures/child-server.js';
import { DenoClient } from '../fixtures/deno-client.js';
import { NodeClient } from '../fixtures/node-client.js';
import { expect, test } from '../fixtures/test.js';

const KILLS = 3;
const WINDOW = 8;
const PROGRESS = 150;

test('one resume server, three clients (Chromium, Node, Deno) through the same SIGKILLs: all pass the same counts', async ({
  lifelinePage: page,
  keepScreenshot,
}, testInfo) => {
  test.setTimeout(180_000);
  const server = new ChildServer(5, 'resume');
  await server.start();
  let node: NodeClient | undefined;
  let deno: DenoClient | undefined;
  try {
    const options = {
      backoff: { initialDelayMs: 20, maxDelayMs: 250 },
      minUptimeMs: 100,
      maxAttemptsPerFailure: 200,
    };
    await page.evaluate(([url, o]) => window.lifeline.connect(url, o, 'resume'), [
      server.url,
      options,
    ] as const);
    await page.evaluate((w) => window.lifeline.startStream({ window: w }), WINDOW);
    node = new NodeClient(server.url, WINDOW, 'resume');
    node.session.start();
    deno = await DenoClient.start(server.url, WINDOW, 'resume');
    const nodeClient = node;
    const denoClient = deno;

    for (let kill = 0; kill < KILLS; kill++) {
      const page0 = await page.evaluate(() => window.lifeline.snapshot().stream?.echoes.received ?? 0);
      const node0 = nodeClient.received;
      const deno0 = denoClient.received;
      // Every client is mid-stream on the current server process before it dies.
      await Promise.all([
        page.waitForFunction(
          (n) => (window.lifeline.snapshot().stream?.echoes.received ?? 0) >= n,
          page0 + PROGRESS,
        ),
        nodeClient.until(() => nodeClient.received >= node0 + PROGRESS, 'node progress'),
        denoClient.until(() => denoClient.received >= deno0 + PROGRESS, 'deno progress'),
      ]);
      await server.restart();
      // Recovered: each client is on a new link, in a new session (the old one died with the process).
      const sessions = kill + 2;
      await Promise.all([
        page.waitForFunction((n) => window.lifeline.snapshot().stream?.resume?.sessions === n, sessions),
        nodeClient.until(
          () => nodeClient.sessions >= sessions && nodeClient.links >= sessions,
          'node recovery',
        ),
        denoClient.until(
          () => denoClient.sessions >= sessions && denoClient.links >= sessions,
          'deno recovery',
        ),
      ]);
    }
    const [pageCounts, nodeCounts, denoCounts] = await Promise.all([
      page.evaluate(() => window.lifeline.stopStream()),
      node.stop(),
      deno.stop(),
    ]);
    await keepScreenshot();
    await testInfo.attach('counts.json', {
      body: JSON.stringify({ chromium: pageCounts, node: nodeCounts, deno: denoCounts }, null, 2),
      contentType: 'application/json',
    });

    expect(server.starts).toBe(KILLS + 1);
    expect(server.opens).toBe(3 * (KILLS + 1));
    const clients: [string, StreamCounts][] = [
      ['chromium', pageCounts],
      ['node', nodeCounts],
      ['deno', denoCounts],
    ];
    for (const [name, counts] of clients) {
      const resume = counts.resume!;
      expect.soft(counts.links, name).toBe(KILLS + 1);
      expect.soft(resume.sessions, name).toBe(KILLS + 1);
      expect.soft(counts.echoes.sent, name).toBeGreaterThan(KILLS * PROGRESS);
      // Each lost session reported exactly what it never got acknowledged.
      expect.soft(resume.unsettled, name).toBe(0);
      expect.soft(resume.reportedLost, name).toEqual(resume.rejected);
      expect.soft(resume.ackedAndLost, name).toBe(0);
      expect.soft(resume.acked + resume.reportedLost.length, name).toBe(counts.echoes.sent);
      expect.soft(resume.reportedLost.length, name).toBeLessThanOrEqual((WINDOW + DEFAULT_ACK_EVERY) * KILLS);
      // Echoes never duplicated or reordered; every missing echo is of a reported send.
      expect.soft(counts.echoes.duplicated, name).toBe(0);
      expect.soft(counts.echoes.reordered, name).toBe(0);
      expect.soft(resume.unechoedUnreported, name).toBe(0);
      // Ticks gap-free within each session.
      expect.soft(counts.ticks.gapSamples, name).toEqual([]);
      expect
        .soft(
          counts.ticks.perLink.every((ticks) => ticks > 0),
          name,
        )
        .toBe(true);
    }
  } finally {
    await node?.close();
    await deno?.kill();
    await server.kill();
  }
});
