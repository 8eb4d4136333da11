// The web demo (`pnpm demo --web`) in a real browser: its counters must show no loss, duplicate or
// reorder across the kills. The page's screenshot goes to e2e/test-results/demo-web.png; set
// UPDATE_SCREENSHOT=1 to write the tracked docs/images/demo-web.png (the README's picture) instead,
// so an ordinary run leaves the working tree clean.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect, type Page, test } from '@playwright/test';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const screenshot = fileURLToPath(
  new URL(
    process.env.UPDATE_SCREENSHOT === '1' ? '../../docs/images/demo-web.png' : '../test-results/demo-web.png',
    import.meta.url,
  ),
);

/** Starts `pnpm demo --web` (its module, as the script runs it) and resolves with the page's URL. */
async function startDemo(): Promise<{ demo: ChildProcess; url: string }> {
  const demo = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', 'demo.ts', '--web', '--kill-every', '6'],
    { cwd: examples, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: demo.stdout! });
  const exited = once(demo, 'exit').then(([code]) => {
    throw new Error(`the demo exited (${code}) before printing its URL`);
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('no URL from the demo in 60 s')), 60_000).unref(),
  );
  try {
    for (;;) {
      const [line] = (await Promise.race([once(lines, 'line'), exited, timeout])) as [string];
      const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)?.[1];
      if (url) return { demo, url };
    }
  } finally {
    exited.catch(() => {});
  }
}

const count = async (page: Page, id: string) => Number(await page.locator(`#${id}`).textContent());

test('pnpm demo --web: the page streams through SIGKILLs with nothing lost or duplicated; the buttons kill, cut and take it offline', async ({
  page,
}) => {
  test.setTimeout(240_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const { demo, url } = await startDemo();
  try {
    await page.goto(url);
    // Traffic, then at least one timed kill and a recovery from it, with the counters at zero.
    await expect.poll(() => count(page, 'rate'), { timeout: 30_000 }).toBeGreaterThan(50);
    await expect.poll(() => count(page, 'kills'), { timeout: 60_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => count(page, 'recoveries'), { timeout: 60_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => count(page, 'rate'), { timeout: 30_000 }).toBeGreaterThan(50);

    // The kill button: its answer comes once the server was killed and restarted; the page recovers.
    const recoveries = await count(page, 'recoveries');
    const [answer] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith('/api/kill')),
      page.click('#kill'),
    ]);
    expect(answer.ok()).toBe(true);
    await expect.poll(() => count(page, 'recoveries'), { timeout: 60_000 }).toBeGreaterThan(recoveries);

    // Offline (connections reset and refused) and a cut network (packets dropped; the heartbeat
    // notices): each shows as recovering, and the page recovers once the network is back.
    for (const button of ['offline', 'cut'] as const) {
      await page.click(`#${button}`);
      await expect(page.locator('#network')).toHaveText(button, { timeout: 10_000 });
      await expect(page.locator('#state')).toHaveAttribute('data-status', 'recovering', { timeout: 30_000 });
      await page.click(`#${button}`);
      await expect(page.locator('#network')).toHaveText('up', { timeout: 10_000 });
      await expect(page.locator('#state')).toHaveAttribute('data-status', 'open', { timeout: 60_000 });
    }
    const sent = await count(page, 'sent');
    await expect.poll(() => count(page, 'echoed'), { timeout: 60_000 }).toBeGreaterThanOrEqual(sent);
    await expect.poll(() => count(page, 'rate'), { timeout: 30_000 }).toBeGreaterThan(50);

    expect(await count(page, 'lost')).toBe(0);
    expect(await count(page, 'duplicated')).toBe(0);
    expect(await count(page, 'reordered')).toBe(0);
    expect(await count(page, 'sessions-lost')).toBe(0);
    expect(await count(page, 'refused')).toBe(0);
    expect(await count(page, 'kills')).toBeGreaterThanOrEqual(2);
    mkdirSync(fileURLToPath(new URL('.', `file://${screenshot}`)), { recursive: true });
    await page.screenshot({ path: screenshot });
    expect(errors).toEqual([]);
  } finally {
    // Ctrl-C: the demo stops its server and proxy and exits by itself.
    const exited = once(demo, 'exit');
    demo.kill('SIGINT');
    const stopped = await Promise.race([
      exited.then(([code]) => code as number | null),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref()),
    ]);
    if (stopped === 'timeout') demo.kill('SIGKILL');
    expect(stopped).toBe(0);
  }
});
