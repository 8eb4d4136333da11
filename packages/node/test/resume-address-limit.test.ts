// A per-remote-address limit on new sessions (issue 10, item 14): one peer creating sessions in
// bulk cannot lock other clients out for the time-to-live. The server takes links on two loopback
// addresses (127.0.0.1 for the flood, ::1 for the legitimate client).
import { once } from 'node:events';
import { InvalidOptionError, SessionRejectedError } from '@lifeline/core';
import { encodeHello } from '@lifeline/core/internal';
import { createResumeServer, type NodeResumeServer, type ResumeServerEvent } from '@lifeline/node/server';
import { expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';
import { RawResumeClient } from './support/raw-resume-client.js';

async function serverOn(options: Parameters<typeof createResumeServer>[0]) {
  const server: NodeResumeServer = createResumeServer({ handshakeTimeoutMs: 10_000, ...options });
  cleanups.push(() => server.close());
  const urls: Record<'v4' | 'v6', string> = { v4: '', v6: '' };
  for (const [family, host] of [
    ['v4', '127.0.0.1'],
    ['v6', '::1'],
  ] as const) {
    const wss = new WebSocketServer({ host, port: 0 });
    await once(wss, 'listening');
    cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
    server.attach(wss);
    const { port } = wss.address() as { port: number };
    urls[family] = family === 'v4' ? `ws://127.0.0.1:${port}` : `ws://[::1]:${port}`;
  }
  const events: ResumeServerEvent[] = [];
  server.events$.subscribe((event) => events.push(event));
  return { server, urls, events };
}

/** Opens `count` links at once, each sending HELLO(new): the answers, by kind. */
async function hellos(url: string, count: number) {
  const clients = await Promise.all(Array.from({ length: count }, () => RawResumeClient.connect(url)));
  cleanups.push(() => Promise.all(clients.map((client) => client.close())));
  for (const client of clients) client.send(encodeHello(undefined, 0));
  const answers = await Promise.all(clients.map((client) => client.nextOf(['welcome', 'reject'])));
  return {
    welcomed: answers.filter((answer) => answer?.type === 'welcome').length,
    refused: answers.filter((answer) => answer?.type === 'reject' && answer.code === 'too-many-sessions')
      .length,
  };
}

test('100 HELLOs from one address take at most maxSessionsPerAddress sessions; a client on another address still gets one', async () => {
  const { server, urls, events } = await serverOn({ maxSessions: 100, maxSessionsPerAddress: 10 });
  expect(await hellos(urls.v4, 100)).toEqual({ welcomed: 10, refused: 90 });
  expect(await hellos(urls.v6, 1)).toEqual({ welcomed: 1, refused: 0 });
  expect(server.stats).toMatchObject({ newSessions: 11, addressLimited: 90, rejected: 90 });
  const rejected = events.filter((event) => event.type === 'rejected');
  expect(rejected).toHaveLength(90);
  for (const event of rejected) {
    expect(event.error).toBeInstanceOf(SessionRejectedError);
    expect(event).toMatchObject({ code: 'too-many-sessions', sessionId: undefined });
    expect((event.error as SessionRejectedError).recoverable).toBe(true);
  }
  // A session of that address ending gives the address its place back.
  [...server.sessions.values()][0]!.close();
  expect(await hellos(urls.v4, 2)).toEqual({ welcomed: 1, refused: 1 });
});

test('off by default: the flood fills maxSessions, the limit the option exists to prevent', async () => {
  const { server, urls } = await serverOn({ maxSessions: 20 });
  expect(server.maxSessionsPerAddress).toBe(Number.POSITIVE_INFINITY);
  expect(await hellos(urls.v4, 20)).toEqual({ welcomed: 20, refused: 0 });
  expect(await hellos(urls.v6, 1)).toEqual({ welcomed: 0, refused: 1 });
});

test('a limit below 1 is refused at construction', () => {
  expect(() => createResumeServer({ maxSessionsPerAddress: 0 })).toThrow(InvalidOptionError);
});
