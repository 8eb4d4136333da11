/**
 * haWebSocket() from `@lifeline/node/ws` against a real `ws` server on port 0: the same echo
 * through RxJS's webSocket() and through haWebSocket(), and binaryType applied to what reaches
 * the deserializer, with and without the resume protocol.
 */

import { once } from 'node:events';
import type { HAWebSocketRefusal } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { haWebSocket } from '@lifeline/node/ws';
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { webSocket } from 'rxjs/webSocket';
import { expect, test } from 'vitest';
import WebSocket from 'ws';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

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

/** Waits (bounded) for a condition that socket events make true. */
const until = (check: () => boolean, timeoutMs: number, what: string) => waitFor(check, { timeoutMs, what });

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

test('multiplex through link resets: re-subscribed on each plain link; with a resumed session (resume: true, or a wrapped resumable), subscribed once', async () => {
  const { FaultProxy } = await import('@lifeline/node/testing');
  const { resumable } = await import('@lifeline/core/resume');
  const { WebSocketServer } = await import('ws');
  // A plain server: what each connection received.
  const plainLog: string[][] = [];
  const plain = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  plain.on('connection', (socket) => {
    const log: string[] = [];
    plainLog.push(log);
    socket.on('message', (data) => log.push(String(data)));
    socket.on('error', () => {});
  });
  await once(plain, 'listening');
  cleanups.push(() => new Promise((resolve) => plain.close(resolve)));
  // A resume server: what the session's application received, exactly once each.
  const resumeLog: string[] = [];
  const resume = createResumeServer();
  resume.sessions$.subscribe((session) =>
    session.messages$.subscribe(({ data }) => resumeLog.push(String(data))),
  );
  const { port: resumePort } = await resume.listen({ port: 0 });
  cleanups.push(() => resume.close());

  const RESETS = 3;
  const run = async (
    targetPort: number,
    config: Record<string, unknown>,
    arrived: (reset: number) => boolean,
  ) => {
    const proxy = await FaultProxy.start({ target: { port: targetPort } });
    cleanups.push(() => proxy.close());
    const subject = haWebSocket<{ sub?: string; unsub?: string }>({
      url: `ws://127.0.0.1:${proxy.port}`,
      backoff: { initialDelayMs: 10, maxDelayMs: 50 },
      ...config,
    });
    cleanups.push(() => subject.unsubscribe());
    const ended: unknown[] = [];
    const status = (wanted: string) =>
      firstValueFrom(
        subject.state$.pipe(
          filter((state) => state.status === wanted || state.status === 'closed'),
          timeout(10_000),
        ),
      );
    for (const name of ['a', 'b']) {
      subject
        .multiplex(
          () => ({ sub: name }),
          () => ({ unsub: name }),
          () => false,
        )
        .subscribe({ error: (error) => ended.push(error) });
    }
    for (let reset = 0; reset < RESETS; reset++) {
      expect(await status('open')).toMatchObject({ status: 'open' });
      // The subscriptions reached the server before the link is cut.
      await until(() => arrived(reset), 10_000, `the subscriptions on link ${reset + 1}`);
      const recovering = status('recovering');
      proxy.resetAll();
      expect(await recovering).toMatchObject({ status: 'recovering' });
    }
    expect(await status('open')).toMatchObject({ status: 'open' });
    expect(ended).toEqual([]);
    // A value after the streams: once it is there, whatever came before it on that link is too.
    subject.next({ sub: 'marker' });
    return subject;
  };

  await run((plain.address() as { port: number }).port, {}, (reset) => plainLog[reset]?.length === 2);
  await until(
    () => plainLog.length === RESETS + 1 && plainLog.at(-1)!.includes('{"sub":"marker"}'),
    10_000,
    'the marker',
  );
  expect(plainLog.map((log) => log.filter((m) => m !== '{"sub":"marker"}'))).toEqual(
    Array.from({ length: RESETS + 1 }, () => ['{"sub":"a"}', '{"sub":"b"}']),
  );

  for (const config of [{ resume: true }, { wrapTransport: (t: never) => resumable(t) }]) {
    resumeLog.length = 0;
    const subject = await run(resumePort, config, () => resumeLog.length === 2);
    await until(() => resumeLog.includes('{"sub":"marker"}'), 10_000, 'the marker');
    expect(subject.session?.stats.resumes).toBe(RESETS);
    expect(resumeLog).toEqual(['{"sub":"a"}', '{"sub":"b"}', '{"sub":"marker"}']);
  }
});

test('a lost resume session (server SIGKILLed, sessions in memory): the streams subscribe again on the new session, first and in order; unacknowledged values are refused with SessionLostError', async () => {
  const { spawn } = await import('node:child_process');
  const { createInterface } = await import('node:readline');
  const { fileURLToPath } = await import('node:url');
  const { SessionLostError } = await import('@lifeline/core');
  const script = fileURLToPath(new URL('./support/resume-server-process.ts', import.meta.url));
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const lines: { session: string; seq: number; data: string }[] = [];
  const start = async (port: number) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@lifeline/source', '--import', 'tsx', script, String(port)],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const listening = new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const parsed = JSON.parse(line);
        if ('port' in parsed) resolve(parsed.port);
        else lines.push(parsed);
      });
    });
    return { child, port: await listening };
  };
  const first = await start(0);
  const subject = haWebSocket<string>({
    url: `ws://127.0.0.1:${first.port}`,
    resume: true,
    serializer: String,
    deserializer: (event) => String(event.data),
    backoff: { initialDelayMs: 20, maxDelayMs: 100 },
  });
  cleanups.push(() => subject.unsubscribe());
  const refused: HAWebSocketRefusal<string>[] = [];
  subject.refused$.subscribe((refusal) => refused.push(refusal));
  const ended: unknown[] = [];
  for (const name of ['a', 'b']) {
    subject
      .multiplex(
        () => `sub ${name}`,
        () => `unsub ${name}`,
        () => false,
      )
      .subscribe({ error: (error) => ended.push(error) });
  }
  // The server application stops reading after "hold": what follows is never acknowledged.
  subject.next('hold');
  await until(() => lines.some((line) => line.data === 'hold'), 15_000, 'hold');
  for (const value of ['v1', 'v2']) subject.next(value);
  await until(() => subject.connection?.pending.messages === 2, 15_000, 'two unacknowledged values');
  const exited = once(first.child, 'exit');
  first.child.kill('SIGKILL');
  await exited;
  await start(first.port);
  await until(
    () => new Set(lines.map((line) => line.session)).size === 2 && lines.length >= 5,
    15_000,
    'the new session',
  );
  const [firstSession, secondSession] = [...new Set(lines.map((line) => line.session))];
  expect(lines.filter((line) => line.session === firstSession).map((line) => line.data)).toEqual([
    'sub a',
    'sub b',
    'hold',
  ]);
  expect(lines.filter((line) => line.session === secondSession).map((line) => [line.seq, line.data])).toEqual(
    [
      [1, 'sub a'],
      [2, 'sub b'],
    ],
  );
  expect(refused.map((refusal) => [refusal.value, refusal.error instanceof SessionLostError])).toEqual([
    ['v1', true],
    ['v2', true],
  ]);
  expect(ended).toEqual([]);
}, 60_000);
