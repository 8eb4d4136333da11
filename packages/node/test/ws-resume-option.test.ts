/**
 * `HAWebSocket`'s constructor forms and its `resume` option as every platform has them: the
 * `(url, options)` overload beside WebSocket's `(url, protocols)`, `resume: resume()` on a
 * platform that ships no protocol (what the browser package builds), the flat session handle from
 * the constructor on, and the custom events as `CustomEvent`s, `recovering` once per outage.
 */
import { once } from 'node:events';
import { InvalidMessageError, InvalidOptionError, type Link, type LinkData } from '@lifeline/core';
import { defineHAWebSocket, type WebSocketConstructor } from '@lifeline/core/internal';
import { resumable, resume } from '@lifeline/core/resume';
import { SequenceCounter, waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { EchoServer } from './support/ws-servers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const fast = { backoff: { initialDelayMs: 20, maxDelayMs: 200 }, minUptimeMs: 100 } as const;

/** What the browser package builds: the standard WebSocket interface only, no protocol shipped. */
const StandardHAWebSocket = defineHAWebSocket({
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  defaultBinaryType: 'arraybuffer',
});

/** A resume server that echoes every message as `echo:<data>`, behind a proxy that can reset links. */
async function echoResumeServer() {
  const server = createResumeServer();
  cleanups.push(() => server.close());
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      session
        .send(`echo:${typeof data === 'string' ? data : new TextDecoder().decode(data)}`)
        .catch(() => {});
    });
  });
  const { port } = await server.listen();
  const proxy = await FaultProxy.start({ target: { port } });
  cleanups.push(() => proxy.close());
  return { server, proxy, url: `ws://127.0.0.1:${proxy.port}` };
}

function event(target: EventTarget, type: string): Promise<Event> {
  return once(target, type).then(([first]) => first as Event);
}

describe('constructor forms', () => {
  it('(url, options) takes the options; (url, protocols) and (url, protocols, options) still offer the protocols', async () => {
    const offered: string[][] = [];
    const server = await EchoServer.start({
      handleProtocols: (protocols) => {
        offered.push([...protocols]);
        return protocols.values().next().value ?? false;
      },
    });
    cleanups.push(() => server.close());

    // Two arguments, the second an options object: options, not a subprotocol list.
    const withOptions = new HAWebSocket(server.url, { connectTimeoutMs: 5_000, ...fast });
    cleanups.push(() => withOptions.close());
    const resuming = new HAWebSocket(server.url, { resume: true });
    cleanups.push(() => resuming.close());
    expect(resuming.session).toBeDefined();
    expect(withOptions.session).toBeUndefined();

    const list = new HAWebSocket(server.url, ['v2', 'v1']);
    cleanups.push(() => list.close());
    const single = new HAWebSocket(server.url, 'v1', { maxAttemptsPerFailure: 3 });
    cleanups.push(() => single.close());
    const placeholder = new HAWebSocket(server.url, undefined, { maxAttemptsPerFailure: 3 });
    cleanups.push(() => placeholder.close());
    await Promise.all([
      event(withOptions, 'open'),
      event(list, 'open'),
      event(single, 'open'),
      event(placeholder, 'open'),
    ]);
    expect(list.protocol).toBe('v2');
    expect(single.protocol).toBe('v1');
    expect(placeholder.protocol).toBe('');
    expect(offered).toContainEqual(['v2', 'v1']);
    expect(offered).toContainEqual(['v1']);
    // An options object never reached ws as a protocol list or as ws's own options.
    expect(offered).toHaveLength(2);
  });

  it('(url, options) applies the recovery options: maxAttemptsPerFailure 1 gives up after one failed attempt', async () => {
    const server = await EchoServer.start();
    const socket = new HAWebSocket(server.url, { ...fast, maxAttemptsPerFailure: 1 });
    cleanups.push(() => socket.close());
    await event(socket, 'open');
    const attempts: number[] = [];
    socket.connection.events$.subscribe((e) => {
      if (e.type === 'attempting') attempts.push(e.attempt);
    });
    const closed = event(socket, 'close');
    await server.close();
    const close = (await closed) as CloseEvent;
    expect(attempts).toEqual([1]);
    expect(close.wasClean).toBe(false);
    expect(socket.readyState).toBe(HAWebSocket.CLOSED);
  });
});

