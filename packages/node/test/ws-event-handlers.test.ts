/**
 * HAWebSocket's `on*` properties are WHATWG event handlers (HTML, "event handlers"): the handler
 * is a listener in the socket's list, where it was first set, so inside it `this`,
 * `event.target` and `event.currentTarget` are the socket, `stopImmediatePropagation()` stops the
 * listeners after it, and a handler runs in registration order among the listeners. The script
 * (support/handler-scenario.ts) is the one Chromium's and Deno's own WebSocket pass in the e2e and
 * Deno tests. (Node 22's global WebSocket, undici's, is no reference: it moves a reassigned
 * handler to the end of the list.)
 */
import { once } from 'node:events';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { expectedLog, handlerScenario, type ScenarioConstructor } from './support/handler-scenario.js';
import { EchoServer } from './support/ws-servers.js';

type Socket = InstanceType<typeof HAWebSocket>;

/** An echo server that refuses the handshakes of `/refuse` with HTTP 403 (irrecoverable: no retry). */
async function server(): Promise<EchoServer> {
  const echo = await EchoServer.start({
    verifyClient: (info, done) => done(!info.req.url?.startsWith('/refuse'), 403),
  });
  cleanups.push(() => echo.close());
  return echo;
}

/** The uncaught exceptions while the test runs (vitest's own listeners are given back after it). */
function captureUncaught(): string[] {
  const reports: string[] = [];
  const saved = process.listeners('uncaughtException');
  const onUncaught = (error: unknown) => reports.push((error as Error).message);
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', onUncaught);
  cleanups.push(() => {
    process.off('uncaughtException', onUncaught);
    for (const listener of saved) process.on('uncaughtException', listener);
  });
  return reports;
}

it('open, message, close and error handlers: this/target/currentTarget, registration order (before, after, reassigned, null then set again), stopImmediatePropagation, non-function values, a throwing handler', async () => {
  const echo = await server();
  const reports = captureUncaught();
  const sockets: Socket[] = [];
  const Tracked = class extends HAWebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  };
  const log = await handlerScenario(Tracked as unknown as ScenarioConstructor, {
    echoUrl: echo.url,
    refusedUrl: `${echo.url}/refuse`,
    throwing: true,
  });
  expect(log).toEqual(expectedLog(true));
  // The throw was reported (Node: an uncaught exception), not thrown into the connection.
  expect(reports).toEqual(['thrown by onmessage for m5']);
  expect(sockets.map((socket) => socket.readyState)).toEqual([3, 3]);
  expect(echo.accepted).toBe(1);
}, 60_000);

it('onrecovering (a Lifeline event) is a listener in its place too; a throwing onrecovered leaves the socket recovered and delivering', async () => {
  const echo = await server();
  const reports = captureUncaught();
  const socket = new HAWebSocket(echo.url);
  cleanups.push(() => socket.close());
  const log: string[] = [];
  socket.addEventListener('recovering', () => log.push('recovering: before'));
  socket.onrecovering = function (this: unknown, event) {
    // Not currentTarget: Node's EventTarget clears it for every listener after the first (see
    // support/handler-scenario.ts).
    log.push(`recovering: handler ${this === socket && event.target === socket}`);
    event.stopImmediatePropagation();
  };
  socket.addEventListener('recovering', () => log.push('recovering: after (stopped)'));
  socket.onrecovered = () => {
    log.push('recovered: handler');
    throw new Error('thrown by onrecovered');
  };
  socket.addEventListener('recovered', () => log.push('recovered: listener after'));
  const got: unknown[] = [];
  socket.onmessage = (event) => got.push(event.data);
  await once(socket as unknown as EventTarget, 'open');
  const recovered = once(socket as unknown as EventTarget, 'recovered');
  echo.terminateAll();
  await recovered;
  socket.send('after');
  await new Promise<void>((resolve) => {
    socket.addEventListener('message', () => resolve(), { once: true });
  });
  expect(log).toEqual([
    'recovering: before',
    'recovering: handler true',
    'recovered: handler',
    'recovered: listener after',
  ]);
  expect(got).toEqual(['after']);
  expect(socket.readyState).toBe(1);
  expect(reports).toEqual(['thrown by onrecovered']);
}, 60_000);

it('an on* property reads back null until set, a function as set, null for a non-function; a socket with no handler holds no handler table', () => {
  // Not connected to anything that answers: the properties alone.
  const socket = new HAWebSocket('ws://127.0.0.1:9', { maxAttemptsPerFailure: 1 });
  cleanups.push(() => socket.close());
  const names = [
    'onopen',
    'onmessage',
    'onerror',
    'onclose',
    'onrecovering',
    'onrecovered',
    'ondropped',
  ] as const;
  const own = Object.getOwnPropertyNames(socket).length;
  for (const name of names) expect(socket[name]).toBeNull();
  // The handlers live behind accessors on the prototype, as WebSocket's do.
  for (const name of names) expect(Object.getOwnPropertyNames(socket)).not.toContain(name);
  const handler = () => {};
  const writable = socket as unknown as Record<string, unknown>;
  for (const name of names) {
    writable[name] = handler;
    expect(writable[name]).toBe(handler);
    for (const value of ['text', 1, true, Symbol('s'), undefined, null]) {
      writable[name] = value;
      expect(writable[name]).toBeNull();
    }
  }
  // One own property for the table, made by the first set.
  expect(Object.getOwnPropertyNames(socket).length).toBe(own + 1);
});
