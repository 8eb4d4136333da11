// Which error classes a browser bundle carries (issue 13, the bundle's bytes). A class is kept by
// every bundle whose code names it, so code that only TESTS for an error it never makes (a sink
// ignoring a lost session, the default classifier reading an HTTP status) tests by `code`, and the
// class stays with the code that constructs it. Each class costs 30 to 100 bytes min+gz; this
// lists the classes each app's esbuild bundle carries, from the sources (`@lifeline/source`), so a
// class that slips in shows here and not only as a few bytes in the size gate.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { expect, test } from 'vitest';

const packages = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function errorClassesIn(app: string): Promise<string[]> {
  const result = await build({
    stdin: { contents: app, resolveDir: join(packages, 'browser'), sourcefile: 'app.mjs' },
    bundle: true,
    minify: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    conditions: ['@lifeline/source'],
    logLevel: 'silent',
  });
  // Every class declares a `lifeline.error.<CODE>` getter (errors.ts): its brand.
  const brands = result.outputFiles[0]!.text.match(/lifeline\.error\.ERR_[A-Z_]+/g) ?? [];
  return [...new Set(brands)].map((brand) => brand.slice('lifeline.error.'.length)).sort();
}

const WEBSOCKET = [
  'ERR_CLOSED_BY_USER',
  'ERR_CONNECT_FAILED',
  'ERR_DETACHED',
  'ERR_HEARTBEAT_TIMEOUT',
  'ERR_INVALID_OPTION',
  'ERR_LINK_CLOSED',
  'ERR_LINK_FAILED',
  'ERR_NOT_OPEN',
  'ERR_QUEUE_OVERFLOW',
  'ERR_SEND_WITHDRAWN',
];

test('an HAWebSocket-only browser bundle carries the error classes it can raise, no others', async () => {
  const classes = await errorClassesIn(`import { HAWebSocket } from '@lifeline/browser';
globalThis.socket = new HAWebSocket('wss://example.com/feed');`);
  // Not ERR_SESSION_LOST (resume's) nor ERR_HTTP_STATUS (fetch's): tested by code only.
  expect(classes).toEqual(WEBSOCKET);
}, 60_000);

test('with resume(), the resume classes join, but not the client store lock (only the stores make it)', async () => {
  const classes = await errorClassesIn(`import { HAWebSocket, resume } from '@lifeline/browser';
globalThis.socket = new HAWebSocket('wss://example.com/feed', { resume: resume() });`);
  expect(classes).toEqual(
    [
      ...WEBSOCKET,
      'ERR_BACKPRESSURE',
      'ERR_CLIENT_STORE',
      'ERR_FRAME_TOO_LARGE',
      'ERR_GOAWAY',
      'ERR_INVALID_MESSAGE',
      'ERR_MALFORMED_FRAME',
      'ERR_PROTOCOL',
      'ERR_REPLAY_WINDOW_FULL',
      'ERR_SESSION_LOST',
      'ERR_SESSION_REJECTED',
    ].sort(),
  );
}, 60_000);
