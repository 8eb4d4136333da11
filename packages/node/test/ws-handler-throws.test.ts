/**
 * An application handler that throws never reaches the connection: HAWebSocket's on* handlers,
 * its listeners and the connection's subscribers are the application's code, called by the
 * connection (directly, through its sink, not through an rxjs subscription). As a browser does
 * (WHATWG DOM "inner invoke", HTML "report the exception"), the exception is reported (Node: an
 * uncaught exception, later, never an unhandled rejection) and the connection goes on: it opens,
 * flushes its queue, recovers, and every other listener and subscriber still hears each event.
 */
import { once } from 'node:events';
import type { ConnectionState } from '@lifeline/core';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket, resume } from '@lifeline/node/ws';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

type Socket = InstanceType<typeof HAWebSocket>;
const WAIT = { timeoutMs: 15_000 };

/**
 * What the process reports while the test runs: its uncaught exceptions and unhandled rejections,
 * taken from vitest (which would fail the run on them) and given back when the test ends.
 */
function captureReports(): string[] {
  const reports: string[] = [];
  const saved = {
    uncaughtException: process.listeners('uncaughtException'),
    unhandledRejection: process.listeners('unhandledRejection'),
  };
  const onUncaught = (error: unknown) => reports.push(`uncaught: ${(error as Error).message}`);
  const onRejection = (error: unknown) => reports.push(`unhandledRejection: ${(error as Error)?.message}`);
  process.removeAllListeners('uncaughtException');
  process.removeAllListeners('unhandledRejection');
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  cleanups.push(() => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    for (const listener of saved.uncaughtException) process.on('uncaughtException', listener);
    for (const listener of saved.unhandledRejection) process.on('unhandledRejection', listener);
  });
  return reports;
}

async function plainEcho(): Promise<EchoServer> {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  return server;
}

async function resumeEchoUrl(): Promise<string> {
  const server = createResumeServer();
  server.sessions$.subscribe((session) => session.messages$.subscribe(({ data }) => session.send(data)));
  const { port } = await server.listen({ port: 0 });
  cleanups.push(() => server.close());
  return `ws://127.0.0.1:${port}`;
}

/** What each of the socket's audiences heard. */
function listen(socket: Socket) {
  const heard = { states: [] as string[], messages$: [] as unknown[], listener: [] as unknown[], open: 0 };
  socket.connection.state$.subscribe((state: ConnectionState) => heard.states.push(state.status));
  socket.connection.messages$.subscribe((data) => heard.messages$.push(String(data)));
  socket.addEventListener('message', (event) => heard.listener.push((event as MessageEvent).data));
  socket.addEventListener('open', () => heard.open++);
  return heard;
}

