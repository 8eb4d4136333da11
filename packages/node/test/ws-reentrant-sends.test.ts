/**
 * Sends made from inside the connection's own calls, since every send of every connection goes
 * through one executor and module variables (attach.ts `taking`/`refused`): from an `onopen` and an
 * `onmessage` handler, from a wrapped link's own `send` (wrapTransport), to another socket from
 * inside a send, around a send `check` refuses (a Symbol) and a `sendAsync` with an aborted signal,
 * and (resume) across link resets. Every message is counted at the echo: none lost, none
 * duplicated, none of the refused ones sent.
 */
import { attach, type Link, type LinkData, type Transport } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket, wsTransport } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

const WAIT = { timeoutMs: 30_000 };
const MAIN = 500;

type Socket = InstanceType<typeof HAWebSocket>;

/**
 * A wrapper whose own send first sends one more message through `extra`: plain, for every 50th
 * main message; resuming (the wrapper sees the session's frames), for every 50th text DATA frame
 * (0x10, or 0x12 when flagged) it writes, up to the 500th (`w50` ... `w500`).
 */
function reentrantWrap(extra: () => Socket, frames = false) {
  let dataFrames = 0;
  return (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) => {
        if (frames) {
          // Text DATA, flagged "the ack may wait" (0x12, version 3: HAWebSocket.send's) or not.
          const text = data instanceof Uint8Array && (data[0] === 0x10 || data[0] === 0x12);
          if (text && ++dataFrames % 50 === 0 && dataFrames <= 500) extra().send(`w${dataFrames}`);
        } else {
          const match = /^m(\d+)$/.exec(typeof data === 'string' ? data : '');
          if (match && Number(match[1]) % 50 === 0) extra().send(`w${match[1]}`);
        }
        return link.send(data);
      };
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
}

function drive(socket: Socket, other: Socket, echoed: Map<string, number>): void {
  socket.onopen = () => {
    if (echoed.size === 0) for (let i = 0; i < 10; i++) socket.send(`open${i}`);
  };
  socket.onmessage = (event) => {
    const text = String(event.data);
    echoed.set(text, (echoed.get(text) ?? 0) + 1);
    const match = /^m(\d+)$/.exec(text);
    // A send from inside the dispatch of a message, to this socket and to the other one.
    if (match) {
      socket.send(`r${match[1]}`);
      if (Number(match[1]) % 25 === 0) other.send(`x${match[1]}`);
    }
  };
}

function expected(frames = false): string[] {
  const names: string[] = [];
  for (let i = 0; i < 10; i++) names.push(`open${i}`);
  for (let i = 0; i < MAIN; i++) names.push(`m${i}`, `r${i}`);
  for (let i = frames ? 50 : 0; frames ? i <= MAIN : i < MAIN; i += 50) names.push(`w${i}`);
  return names;
}

function tally(echoed: Map<string, number>, names: string[]) {
  const lost = names.filter((name) => !echoed.has(name)).length;
  const duplicated = [...echoed.values()].filter((count) => count > 1).length;
  const unexpected = [...echoed.keys()].filter((name) => !names.includes(name));
  return { received: echoed.size, lost, duplicated, unexpected };
}

/** Counts each text message `socket` receives by its content. */
function countEchoes(socket: Socket, counts: Map<string, number>): void {
  socket.onmessage = (event) => {
    const text = String(event.data);
    counts.set(text, (counts.get(text) ?? 0) + 1);
  };
}

/** Waits until every expected name came back, then asserts each (and each of `other`'s) came back exactly once. */
async function expectEveryEcho(
  echoed: Map<string, number>,
  otherEchoed: Map<string, number>,
  names: string[],
) {
  await waitFor(() => names.every((name) => echoed.has(name)) && otherEchoed.size >= MAIN / 25, {
    ...WAIT,
    what: 'every echo',
    state: () => ({
      echoed: echoed.size,
      other: otherEchoed.size,
      missing: names.filter((n) => !echoed.has(n)).slice(0, 20),
    }),
  });
  expect(tally(echoed, names)).toEqual({ received: names.length, lost: 0, duplicated: 0, unexpected: [] });
  expect(otherEchoed.size).toBe(MAIN / 25);
  expect([...otherEchoed.values()].every((count) => count === 1)).toBe(true);
}

async function exercise(socket: Socket, other: Socket, reset?: () => void) {
  await waitFor(() => socket.readyState === socket.OPEN && other.readyState === other.OPEN, {
    ...WAIT,
    what: 'both open',
  });
  let refusedCheck = 0;
  let refusedAbort = 0;
  for (let i = 0; i < MAIN; i++) {
    socket.send(`m${i}`);
    if (i % 100 === 7) {
      // A send `check` refuses (not a string or bytes) and a sendAsync aborted before it starts.
      try {
        socket.send(Symbol('bad') as unknown as string);
      } catch {
        refusedCheck++;
      }
      await socket.sendAsync('aborted', { signal: AbortSignal.abort() }).catch(() => refusedAbort++);
    }
    if (reset && i % 100 === 50) reset();
  }
  expect({ refusedCheck, refusedAbort }).toEqual({ refusedCheck: 5, refusedAbort: 5 });
}

