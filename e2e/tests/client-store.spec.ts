/**
 * Issue 15 in Chromium: a page whose resume session lives in IndexedDB
 * (`@lifeline/browser/client-store`) streams both ways at ~500 msg/s and is reloaded 10 times
 * mid-stream, then its renderer is crashed and the page opened again in a new tab: one server
 * session throughout; counted by the server (every load's answers) and by the page (its tally in
 * sessionStorage across the reloads): 0 lost, 0 duplicated beyond the announced repeat window,
 * 0 reordered. Two tabs on one stored session: never both attached; the second waits (default)
 * or, with `ifLocked: 'fail'`, gets ClientSessionLockedError.
 */
import { expect, type Page, test } from '@playwright/test';
import { clientStorePage, streamingResumeServer, tallyLoads } from '../fixtures/client-store-page.js';
import type { ClientStoreState } from '../page/client-store-app.js';

type W = Window & { clientStore?: ClientStoreState };
const RATE = 500;
const RELOADS = 10;

const opened = (page: Page) => page.waitForFunction(() => (window as W).clientStore?.opened === true);
const stateOf = (page: Page) => page.evaluate(() => (window as W).clientStore!);
const receivedAtLeast = (page: Page, count: number) =>
  page.waitForFunction((n) => ((window as W).clientStore?.receivedThisLoad ?? 0) >= n, count);

/** Stops the server's stream and waits until the page answered everything it was sent; tallies the answers. */
async function drain(server: Awaited<ReturnType<typeof streamingResumeServer>>) {
  server.stopSending();
  const record = server.sessions[0]!;
  const sent = server.sentTo(record);
  await expect
    .poll(() => Math.max(0, ...record.loads.flatMap((load) => load.received.map(([k]) => k))), {
      timeout: 60_000,
    })
    .toBe(sent);
  return { record, sent, serverTally: tallyLoads(record.loads) };
}

test('reloaded 10 times mid-stream, the page resumes its one session from IndexedDB: 0 lost, 0 duplicated, 0 reordered both ways', async ({
  page,
}, testInfo) => {
  test.setTimeout(300_000);
  const server = await streamingResumeServer(RATE);
  const site = await clientStorePage();
  try {
    const url = `${site.url}?ws=${encodeURIComponent(server.url)}&name=reloads`;
    const started = performance.now();
    await page.goto(url);
    await opened(page);
    const sessionId = (await stateOf(page)).sessionId;
    expect(sessionId).toMatch(/^[0-9a-f]{32}$/);
    for (let reload = 0; reload < RELOADS; reload++) {
      await receivedAtLeast(page, 100 + Math.floor(Math.random() * 300));
      await page.reload();
      await opened(page);
      const state = await stateOf(page);
      expect(state.sessionId).toBe(sessionId);
      expect(state.restored).toMatchObject({ sessionId });
    }
    await receivedAtLeast(page, 100);
    const pageTally = (await stateOf(page)).tally;

    // Stop the stream; the page answers everything sent.
    const { record, sent, serverTally } = await drain(server);
    const seqGaps = record.seqs.filter((seq, i) => seq !== i + 1).length;
    const seconds = (performance.now() - started) / 1000;
    const figures = {
      sent,
      seconds: Math.round(seconds * 10) / 10,
      serverToClientPerSecond: Math.round(sent / seconds),
      clientToServerPerSecond: Math.round(record.seqs.length / seconds),
      loads: record.loads.length,
      serverTally,
      pageTally,
      clientMessages: record.seqs.length,
      seqGaps,
      restoredPending: record.loads.map((load) => load.restored.pendingOutgoing),
      repeatWindows: record.loads.map((load) => load.restored.deliveredUpTo - load.restored.lastReceived),
    };
    await testInfo.attach('figures.json', {
      body: JSON.stringify(figures, null, 2),
      contentType: 'application/json',
    });
    console.log(`client-store reloads: ${JSON.stringify(figures)}`);

    // One server session throughout, every load on it (the first and 10 reloads).
    expect(server.sessions).toHaveLength(1);
    expect(record.loads).toHaveLength(RELOADS + 1);
    // Client to server: every message once, in order (the answers and markers of every load).
    expect(seqGaps).toBe(0);
    // Server to client, counted by the server from the page's answers.
    expect(serverTally).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, highest: sent });
    // Server to client, counted by the page across its reloads (before the crash).
    expect(pageTally).toMatchObject({ loads: RELOADS + 1, lost: 0, duplicated: 0, reordered: 0 });
    expect(pageTally.received).toBeGreaterThan(RELOADS * 100);
  } finally {
    await server.close();
    await site.close();
  }
});