describe('a throwing on* handler is reported and the connection goes on', () => {
  for (const mode of ['plain', 'resume'] as const) {
    it(`${mode}: onopen throws; the socket opens, the queued send is flushed, the open listener hears it`, async () => {
      const reports = captureReports();
      const url = mode === 'plain' ? (await plainEcho()).url : await resumeEchoUrl();
      const socket = new HAWebSocket(url, mode === 'plain' ? {} : { resume: resume() });
      cleanups.push(() => socket.close());
      const heard = listen(socket);
      const onmessage: unknown[] = [];
      socket.onopen = () => {
        throw new Error('app bug in onopen');
      };
      socket.onmessage = (event) => onmessage.push(event.data);
      socket.send('before-open');
      await waitFor(() => onmessage.length === 1, {
        ...WAIT,
        what: 'the echo of the send queued before open',
      });
      socket.send('after-open');
      await waitFor(() => onmessage.length === 2 && reports.length === 1, {
        ...WAIT,
        what: 'the second echo',
      });
      expect(onmessage).toEqual(['before-open', 'after-open']);
      expect(heard.messages$).toEqual(['before-open', 'after-open']);
      expect(heard.listener).toEqual(['before-open', 'after-open']);
      expect(heard.open).toBe(1);
      expect(heard.states).toEqual(['connecting', 'open']);
      expect(socket.readyState).toBe(1);
      expect(reports).toEqual(['uncaught: app bug in onopen']);
    }, 30_000);
  }

  it('onmessage throws: messages$ subscribers and message listeners still get every message, each throw reported', async () => {
    const reports = captureReports();
    const server = await plainEcho();
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    const heard = listen(socket);
    let calls = 0;
    socket.onmessage = () => {
      calls++;
      throw new Error(`app bug in onmessage ${calls}`);
    };
    for (let i = 0; i < 5; i++) socket.send(`m${i}`);
    const sent = ['m0', 'm1', 'm2', 'm3', 'm4'];
    await waitFor(() => heard.listener.length === 5 && reports.length === 5, {
      ...WAIT,
      what: 'five messages',
    });
    expect(calls).toBe(5);
    expect(heard.messages$).toEqual(sent);
    expect(heard.listener).toEqual(sent);
    expect(reports).toEqual([1, 2, 3, 4, 5].map((n) => `uncaught: app bug in onmessage ${n}`));
    expect(heard.states).toEqual(['connecting', 'open']);
  }, 30_000);

  it('a non-callable onmessage counts as none (WHATWG event handler IDL): no TypeError, listeners hear every message', async () => {
    const reports = captureReports();
    const server = await plainEcho();
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    const heard = listen(socket);
    (socket as unknown as { onmessage: unknown }).onmessage = 'not a function';
    socket.send('a');
    socket.send('b');
    await waitFor(() => heard.listener.length === 2, { ...WAIT, what: 'both messages' });
    socket.send('c');
    await waitFor(() => heard.listener.length === 3, { ...WAIT, what: 'the third message' });
    expect(heard.listener).toEqual(['a', 'b', 'c']);
    expect(heard.messages$).toEqual(['a', 'b', 'c']);
    expect(reports).toEqual([]);
  }, 30_000);

  for (const which of ['onrecovering', 'onrecovered'] as const) {
    it(`${which} throws: the socket recovers and delivers the sends made during and after the outage`, async () => {
      const reports = captureReports();
      const server = await plainEcho();
      const socket = new HAWebSocket(server.url);
      cleanups.push(() => socket.close());
      const heard = listen(socket);
      const got: unknown[] = [];
      socket.onmessage = (event) => got.push(event.data);
      socket[which] = () => {
        throw new Error(`app bug in ${which}`);
      };
      const recovered = once(socket as unknown as EventTarget, 'recovered');
      let closed = 0;
      socket.addEventListener('close', () => closed++);
      await once(socket as unknown as EventTarget, 'open');
      socket.send('a1');
      await waitFor(() => got.length === 1, { ...WAIT, what: 'the first echo' });
      const recovering = once(socket as unknown as EventTarget, 'recovering');
      server.terminateAll();
      await recovering;
      socket.send('during1');
      socket.send('during2');
      await recovered;
      await waitFor(() => got.length === 3, { ...WAIT, what: 'the sends queued during the outage' });
      socket.send('after');
      await waitFor(() => got.length === 4 && reports.length === 1, {
        ...WAIT,
        what: 'the send after recovery',
      });
      expect(got).toEqual(['a1', 'during1', 'during2', 'after']);
      expect(heard.messages$).toEqual(got);
      expect(heard.states).toEqual(['connecting', 'open', 'recovering', 'open']);
      expect(socket.readyState).toBe(1);
      expect(closed).toBe(0);
      expect(reports).toEqual([`uncaught: app bug in ${which}`]);
    }, 30_000);
  }

  it('ondropped throws: send() returns normally, the dropped listener hears the drop', async () => {
    const reports = captureReports();
    const server = await plainEcho();
    const socket = new HAWebSocket(server.url, {
      queue: { maxMessages: 1, overflow: 'drop-oldest' },
    });
    cleanups.push(() => socket.close());
    const dropped: unknown[] = [];
    socket.addEventListener('dropped', (event) => dropped.push((event as CustomEvent).detail.data));
    socket.ondropped = () => {
      throw new Error('app bug in ondropped');
    };
    const got: unknown[] = [];
    socket.onmessage = (event) => got.push(event.data);
    // Still connecting: the second send makes room by dropping the first.
    socket.send('first');
    expect(() => socket.send('second')).not.toThrow();
    await waitFor(() => got.length === 1 && reports.length === 1, { ...WAIT, what: 'the kept message' });
    expect(got).toEqual(['second']);
    expect(dropped.map(String)).toEqual(['first']);
    expect(reports).toEqual(['uncaught: app bug in ondropped']);
  }, 30_000);
});

describe('a throwing subscriber of the connection stops no one else', () => {
  it('a messages$ subscriber and an events$ subscriber that throw: onmessage, listeners and the other subscribers get every message', async () => {
    const reports = captureReports();
    const server = await plainEcho();
    const socket = new HAWebSocket(server.url);
    cleanups.push(() => socket.close());
    socket.connection.messages$.subscribe(() => {
      throw new Error('app bug in a messages$ subscriber');
    });
    socket.connection.events$.subscribe((event) => {
      if (event.type === 'link-open') throw new Error('app bug in an events$ subscriber');
    });
    const heard = listen(socket);
    const onmessage: unknown[] = [];
    socket.onmessage = (event) => onmessage.push(event.data);
    socket.send('x');
    socket.send('y');
    await waitFor(() => onmessage.length === 2 && heard.listener.length === 2, {
      ...WAIT,
      what: 'both messages',
    });
    socket.send('z');
    await waitFor(() => onmessage.length === 3 && reports.length === 4, {
      ...WAIT,
      what: 'the third message',
    });
    expect(onmessage).toEqual(['x', 'y', 'z']);
    expect(heard.messages$).toEqual(['x', 'y', 'z']);
    expect(heard.listener).toEqual(['x', 'y', 'z']);
    expect(heard.states).toEqual(['connecting', 'open']);
    // rxjs reports each throw of a subscriber as an uncaught exception (later, on a timer) and
    // keeps it subscribed: the events$ one threw once, the messages$ one for each message.
    expect([...reports].sort()).toEqual([
      'uncaught: app bug in a messages$ subscriber',
      'uncaught: app bug in a messages$ subscriber',
      'uncaught: app bug in a messages$ subscriber',
      'uncaught: app bug in an events$ subscriber',
    ]);
  }, 30_000);
});
