/**
 * haWebSocket() from `@lifeline/node/ws` against a real `ws` server on port 0: the same echo
 * through RxJS's webSocket() and through haWebSocket(), and binaryType applied to what reaches
 * the deserializer, with and without the resume protocol.
 */
import { createResumeServer } from '@lifeline/node/server';
import { haWebSocket } from '@lifeline/node/ws';
import { firstValueFrom, take, toArray } from 'rxjs';
import { webSocket } from 'rxjs/webSocket';
import { afterEach, expect, test } from 'vitest';
import WebSocket from 'ws';
import { EchoServer } from './support/ws-servers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

test('the same JSON echo through webSocket() and haWebSocket()', async () => {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  for (const subject of [
    webSocket<{ n: number }>({ url: server.url, WebSocketCtor: WebSocket as never }),
    haWebSocket<{ n: number }>({ url: server.url, WebSocketCtor: WebSocket as never }),
    haWebSocket<{ n: number }>(server.url),
  ]) {
    const echoes = firstValueFrom(subject.pipe(take(3), toArray()));
    for (let n = 1; n <= 3; n++) subject.next({ n });
    expect(await echoes).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  }
  expect(server.accepted).toBe(3);
});

const bytesOf = (data: unknown) => [...new Uint8Array(data as ArrayBuffer)];

test('binaryType: a Buffer by default in Node, an ArrayBuffer or a Blob when asked, with and without resume', async () => {
  const echo = await EchoServer.start();
  cleanups.push(() => echo.close());
  const resume = createResumeServer();
  resume.sessions$.subscribe((session) =>
    session.messages$.subscribe(({ data }) => session.send(data).catch(() => {})),
  );
  const { url: resumeUrl } = await resume.listen({ port: 0 });
  cleanups.push(() => resume.close());
  const kinds: string[] = [];
  for (const [url, resumeOption] of [
    [echo.url, false],
    [resumeUrl, true],
  ] as const) {
    for (const binaryType of [undefined, 'arraybuffer', 'blob'] as const) {
      const subject = haWebSocket<unknown>({
        url,
        resume: resumeOption,
        binaryType,
        serializer: (value) => value as Uint8Array,
        deserializer: (event) => event.data,
      });
      const received = firstValueFrom(subject);
      subject.next(new Uint8Array([1, 2, 3]));
      const data = await received;
      subject.unsubscribe();
      const kind = Buffer.isBuffer(data)
        ? 'Buffer'
        : data instanceof ArrayBuffer
          ? 'ArrayBuffer'
          : (data as object).constructor.name;
      kinds.push(`${resumeOption ? 'resume' : 'plain'} ${binaryType ?? 'default'}: ${kind}`);
      expect(
        data instanceof Blob ? bytesOf(await data.arrayBuffer()) : [...new Uint8Array(data as Uint8Array)],
      ).toEqual([1, 2, 3]);
    }
  }
  expect(kinds).toEqual([
    'plain default: Buffer',
    'plain arraybuffer: ArrayBuffer',
    'plain blob: Blob',
    'resume default: Buffer',
    'resume arraybuffer: ArrayBuffer',
    'resume blob: Blob',
  ]);
});
