import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test as base, expect } from '@playwright/test';
import { build } from 'esbuild';
import { WebSocketServer } from 'ws';
import { expectedLog } from '../../packages/node/test/support/handler-scenario.js';

// The page: the script of on* handler behaviour (packages/node/test/support/handler-scenario.ts),
// run in Chromium against its own WebSocket and against HAWebSocket from @lifeline/browser (from
// the sources). A browser cannot tell a refused handshake from a network failure, so HAWebSocket
// is given one attempt per failure: recovery gives up at once, with `error` then `close` (1006),
// as a WebSocket ends.
const entry = `
import { HAWebSocket } from '@lifeline/browser';
import { handlerScenario } from '../packages/node/test/support/handler-scenario.ts';
class OneAttempt extends HAWebSocket {
  constructor(url) { super(url, { maxAttemptsPerFailure: 1 }); }
}
window.reports = [];
window.addEventListener('error', (event) => window.reports.push(event.message));
window.runScenario = (which, options) => handlerScenario(which === 'native' ? WebSocket : OneAttempt, options);
`;

async function pageScript(): Promise<string> {
  const result = await build({
    stdin: { contents: entry, resolveDir: fileURLToPath(new URL('..', import.meta.url)), loader: 'ts' },
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    conditions: ['@lifeline/source'],
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

const test = base;

test('conformance: Chromium WebSocket and HAWebSocket run the on* handler script alike (this/target/currentTarget, registration order, reassigned, null then set again, stopImmediatePropagation, non-function values, a throwing handler reported)', async ({
  page,
}) => {
  const server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, done) => done(!info.req.url?.startsWith('/refuse'), 403),
  });
  await once(server, 'listening');
  server.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()));
  });
  try {
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.setContent('<!doctype html><title>on* handlers</title>');
    await page.addScriptTag({ content: await pageScript() });
    const run = (which: 'native' | 'ha') =>
      page.evaluate(
        ([which, options]) =>
          (
            window as unknown as {
              runScenario: (which: string, options: object) => Promise<string[]>;
            }
          ).runScenario(which, options),
        [which, { echoUrl: url, refusedUrl: `${url}/refuse`, throwing: true }] as const,
      );
    const native = await run('native');
    const ha = await run('ha');
    expect(native).toEqual(expectedLog(true));
    expect(ha).toEqual(native);
    // Each throw reported once, as an uncaught exception of the page (window's error event).
    const reports = await page.evaluate(() => (window as unknown as { reports: string[] }).reports);
    expect(reports).toEqual([
      'Uncaught Error: thrown by onmessage for m5',
      'Uncaught Error: thrown by onmessage for m5',
    ]);
    expect(pageErrors).toEqual(['thrown by onmessage for m5', 'thrown by onmessage for m5']);
  } finally {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});