describe('resume on a platform that ships no protocol (the browser build)', () => {
  it('resume: true is refused with an InvalidOptionError that names resume()', () => {
    expect(() => new StandardHAWebSocket('ws://127.0.0.1:9', { resume: true })).toThrow(InvalidOptionError);
    expect(() => new StandardHAWebSocket('ws://127.0.0.1:9', { resume: {} })).toThrow(/resume\(\)/);
  });

  it('resume: resume() delivers every message exactly once and in order through link resets; the session handle is there from the constructor and flat', async () => {
    const { proxy, url } = await echoResumeServer();
    const socket = new StandardHAWebSocket(url, { ...fast, resume: resume() });
    cleanups.push(() => socket.close());
    // There before the first link opens, with nothing established yet.
    const session = socket.session!;
    expect(session).toBeDefined();
    expect(session.state).toBe('connecting');
    expect(session.id).toBeUndefined();
    const events: string[] = [];
    session.events$.subscribe((e) => events.push(e.type));
    await event(socket, 'open');
    expect(session.state).toBe('open');
    expect(session.id).toMatch(/^[0-9a-f]{32}$/);
    const firstId = session.id;

    const echoes = new SequenceCounter();
    const TOTAL = 1_500;
    const RESETS = 5;
    const states: string[] = [];
    socket.addEventListener('recovering', () => states.push(`recovering:${session.state}`));
    socket.addEventListener('recovered', () => states.push(`recovered:${session.state}`));
    const done = new Promise<void>((resolve) => {
      socket.onmessage = (message) => {
        echoes.record(Number(String(message.data).slice(5)));
        if (echoes.uniqueCount === TOTAL) resolve();
      };
    });
    for (let i = 0; i < TOTAL; i++) {
      socket.send(String(i));
      if (i % 300 === 150) {
        proxy.resetAll();
        await firstValueFrom(socket.state$.pipe(filter((s) => s.status === 'recovering')));
        await firstValueFrom(socket.state$.pipe(filter((s) => s.status === 'open')));
      }
    }
    await done;
    await waitFor(() => session.pending === 0, {
      what: 'every send acknowledged',
      state: () => session.pending,
    });
    expect(echoes.counts(TOTAL)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, received: TOTAL });
    expect(session.id).toBe(firstId);
    expect(session.stats).toMatchObject({ resumes: RESETS, sessionsLost: 0 });
    expect(events).toEqual(['new', ...Array(RESETS).fill('resumed')]);
    // Between links the session waits to resume; on the new link it is open again.
    expect(states).toEqual(Array(RESETS).fill(['recovering:resuming', 'recovered:open']).flat());
    expect(session.lastSent).toBe(TOTAL);
    expect(session.lastReceived).toBe(TOTAL);
    socket.close();
    await event(socket, 'close');
    expect(session.state).toBe('closed');
  });

  it('a wrapTransport that returns resumable(t) gets the same handle', async () => {
    const { url } = await echoResumeServer();
    const socket = new StandardHAWebSocket(url, { ...fast, wrapTransport: (t) => resumable(t) });
    cleanups.push(() => socket.close());
    expect(socket.session?.state).toBe('connecting');
    await event(socket, 'open');
    expect(socket.session?.state).toBe('open');
    expect(socket.session?.id).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('custom events', () => {
  it('recovering fires once per outage whatever the attempts, recovered once when back; both are CustomEvents with the state as detail', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    let current = wss;
    cleanups.push(() => new Promise((resolve) => current.close(resolve)));
    const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, {
      backoff: { initialDelayMs: 20, maxDelayMs: 50 },
      maxAttemptsPerFailure: 100,
    });
    cleanups.push(() => socket.close());
    await event(socket, 'open');
    const seen: { type: string; detail: unknown; custom: boolean }[] = [];
    for (const type of ['recovering', 'recovered'] as const) {
      socket.addEventListener(type, (e) =>
        seen.push({ type, detail: e.detail, custom: e instanceof CustomEvent }),
      );
    }
    let handlerCalls = 0;
    socket.onrecovering = (e) => {
      expect(e.detail.status).toBe('recovering');
      handlerCalls++;
    };
    // Down for at least four failed attempts (the port refuses), then back on the same port.
    for (const client of current.clients) client.terminate();
    await new Promise((resolve) => current.close(resolve));
    await firstValueFrom(
      socket.connection.events$.pipe(filter((e) => e.type === 'attempting' && e.attempt >= 5)),
    );
    current = new WebSocketServer({ host: '127.0.0.1', port });
    await once(current, 'listening');
    await event(socket, 'recovered');
    expect(handlerCalls).toBe(1);
    expect(seen.map(({ type, custom }) => [type, custom])).toEqual([
      ['recovering', true],
      ['recovered', true],
    ]);
    expect(seen[0]!.detail).toMatchObject({ status: 'recovering' });
    expect((seen[0]!.detail as { error: unknown }).error).toBeInstanceOf(Error);
    expect(seen[1]!.detail).toMatchObject({ status: 'open' });
  });
});

describe('a resume server that closes the link for a protocol error (1002)', () => {
  it('ends with close alone (1002, its reason, wasClean), as a server close of a WebSocket: no error event, no new attempt; the typed error is on the state', async () => {
    // WHATWG WebSockets: a close the server started and the closing handshake finished is a clean
    // close (close event, wasClean, the server's code); `error` fires only when the client fails
    // the connection. 1002 is not recovered: a new link would carry the same broken frames.
    const server = createResumeServer();
    cleanups.push(() => server.close());
    const linkErrors: string[] = [];
    server.events$.subscribe((event) => {
      if (event.type === 'link-error') linkErrors.push((event.error as Error).name);
    });
    server.sessions$.subscribe((session) => session.messages$.subscribe(() => {}));
    const { port } = await server.listen();
    let corrupt = false;
    let opens = 0;
    const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, {
      ...fast,
      // Under the session: once `corrupt` is set, a DATA frame goes out as text, which the resume
      // server refuses as malformed (frames are binary) and closes the link for, with 1002.
      wrapTransport: (transport) =>
        resumable({
          async open(signal) {
            const link = await transport.open(signal);
            opens++;
            const send = (data: LinkData) =>
              corrupt && data instanceof Uint8Array && data[0]! >= 0x10 && data[0]! <= 0x13
                ? link.send('not a frame')
                : link.send(data);
            return Object.create(link, { send: { value: send } }) as Link<LinkData, LinkData>;
          },
        }),
    });
    cleanups.push(() => socket.close());
    const events: string[] = [];
    for (const type of ['error', 'recovering', 'close'])
      socket.addEventListener(type, () => events.push(type));
    // A message `send()` took and the connection, ending by itself, will not deliver: reported by
    // its own `dropped` event before close, as every undelivered `send()` is (nothing silently).
    const dropped: { data: unknown; error: string }[] = [];
    socket.addEventListener('dropped', (event) => {
      const { data, error } = (event as CustomEvent<{ data: unknown; error: Error }>).detail;
      events.push('dropped');
      dropped.push({ data, error: error.name });
    });
    const closed = once(socket as unknown as EventTarget, 'close');
    await once(socket as unknown as EventTarget, 'open');
    await socket.sendAsync('fine');
    corrupt = true;
    const refused = socket.sendAsync('broken').then(
      () => 'sent',
      (error: Error) => error.name,
    );
    socket.send('also undelivered');
    const [close] = (await closed) as [{ code: number; reason: string; wasClean: boolean }];
    expect({ code: close.code, reason: close.reason, wasClean: close.wasClean }).toEqual({
      code: 1002,
      reason: 'MalformedFrameError',
      wasClean: true,
    });
    expect(events).toEqual(['dropped', 'close']);
    expect(dropped).toEqual([{ data: 'also undelivered', error: 'LinkClosedError' }]);
    expect(await refused).toBe('LinkClosedError');
    expect(socket.connection.state$.value).toMatchObject({
      status: 'closed',
      reason: 'irrecoverable',
      error: { closeCode: 1002, reason: 'MalformedFrameError' },
    });
    expect({ opens, linkErrors }).toEqual({ opens: 1, linkErrors: ['MalformedFrameError'] });
  });
});

