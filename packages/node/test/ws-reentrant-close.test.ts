/**
 * `close()` called from inside the connection's own calls while sends are in flight: from a
 * wrapped link's `send` or `sendWith` (wrapTransport), from an `open` or `message` listener while
 * queued sends wait to be flushed, from a send's confirmation, from a `link-down` listener. A
 * send handed to the link before the close settles as it would without the close (resolved once
 * confirmed); only sends that never reached the link reject, with `ClosedByUserError`. A close
 * from a wrapper's send used to reject every send written before it (49 of 50 had arrived at the
 * server) with the `NotOpenError` of the one write the close cut off: a caller that retries on
 * rejection then sent them twice. Counted at a real `ws` server: sent, received, resolved,
 * rejected and the error of each rejection.
 */
import { ClosedByUserError, type Link, type LinkData, type Transport } from '@lifeline/core';
import { waitFor } from '@lifeline/core/testing';
import { HAWebSocket, type HAWebSocketOptions } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { countingWsServer } from './support/ws-servers.js';

const WAIT = { timeoutMs: 15_000 };
const SENT = 50;

type Socket = InstanceType<typeof HAWebSocket>;

interface Tally {
  sent: number;
  resolved: number;
  rejected: Record<string, number>;
  settled: number;
}

/** Sends `m0`... through `sendAsync`, tallying how each promise settles (by error name). */
function sendAll(socket: Socket, tally: Tally, count = SENT, from = 0): void {
  for (let i = from; i < from + count; i++) {
    tally.sent++;
    socket.sendAsync(`m${i}`).then(
      () => {
        tally.resolved++;
        tally.settled++;
      },
      (error: unknown) => {
        const name =
          error instanceof ClosedByUserError
            ? 'ClosedByUserError'
            : ((error as Error)?.name ?? String(error));
        tally.rejected[name] = (tally.rejected[name] ?? 0) + 1;
        tally.settled++;
      },
    );
  }
}

const newTally = (): Tally => ({ sent: 0, resolved: 0, rejected: {}, settled: 0 });

/**
 * Every send settled once: `resolved` of the `sent` resolved and the rest rejected with
 * ClosedByUserError, and the server received `received` of them (by default the resolved ones).
 */
function expectCounts(
  tally: Tally,
  server: { received: string[] },
  sent: number,
  resolved: number,
  received = resolved,
) {
  expect({ ...tally, received: server.received.length }).toEqual({
    sent,
    resolved,
    rejected: sent === resolved ? {} : { ClosedByUserError: sent - resolved },
    settled: sent,
    received,
  });
}

/** Waits until every send settled and the server saw the connection close (so it has every message sent before). */
async function settle(tally: Tally, server: { closed(): number; received: string[] }, closes = 1) {
  await waitFor(() => tally.settled === tally.sent && server.closed() >= closes, {
    ...WAIT,
    what: 'every send settled and the close at the server',
    state: () => ({ ...tally, received: server.received.length, closed: server.closed() }),
  });
}

/**
 * Wraps the link as `Object.create(link)` with its own `send` (and, with `withSendWith`, its own
 * `sendWith`, routed to the link's): `hook(n, write)` is called for the n-th message written
 * (1-based), with the function that writes it through the link.
 */
function wrapWith(hook: (n: number, write: () => void) => void, withSendWith = false) {
  let n = 0;
  return (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const wrapper = Object.create(link) as Link<LinkData, LinkData>;
      wrapper.send = (data) => {
        let sent!: Promise<void>;
        hook(++n, () => {
          sent = link.send(data);
        });
        return sent;
      };
      if (withSendWith) {
        const sendWith = link.sendWith!.bind(link);
        expect(sendWith).toBeTypeOf('function');
        Object.defineProperty(wrapper, 'sendWith', {
          value: (data: LinkData, confirmed: (error: unknown, token: object) => void, token: object) =>
            hook(++n, () => sendWith(data, confirmed, token)),
        });
      }
      return wrapper;
    },
  });
}

async function openSocket(url: string, options: HAWebSocketOptions = {}) {
  const socket: Socket = new HAWebSocket(url, options);
  cleanups.push(() => socket.close());
  await waitFor(() => socket.readyState === socket.OPEN && socket.connection.link !== undefined, {
    ...WAIT,
    what: 'the open',
  });
  return socket;
}

for (const withSendWith of [false, true]) {
  const through = withSendWith ? "a wrapper's sendWith" : "a wrapper's send";

  it(`close() from ${through}, before the link writes the 50th: 49 resolve (all arrived), the 50th rejects ClosedByUserError`, async () => {
    const server = await countingWsServer();
    let socket!: Socket;
    const wrap = wrapWith((n, write) => {
      if (n === SENT) socket.close();
      write();
    }, withSendWith);
    socket = await openSocket(server.url, { wrapTransport: wrap });
    const tally = newTally();
    sendAll(socket, tally);
    await settle(tally, server);
    expectCounts(tally, server, SENT, SENT - 1);
    expect(server.received).toEqual(Array.from({ length: SENT - 1 }, (_, i) => `m${i}`));
    expect(socket.bufferedAmount).toBe(0);
  });

  it(`close() from ${through}, after the link wrote the 50th: all 50 resolve and arrive`, async () => {
    const server = await countingWsServer();
    let socket!: Socket;
    const wrap = wrapWith((n, write) => {
      write();
      if (n === SENT) socket.close();
    }, withSendWith);
    socket = await openSocket(server.url, { wrapTransport: wrap });
    const tally = newTally();
    sendAll(socket, tally);
    await settle(tally, server);
    expectCounts(tally, server, SENT, SENT);
  });
}