it('re-entrant sends on plain HAWebSockets (from onopen, onmessage, a wrapped send, to another socket): each echoed once', async () => {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const echoed = new Map<string, number>();
  const otherEchoed = new Map<string, number>();
  const other = new HAWebSocket(server.url);
  cleanups.push(() => other.close());
  countEchoes(other, otherEchoed);
  const socket: Socket = new HAWebSocket(server.url, { wrapTransport: reentrantWrap((): Socket => socket) });
  cleanups.push(() => socket.close());
  drive(socket, other, echoed);
  await exercise(socket, other);
  const names = expected();
  await expectEveryEcho(echoed, otherEchoed, names);
});

it('re-entrant sends on resuming HAWebSockets across link resets: each echoed exactly once', async () => {
  const server = createResumeServer();
  cleanups.push(() => server.close());
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      session.send(data).catch(() => {});
    });
  });
  const { port } = await server.listen();
  const proxy = await FaultProxy.start({ target: { port } });
  cleanups.push(() => proxy.close());
  const fast = { backoff: { initialDelayMs: 20, maxDelayMs: 200 }, minUptimeMs: 100 } as const;
  const echoed = new Map<string, number>();
  const otherEchoed = new Map<string, number>();
  const other = new HAWebSocket(`ws://127.0.0.1:${proxy.port}`, { ...fast, resume: true });
  cleanups.push(() => other.close());
  countEchoes(other, otherEchoed);
  const socket: Socket = new HAWebSocket(`ws://127.0.0.1:${proxy.port}`, {
    ...fast,
    // The documented way to wrap the WebSocket link under the session (`resume` ignores wrapTransport).
    wrapTransport: (transport): Transport<LinkData, LinkData> =>
      resumable(reentrantWrap((): Socket => socket, true)(transport)),
  });
  cleanups.push(() => socket.close());
  drive(socket, other, echoed);
  let resets = 0;
  await exercise(socket, other, () => {
    resets++;
    proxy.resetAll();
  });
  const names = expected(true);
  await expectEveryEcho(echoed, otherEchoed, names);
  expect(resets).toBe(5);
  expect(socket.session?.state).not.toBe('lost');
});

it('a send from inside a resume link own send, on a link that stays up: every message once, in order, the link kept', async () => {
  // The session writes frame N through the wrapped link's send, which first sends another message
  // (seq N + 1, written from inside that send): N + 1 must not reach the wire before N (the server
  // closes the link for a sequence gap, 1002, and the connection gives up).
  const server = createResumeServer();
  cleanups.push(() => server.close());
  const linkErrors: string[] = [];
  server.events$.subscribe((event) => {
    if (event.type === 'link-error') linkErrors.push(String(event.error));
  });
  const received = new Map<string, number>();
  let outOfOrder = 0;
  let last = -1;
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      const text = String(data);
      received.set(text, (received.get(text) ?? 0) + 1);
      const match = /^[mw](\d+)$/.exec(text);
      if (match) {
        // m<i> and w<i> share one numbering: w<i> is sent from inside the write of m<i - 1>.
        const order = Number(match[1]);
        if (order < last) outOfOrder++;
        last = order;
      }
    });
  });
  const { port } = await server.listen();
  const COUNT = 300;
  const sent: string[] = [];
  let dataFrames = 0;
  const wrap = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) => {
        // DATA of any version (0x10-0x13): every 10th, one more message from inside this send.
        const isData = data instanceof Uint8Array && data[0]! >= 0x10 && data[0]! <= 0x13;
        if (isData && ++dataFrames % 10 === 0 && sent.length < COUNT) {
          const name = `w${sent.length}`;
          sent.push(name);
          socket.send(name);
        }
        return link.send(data);
      };
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
  const socket: Socket = new HAWebSocket(`ws://127.0.0.1:${port}`, {
    wrapTransport: (transport): Transport<LinkData, LinkData> => resumable(wrap(transport)),
  });
  cleanups.push(() => socket.close());
  let closes = 0;
  socket.addEventListener('close', () => closes++);
  await waitFor(() => socket.readyState === socket.OPEN, { ...WAIT, what: 'open' });
  while (sent.length < COUNT) {
    const name = `m${sent.length}`;
    sent.push(name);
    socket.send(name);
  }
  await waitFor(() => sent.every((name) => received.has(name)) || closes > 0 || linkErrors.length > 0, {
    ...WAIT,
    what: 'every message at the server, or the link failed',
    state: () => ({ received: received.size, linkErrors, closes, session: socket.session?.state }),
  });
  const lost = sent.filter((name) => !received.has(name)).length;
  const duplicated = [...received.values()].filter((count) => count > 1).length;
  expect({
    sent: sent.length,
    received: received.size,
    lost,
    duplicated,
    outOfOrder,
    linkErrors,
    closes,
    resumes: socket.session?.stats.resumes,
  }).toEqual({
    sent: COUNT,
    received: COUNT,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    linkErrors: [],
    closes: 0,
    resumes: 0,
  });
});

