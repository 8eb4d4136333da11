// Idle memory per HAWebSocket (issue 13), object by object: what an open connection that only
// waits keeps. Before (main e1b99e5, 2026-11-30): its link made `messages$`'s fanout and view at
// construction (88 B, read by nobody: the connection reads the link directly), a socket given no
// options had a connection options object of its own (56 B), timestamps were fractions (a 16 B
// number box per field: the heartbeat's three, the link's opening), and the connection, its
// recovery core, its heartbeat and its link each kept fields for what an idle connection never
// has (a `closed` promise, a wait, a timer of its own on Node's shared checks...). White-box: the
// members are internal (renamed in the build); docs/benchmarks.md, "Idle memory", has the figures.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { monotonicScheduler } from '@lifeline/core/internal';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, it, onTestFinished } from 'vitest';
import { WebSocketServer } from 'ws';

type Fields = Record<string, unknown>;

async function server(): Promise<{ url: string; server: WebSocketServer }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  onTestFinished(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, server: wss };
}

async function openSocket(url: string): Promise<InstanceType<typeof HAWebSocket>> {
  const socket = new HAWebSocket(url);
  onTestFinished(() => socket.close());
  await once(socket as unknown as EventTarget, 'open');
  return socket;
}

it('an idle open HAWebSocket keeps none of the fields and objects it does not use', async () => {
  const { url } = await server();
  const a = await openSocket(url);
  const b = await openSocket(url);
  const connection = a.connection as unknown as Fields;
  // Options given none: one shared options object, not a copy per socket.
  expect(connection.options).toBe((b.connection as unknown as Fields).options);
  for (const name of ['stateView_', 'incoming_', 'events_', 'closed_', 'resolveClosed_', 'postReject_']) {
    expect(Object.hasOwn(connection, name), name).toBe(false);
  }
  const core = connection.core_ as Fields;
  for (const name of ['failureError_', 'failureStartedAt_', 'interruptWait_', 'uptimeTimer_']) {
    expect(Object.hasOwn(core, name), name).toBe(false);
  }
  const link = a.connection.link as unknown as Fields;
  expect(link.incoming_).toBeUndefined();
  for (const name of ['pongs_', 'lastError_']) expect(Object.hasOwn(link, name), name).toBe(false);
  const beat = connection.heartbeat_ as Fields;
  expect(Object.hasOwn(beat, 'timer_')).toBe(false);
  // Whole milliseconds: small integers, kept in the object rather than boxed.
  for (const name of ['lastSeen_', 'lastPing_', 'dueAt_'])
    expect(Number.isInteger(beat[name]), name).toBe(true);
  expect(Number.isInteger(connection.linkUpAt_)).toBe(true);
  expect(Number.isInteger(monotonicScheduler.now())).toBe(true);
  expect(Object.hasOwn(a, 'extensions')).toBe(false);
  expect(a.extensions).toBe('');
});

it("a link's messages$, made on first read, still gives the messages, then the end", async () => {
  const { url, server: wss } = await server();
  const socket = await openSocket(url);
  const link = socket.connection.link!;
  const heard: unknown[] = [];
  let completed = 0;
  link.messages$.subscribe({ next: (data) => heard.push(String(data)), complete: () => completed++ });
  const [peer] = [...wss.clients];
  const message = once(socket as unknown as EventTarget, 'message');
  peer!.send('one');
  await message;
  expect(heard).toEqual(['one']);
  socket.close();
  expect(completed).toBe(1);
  // A subscriber after the end gets the end.
  let late = 0;
  link.messages$.subscribe({ complete: () => late++ });
  expect(late).toBe(1);
});
