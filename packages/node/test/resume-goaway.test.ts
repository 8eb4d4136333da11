// GOAWAY and protocol versions 1 and 2 against real servers (version 3 in resume-lazy-ack.test.ts): a version-1 client is answered in
// version 1 and never sees a GOAWAY; a client that never leaves is closed after drainTimeoutMs; a
// new client resumes through a server that only speaks version 1 (a rolling upgrade).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { attach } from '@lifeline/core';
import {
  decodeFrame,
  encodeData,
  encodeHello,
  encodeReject,
  encodeWelcome,
  frameBytes,
  resumable,
  type SessionEvent,
} from '@lifeline/core/internal';
import { createResumeServer } from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { RawResumeClient } from './support/raw-resume-client.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function echoServer() {
  const server = createResumeServer();
  server.sessions$.subscribe((session) => session.messages$.subscribe(({ data }) => session.send(data)));
  const { url } = await server.listen();
  cleanups.push(() => server.close({ goAway: false }));
  return { server, url };
}

test('a version-1 client is answered in version 1, and closed at once rather than sent a GOAWAY', async () => {
  const { server, url } = await echoServer();
  const client = await RawResumeClient.connect(url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0, 1));
  expect(await client.next('welcome')).toMatchObject({ version: 1, resumed: false });
  client.send(encodeData(1, 0, 'hi').frame);
  await client.next('data');
  const closing = performance.now();
  await server.close({ goAway: { url: 'ws://elsewhere' } });
  // Closed at once, as before version 2 (abruptly: 1006 on the client's side).
  expect([1001, 1006]).toContain(await client.closed);
  expect(client.frames.map((frame) => frame.type)).not.toContain('goaway');
  // Nothing waited for a GOAWAY this client cannot understand.
  expect(performance.now() - closing).toBeLessThan(4_000);
});

test('a version-2 client that ignores the GOAWAY is closed once drainTimeoutMs passed', async () => {
  const { server, url } = await echoServer();
  const client = await RawResumeClient.connect(url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0, 2));
  expect(await client.next('welcome')).toMatchObject({ version: 2 });
  client.send(encodeData(1, 0, 'hi').frame);
  await client.next('data');
  const closing = performance.now();
  await server.close({ goAway: { delayMs: 250, url: 'ws://b.example' }, drainTimeoutMs: 300 });
  const waited = performance.now() - closing;
  expect(await client.next('goaway')).toMatchObject({ delayMs: 250, url: 'ws://b.example' });
  expect([1001, 1006]).toContain(await client.closed);
  expect(waited).toBeGreaterThanOrEqual(290);
  expect(waited).toBeLessThan(4_000);
});

test('a new client resumes through a server that only speaks version 1: it falls back and loses nothing', async () => {
  // A scripted version-1 server: refuses any other version (closing the link, as version-1 servers
  // did), answers a version-1 HELLO, and echoes DATA frames.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
  await once(wss, 'listening');
  const versions: number[] = [];
  let echoed = 0;
  wss.on('connection', (socket) => {
    socket.on('message', (message) => {
      const frame = decodeFrame(frameBytes(message));
      if (frame.type === 'hello') {
        versions.push(frame.version);
        if (frame.version !== 1) {
          socket.send(encodeReject('unsupported-version', 'this server speaks version 1'));
          socket.close(1008, 'unsupported-version');
          return;
        }
        socket.send(encodeWelcome(false, new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), 0, 1));
      } else if (frame.type === 'data') {
        socket.send(encodeData(++echoed, frame.seq, `echo ${String(frame.data)}`).frame);
      }
    });
  });
  const { port } = wss.address() as AddressInfo;
  const transport = resumable(wsTransport(`ws://127.0.0.1:${port}`));
  const events: SessionEvent[] = [];
  transport.session$.subscribe((event) => events.push(event));
  const conn = attach(transport, { backoff: { initialDelayMs: 10 } });
  cleanups.push(() => conn.close());
  const replies: unknown[] = [];
  let bothReplies = () => {};
  const replied = new Promise<void>((resolve) => {
    bothReplies = resolve;
  });
  conn.messages$.subscribe((message) => {
    if (replies.push(message) === 2) bothReplies();
  });
  await conn.send('one');
  await conn.send('two');
  // Version 3 (this client's), refused, then version 1 on the next link.
  expect(versions).toEqual([3, 1]);
  expect(events.map((event) => event.type)).toEqual(['new']);
  await replied;
  expect(replies).toEqual(['echo one', 'echo two']);
});