/**
 * A plain ws server that counts, in arrival order, every `m<i>` / `w<i>` message (one numbering,
 * in the order `send()` was called): received, duplicated and out of order.
 */
async function orderCountingServer() {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const received = new Map<string, number>();
  const order = { last: -1, outOfOrder: 0 };
  server.wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      const text = data.toString();
      received.set(text, (received.get(text) ?? 0) + 1);
      const match = /^[mw](\d+)$/.exec(text);
      if (!match) return;
      const at = Number(match[1]);
      if (at < order.last) order.outOfOrder++;
      order.last = at;
    });
  });
  return { server, received, order };
}

/**
 * A link wrapper whose own send first sends one more message (every 10th message it writes, up to
 * `count` in all): `extra(name)` sends it, so it is numbered after the message being written, and
 * must reach the wire after it. `withSendWith` also gives the wrapper a `sendWith` that routes
 * through the link's own one (what Link's docs ask of a wrapper that keeps the fast path).
 */
function reentrantInOrder(
  sent: string[],
  count: number,
  extra: (name: string) => void,
  withSendWith = false,
) {
  let writes = 0;
  const reenter = () => {
    if (++writes % 10 === 0 && sent.length < count) {
      const name = `w${sent.length}`;
      sent.push(name);
      extra(name);
    }
  };
  return (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const linkSendWith = link.sendWith;
      const send = (data: LinkData) => {
        reenter();
        return link.send(data);
      };
      const sendWith: Link<LinkData, LinkData>['sendWith'] = (data, confirmed, token) => {
        reenter();
        linkSendWith!.call(link, data, confirmed, token);
      };
      // Defined, not assigned: the link's `sendWith` is a getter on its prototype.
      return Object.create(link, {
        send: { value: send },
        ...(withSendWith && linkSendWith ? { sendWith: { value: sendWith } } : {}),
      }) as Link<LinkData, LinkData>;
    },
  });
}

async function expectInOrder(
  sent: string[],
  count: number,
  counted: Awaited<ReturnType<typeof orderCountingServer>>,
  closes: () => number,
) {
  const { received, order } = counted;
  await waitFor(() => sent.every((name) => received.has(name)) || closes() > 0, {
    ...WAIT,
    what: 'every message at the server, or the socket closed',
    state: () => ({ sent: sent.length, received: received.size, closes: closes() }),
  });
  expect({
    sent: sent.length,
    received: received.size,
    lost: sent.filter((name) => !received.has(name)).length,
    duplicated: [...received.values()].filter((n) => n > 1).length,
    outOfOrder: order.outOfOrder,
    closes: closes(),
  }).toEqual({ sent: count, received: count, lost: 0, duplicated: 0, outOfOrder: 0, closes: 0 });
}

it('a send from inside a plain link own send (wrapTransport): every message once, in the order send() was called', async () => {
  const counted = await orderCountingServer();
  const COUNT = 1_000;
  const sent: string[] = [];
  const socket: Socket = new HAWebSocket(counted.server.url, {
    wrapTransport: reentrantInOrder(sent, COUNT, (name) => socket.send(name)),
  });
  cleanups.push(() => socket.close());
  let closes = 0;
  socket.addEventListener('close', () => closes++);
  await waitFor(() => socket.readyState === socket.OPEN, { ...WAIT, what: 'open' });
  // Half in one burst (one tick), half one per tick: re-entrant sends among both.
  while (sent.length < COUNT / 2) {
    const name = `m${sent.length}`;
    sent.push(name);
    socket.send(name);
  }
  while (sent.length < COUNT) {
    const name = `m${sent.length}`;
    sent.push(name);
    await socket.sendAsync(name);
  }
  await expectInOrder(sent, COUNT, counted, () => closes);
});

it('a send from inside a link wrapper own sendWith (attach): every message once, in the order send() was called', async () => {
  const counted = await orderCountingServer();
  const COUNT = 1_000;
  const sent: string[] = [];
  const failed: unknown[] = [];
  const conn = attach(
    reentrantInOrder(
      sent,
      COUNT,
      (name) => conn.send(name).catch((error) => failed.push(error)),
      true,
    )(wsTransport(counted.server.url)),
  );
  cleanups.push(() => conn.close());
  let closes = 0;
  conn.closed.then(() => closes++);
  await waitFor(() => conn.state$.value.status === 'open', { ...WAIT, what: 'open' });
  while (sent.length < COUNT) {
    const name = `m${sent.length}`;
    sent.push(name);
    conn.send(name).catch((error) => failed.push(error));
  }
  await expectInOrder(sent, COUNT, counted, () => closes);
  expect(failed).toEqual([]);
});