test('its renderer crashed mid-stream, the page opened again in a new tab resumes the session: 0 lost, 0 duplicated, 0 reordered', async ({
  page,
  context,
}, testInfo) => {
  test.setTimeout(180_000);
  const server = await streamingResumeServer(RATE);
  const site = await clientStorePage();
  try {
    const url = `${site.url}?ws=${encodeURIComponent(server.url)}&name=crash`;
    await page.goto(url);
    await opened(page);
    const sessionId = (await stateOf(page)).sessionId;
    await receivedAtLeast(page, 300);
    // The renderer process dies: no unload, nothing flushed by the page.
    const crashed = page.waitForEvent('crash');
    await page.goto('chrome://crash').catch(() => {});
    await crashed;
    const again = await context.newPage();
    await again.goto(url);
    await opened(again);
    const state = await stateOf(again);
    expect(state.sessionId).toBe(sessionId);
    await receivedAtLeast(again, 200);
    const { record, sent, serverTally } = await drain(server);
    const figures = { sent, restored: state.restored, serverTally, clientMessages: record.seqs.length };
    await testInfo.attach('figures.json', {
      body: JSON.stringify(figures, null, 2),
      contentType: 'application/json',
    });
    console.log(`client-store crash: ${JSON.stringify(figures)}`);
    expect(server.sessions).toHaveLength(1);
    expect(record.loads).toHaveLength(2);
    expect(record.seqs.filter((seq, i) => seq !== i + 1)).toEqual([]);
    expect(serverTally).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, highest: sent });
  } finally {
    await server.close();
    await site.close();
  }
});

test('two tabs on one stored session are never both attached: the second waits and resumes it when the first goes; with ifLocked fail it gets ClientSessionLockedError', async ({
  page,
  context,
}) => {
  test.setTimeout(120_000);
  const server = await streamingResumeServer(RATE);
  const site = await clientStorePage();
  try {
    const url = `${site.url}?ws=${encodeURIComponent(server.url)}&name=shared`;
    await page.goto(url);
    await opened(page);
    const sessionId = (await stateOf(page)).sessionId;
    const second = await context.newPage();
    await second.goto(url);
    const failing = await context.newPage();
    await failing.goto(`${url}&ifLocked=fail`);
    await failing.waitForFunction(() => (window as W).clientStore?.closed !== undefined);
    const refused = await stateOf(failing);
    expect(refused.error).toBe('ERR_SESSION_LOCKED');
    expect(refused.opened).toBe(false);
    await failing.close();

    // The first tab streams on; the second waits, unattached.
    const before = (await stateOf(page)).receivedThisLoad;
    await receivedAtLeast(page, before + 500);
    const waiting = await stateOf(second);
    expect(waiting.opened).toBe(false);
    expect(waiting.receivedThisLoad).toBe(0);
    const record = server.sessions[0]!;
    expect(server.sessions).toHaveLength(1);
    expect(record.takeovers).toBe(0);
    expect(record.loads).toHaveLength(1);

    // The first tab goes: the second takes the session over and resumes it.
    await page.close();
    await opened(second);
    const resumed = await stateOf(second);
    expect(resumed.sessionId).toBe(sessionId);
    expect(resumed.restored).toMatchObject({ sessionId });
    await receivedAtLeast(second, 100);
    expect(server.sessions).toHaveLength(1);
    expect(record.loads).toHaveLength(2);
    expect(tallyLoads(record.loads)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0 });
  } finally {
    await server.close();
    await site.close();
  }
});

test('the IndexedDB store and its session serialise without the token (JSON.stringify, what a JSON logger writes)', async ({
  page,
}) => {
  test.setTimeout(60_000);
  const server = await streamingResumeServer(RATE);
  const site = await clientStorePage();
  try {
    await page.goto(`${site.url}?ws=${encodeURIComponent(server.url)}&name=printed`);
    await opened(page);
    await receivedAtLeast(page, 10);
    const sessionId = (await stateOf(page)).sessionId!;
    const printed = await page.evaluate(() =>
      (window as unknown as { clientStorePrinted: () => string }).clientStorePrinted(),
    );
    // The store holds the session's identity while open: its token must not be written out.
    expect(printed).not.toContain('token');
    expect(printed).toContain(sessionId);
    expect(JSON.parse(printed)[0]).toMatchObject({ name: 'printed' });
  } finally {
    await server.close();
    await site.close();
  }
});