for (const withSendWith of [false, true]) {
  const through = withSendWith ? "a wrapper's sendWith" : "a wrapper's send";

  it(`close() from ${through} during the flush of queued sends: the 24 written resolve, the other 26 reject ClosedByUserError`, async () => {
    const server = await countingWsServer();
    let socket!: Socket;
    const wrap = wrapWith((n, write) => {
      if (n === 25) socket.close();
      write();
    }, withSendWith);
    socket = new HAWebSocket(server.url, { wrapTransport: wrap });
    cleanups.push(() => socket.close());
    const tally = newTally();
    // Queued while connecting: the link's open flushes them in one loop, which the close cuts at the 25th.
    sendAll(socket, tally);
    await settle(tally, server);
    expectCounts(tally, server, SENT, 24);
  });
}

it('close() from an open listener, before the queued sends are flushed: none written, each rejects ClosedByUserError', async () => {
  const server = await countingWsServer();
  const socket: Socket = new HAWebSocket(server.url);
  cleanups.push(() => socket.close());
  const tally = newTally();
  socket.onopen = () => {
    // Sent from the listener: queued behind the 50 the open is about to flush.
    sendAll(socket, tally, 10, SENT);
    socket.close();
  };
  sendAll(socket, tally);
  await settle(tally, server);
  expectCounts(tally, server, SENT + 10, 0);
});

it('close() from a message listener, on a message that arrived with the open: none written, each rejects ClosedByUserError', async () => {
  const server = await countingWsServer('hello');
  const socket: Socket = new HAWebSocket(server.url);
  cleanups.push(() => socket.close());
  const tally = newTally();
  const messages: string[] = [];
  socket.onmessage = (event) => {
    messages.push(String(event.data));
    sendAll(socket, tally, 10, SENT);
    socket.close();
  };
  sendAll(socket, tally);
  await settle(tally, server);
  expect(messages).toEqual(['hello']);
  // The greeting may come with the open (before the flush) or after it: the sends written by then
  // resolve and arrive, the rest reject, and nothing is reported twice.
  expect(tally.resolved).toBe(server.received.length);
  expect({ ...tally, resolved: 0, received: server.received.length - tally.resolved }).toEqual({
    sent: SENT + 10,
    resolved: 0,
    rejected: { ClosedByUserError: SENT + 10 - tally.resolved },
    settled: SENT + 10,
    received: 0,
  });
});

for (const withSendWith of [false, true]) {
  const through = withSendWith ? "a wrapper's sendWith" : "a wrapper's send";

  it(`close() from the confirmation of the 10th send (${through}): all 50 resolve and arrive`, async () => {
    const server = await countingWsServer();
    let socket!: Socket;
    let confirmed = 0;
    const wrap = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
      async open(signal) {
        const link = await transport.open(signal);
        const wrapper = Object.create(link) as Link<LinkData, LinkData>;
        wrapper.send = (data) =>
          link.send(data).then(() => {
            if (++confirmed === 10) socket.close();
          });
        if (withSendWith) {
          const sendWith = link.sendWith!.bind(link);
          Object.defineProperty(wrapper, 'sendWith', {
            value: (data: LinkData, done: (error: unknown, token: object) => void, token: object) =>
              sendWith(
                data,
                (error, token) => {
                  if (++confirmed === 10) socket.close();
                  done(error, token);
                },
                token,
              ),
          });
        }
        return wrapper;
      },
    });
    socket = await openSocket(server.url, { wrapTransport: wrap });
    const tally = newTally();
    sendAll(socket, tally);
    await settle(tally, server);
    expectCounts(tally, server, SENT, SENT);
  });
}

it('close() from a link-down listener while sends wait: each rejects ClosedByUserError once, nothing dropped, no recovery', async () => {
  const server = await countingWsServer();
  const socket = await openSocket(server.url);
  const tally = newTally();
  const dropped: unknown[] = [];
  socket.addEventListener('dropped', (event) => dropped.push(event));
  let downs = 0;
  socket.connection.events$.subscribe((event) => {
    if (event.type !== 'link-down') return;
    downs++;
    // Sent from the listener: they wait behind the requeued ones.
    sendAll(socket, tally, 10, SENT);
    socket.close();
  });
  const attempts: number[] = [];
  socket.connection.events$.subscribe((event) => {
    if (event.type === 'attempting') attempts.push(event.attempt);
  });
  // Written once confirmed; the server is gone before the next ones are.
  sendAll(socket, tally);
  await waitFor(() => tally.settled === SENT, { ...WAIT, what: 'the 50 confirmed', state: () => tally });
  sendAll(socket, tally, 20, 100);
  server.terminateAll();
  sendAll(socket, tally, 20, 200);
  await waitFor(() => tally.settled === tally.sent && socket.readyState === socket.CLOSED, {
    ...WAIT,
    what: 'every send settled and the socket closed',
    state: () => tally,
  });
  expect(downs).toBe(1);
  expect(attempts).toEqual([]);
  expect(dropped).toEqual([]);
  // Every send settles once: the first 50 resolved; the 40 written before the link went down may
  // have been confirmed (the kernel took them) before it did; the 10 sent from the listener reject.
  expect(tally.sent).toBe(SENT + 50);
  expect(tally.resolved + (tally.rejected.ClosedByUserError ?? 0)).toBe(tally.sent);
  expect(tally.resolved).toBeGreaterThanOrEqual(SENT);
  expect(tally.rejected.ClosedByUserError).toBeGreaterThanOrEqual(10);
  expect(socket.connection.state$.value).toMatchObject({ status: 'closed', reason: 'user' });
});