describe('a Blob, which WebSocket.send takes too (typed so: no cast)', () => {
  it('is sent as its bytes, in order, on a plain connection; with resume, send() fires dropped and sendAsync() rejects, with an InvalidMessageError, and the sends around it arrive', async () => {
    const blob = () => new Blob([new TextEncoder().encode('blob')]);
    const plain = await EchoServer.start();
    cleanups.push(() => plain.close());
    const { url } = await echoResumeServer();
    const tallies: Record<string, unknown> = {};
    for (const kind of ['plain', 'resume'] as const) {
      const socket = new HAWebSocket(kind === 'plain' ? plain.url : url, {
        ...fast,
        resume: kind === 'resume',
      });
      socket.binaryType = 'arraybuffer';
      cleanups.push(() => socket.close());
      const received: string[] = [];
      const dropped: string[] = [];
      const settled: string[] = [];
      socket.onmessage = ({ data }) =>
        received.push(typeof data === 'string' ? data : `bytes:${new TextDecoder().decode(data)}`);
      socket.ondropped = ({ detail }) =>
        dropped.push(
          `${detail.data instanceof Blob ? 'Blob' : typeof detail.data} ${(detail.error as Error).name}`,
        );
      await event(socket, 'open');
      socket.send('before');
      socket.send(blob());
      socket.send('between');
      await socket.sendAsync(blob()).then(
        () => settled.push('resolved'),
        (error: Error) => settled.push(`rejected ${error.name} ${error instanceof InvalidMessageError}`),
      );
      socket.send('after');
      const echo = kind === 'plain' ? '' : 'echo:';
      const expected =
        kind === 'plain'
          ? ['before', 'bytes:blob', 'between', 'bytes:blob', 'after']
          : [`${echo}before`, `${echo}between`, `${echo}after`];
      await waitFor(() => received.length >= expected.length, {
        what: `the ${kind} echoes`,
        state: () => ({ received, dropped, settled }),
      });
      tallies[kind] = { received, dropped, settled };
    }
    expect(tallies).toEqual({
      plain: {
        received: ['before', 'bytes:blob', 'between', 'bytes:blob', 'after'],
        dropped: [],
        settled: ['resolved'],
      },
      resume: {
        received: ['echo:before', 'echo:between', 'echo:after'],
        dropped: ['Blob InvalidMessageError'],
        settled: ['rejected InvalidMessageError true'],
      },
    });
  });
});
