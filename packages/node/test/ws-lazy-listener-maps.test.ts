// HAWebSocket's EventTarget maps made on first use on Node 20/22 (src/lazy-listener-maps.ts): the
// same listener semantics as Node's own EventTarget, checked by running one script of listener
// operations on a plain EventTarget subclass and on one patched the same way, and comparing what
// each heard; then on a real HAWebSocket, whose idle instance keeps no listener map.
import { getEventListeners, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { HAWebSocket } from '@lifeline/node/ws';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocketServer } from 'ws';
import { lazyListenerMaps } from '../src/lazy-listener-maps.js';

/** Node keeps the maps in the constructor (20, 22) or makes them on first use itself (24+). */
const eager = Object.getOwnPropertySymbols(new EventTarget()).some(
  (s) => s.description === 'kEvents' && (new EventTarget() as never)[s] !== undefined,
);

async function script(target: EventTarget): Promise<string[]> {
  const log: string[] = [];
  const a = (event: Event) => log.push(`a:${event.type}:${event.target === target}:${event.eventPhase}`);
  const b = () => log.push('b');
  // Duplicates are ignored; capture is part of a listener's identity.
  target.addEventListener('x', a);
  target.addEventListener('x', a);
  target.addEventListener('x', a, { capture: true });
  target.dispatchEvent(new Event('x'));
  target.removeEventListener('x', a, { capture: true });
  target.dispatchEvent(new Event('x'));
  // once, twice over, and re-added after it ran.
  target.addEventListener('y', b, { once: true });
  target.dispatchEvent(new Event('y'));
  target.dispatchEvent(new Event('y'));
  target.addEventListener('y', b, { once: true });
  target.dispatchEvent(new Event('y'));
  // handleEvent objects, stopImmediatePropagation, listeners added and removed during a dispatch.
  const object = { handleEvent: (event: Event) => log.push(`object:${event.type}`) };
  const late = () => log.push('late');
  const stopper = (event: Event) => {
    log.push('stopper');
    event.stopImmediatePropagation();
  };
  target.addEventListener('z', object);
  target.addEventListener('z', () => {
    log.push('adder');
    target.addEventListener('z', late);
    target.removeEventListener('z', object);
  });
  target.dispatchEvent(new Event('z'));
  target.dispatchEvent(new Event('z'));
  target.addEventListener('w', stopper);
  target.addEventListener('w', b);
  target.dispatchEvent(new Event('w'));
  // signal: removed on abort; an aborted signal adds nothing.
  const controller = new AbortController();
  target.addEventListener('v', b, { signal: controller.signal });
  target.dispatchEvent(new Event('v'));
  controller.abort();
  target.dispatchEvent(new Event('v'));
  target.addEventListener('v', b, { signal: AbortSignal.abort() });
  target.dispatchEvent(new Event('v'));
  // Node's events.once and getEventListeners.
  const heard = once(target, 'u');
  log.push(`listeners:${getEventListeners(target, 'u').length}`);
  target.dispatchEvent(new Event('u'));
  await heard;
  log.push(`listeners:${getEventListeners(target, 'u').length}:${getEventListeners(target, 'x').length}`);
  // Every listener removed, then one added again: heard.
  target.removeEventListener('x', a);
  for (const type of ['z', 'w'])
    for (const l of getEventListeners(target, type)) target.removeEventListener(type, l as EventListener);
  target.dispatchEvent(new Event('x'));
  target.addEventListener('x', a);
  target.dispatchEvent(new Event('x'));
  log.push(`default:${target.dispatchEvent(new Event('t', { cancelable: true }))}`);
  return log;
}

describe.runIf(eager)('EventTarget maps made on first use (Node 20/22)', () => {
  it('hears what a plain EventTarget hears, and lets its map go once no listener is left', async () => {
    class Plain extends EventTarget {}
    class Lazy extends EventTarget {}
    lazyListenerMaps(Lazy);
    const plain = await script(new Plain());
    const lazy = new Lazy();
    expect(await script(lazy)).toEqual(plain);
    // What Node's own EventTarget hears (its capture listener sees eventPhase 0, as it does here).
    expect(plain).toEqual([
      ...['a:x:true:2', 'a:x:true:0', 'a:x:true:2', 'b', 'b', 'object:z', 'adder', 'adder', 'late'],
      ...['stopper', 'b', 'listeners:1', 'listeners:0:1', 'a:x:true:2', 'default:true'],
    ]);
    // No map of Node's on the instance, and no listener map of its own after the last one left.
    const own = (target: object) =>
      Object.getOwnPropertySymbols(target).filter(
        (s) => (target as Record<symbol, unknown>)[s] instanceof Map || s.description === 'kEvents',
      );
    const fresh = new Lazy();
    expect(own(fresh)).toEqual([]);
    const listener = () => {};
    fresh.addEventListener('a', listener, { once: true });
    expect(own(fresh)).toHaveLength(1);
    fresh.dispatchEvent(new Event('a'));
    expect(own(fresh)).toEqual([]);
    fresh.addEventListener('a', listener);
    fresh.removeEventListener('a', listener);
    expect(own(fresh)).toEqual([]);
    expect(own(lazy)).toHaveLength(1); // its 'x' listener
  });

  it('an idle HAWebSocket awaited with events.once keeps no listener map', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    onTestFinished(async () => {
      for (const client of server.clients) client.terminate();
      await new Promise((resolve) => server.close(resolve));
    });
    const socket = new HAWebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    onTestFinished(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    // WebSocket's constants come from the prototype (WebIDL), not four fields per socket.
    expect([socket.CONNECTING, socket.OPEN, socket.CLOSING, socket.CLOSED, HAWebSocket.OPEN]).toEqual([
      0, 1, 2, 3, 1,
    ]);
    expect(Object.hasOwn(socket, 'OPEN')).toBe(false);
    const maps = Object.getOwnPropertySymbols(socket).filter(
      (s) =>
        (socket as unknown as Record<symbol, unknown>)[s] !== undefined &&
        /kEvents|kHandlers|lifeline/.test(String(s)),
    );
    expect(maps).toEqual([]);
    const messages: unknown[] = [];
    socket.addEventListener('message', (event) => messages.push(event.data));
    for (const client of server.clients) client.send('hello');
    await new Promise<void>((resolve) => socket.addEventListener('message', () => resolve(), { once: true }));
    expect(messages.map(String)).toEqual(['hello']);
  });
});
