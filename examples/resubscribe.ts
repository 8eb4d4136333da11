// A recovery function that renegotiates server-side state after a reopen: it introduces the client
// again (`hello`) and re-subscribes to the channels it is subscribed to NOW, each from the last
// event it received, so a server restarted with nothing in memory continues every channel with no
// gap and no duplicate.
//
// The server runs in its own process and is killed with SIGKILL twice. Between the kills the client
// subscribes to one more channel and unsubscribes from another: the recovery function reads the
// subscriptions when it runs, never a list fixed at startup.
//
//   pnpm --filter @lifeline/examples example:resubscribe
//
// Protocol (JSON text frames): client `{op:'hello',client}` → server `{op:'welcome'}`; then
// `{op:'subscribe',channel,after}` → events `{channel,seq}` for every seq > after, and
// `{op:'unsubscribe',channel}` → `{op:'unsubscribed',channel}`. A subscribe before hello is refused
// (close 4400). Channel events are a log: event k is due at START + k / RATE seconds, so events keep
// becoming due while no server runs, and a new server process serves them from any cursor.
import { fileURLToPath } from 'node:url';
import { attach } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';
import { wsTransport } from '@lifeline/node/ws';
import { WebSocketServer } from 'ws';
import { report, ServerProcess, until } from './example-support.js';

type ClientMessage =
  | { op: 'hello'; client: string }
  | { op: 'subscribe'; channel: string; after: number }
  | { op: 'unsubscribe'; channel: string };
type ServerMessage =
  | { op: 'welcome'; client: string }
  | { op: 'unsubscribed'; channel: string }
  | { channel: string; seq: number };

if (process.argv[2] === 'serve') {
  const [port = '0', start = String(Date.now()), rate = '100'] = process.argv.slice(3);
  const due = () => Math.floor(((Date.now() - Number(start)) * Number(rate)) / 1_000);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(port) });
  wss.on('connection', (socket) => {
    let client: string | undefined;
    const next = new Map<string, number>(); // channel → next seq to send
    const pump = setInterval(() => {
      const upTo = due();
      for (const [channel, seq] of next) {
        let k = seq;
        // Bounded per tick, and only while the socket drains: a slow reader holds back the log.
        for (; k <= upTo && k < seq + 500 && socket.bufferedAmount < 1 << 20; k++) {
          socket.send(JSON.stringify({ channel, seq: k }));
        }
        next.set(channel, k);
      }
    }, 10);
    socket.on('close', () => clearInterval(pump));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as ClientMessage;
      if (message.op === 'hello') {
        client = message.client;
        socket.send(JSON.stringify({ op: 'welcome', client }));
      } else if (client === undefined) {
        socket.close(4400, 'hello first');
      } else if (message.op === 'subscribe') {
        // A subscribe for a channel already served is a repeat (a send re-written after a
        // reconnect): the first one's cursor stands.
        if (!next.has(message.channel)) next.set(message.channel, message.after + 1);
      } else if (message.op === 'unsubscribe') {
        next.delete(message.channel);
        socket.send(JSON.stringify({ op: 'unsubscribed', channel: message.channel }));
      }
    });
  });
  wss.on('listening', () =>
    process.stdout.write(`${JSON.stringify({ port: (wss.address() as { port: number }).port })}\n`),
  );
} else {
  const start = Date.now();
  const server = new ServerProcess(fileURLToPath(import.meta.url), () => [String(start), '100']);
  await server.start();

  /** The client's side of the negotiated state: who it is, and each channel's last event. */
  const subscriptions = new Map<string, number>(); // channel → last seq received
  const counters = new Map<string, SequenceCounter>();
  const highest = new Map<string, number>(); // channel → highest seq received
  const hello: ClientMessage = { op: 'hello', client: 'example' };
  let welcomes = 0;
  let resubscribed = 0;
  let eventsAfterUnsubscribe = 0;
  const unsubscribed = new Set<string>();

  const conn = attach(
    wsTransport(() => server.url),
    {
      recover: async (ctx) => {
        const link = await ctx.reopen();
        // Sends made here go out before anything that waited in the queue: the server hears hello
        // and the subscriptions first, as on the first link.
        await link.send(JSON.stringify(hello));
        for (const [channel, after] of subscriptions) {
          await link.send(JSON.stringify({ op: 'subscribe', channel, after }));
          resubscribed++;
        }
        return link;
      },
      backoff: { initialDelayMs: 50, maxDelayMs: 500 },
    },
  );
  conn.messages$.subscribe((data) => {
    const message = JSON.parse(String(data)) as ServerMessage;
    if ('op' in message) {
      if (message.op === 'welcome') welcomes++;
      else unsubscribed.add(message.channel);
      return;
    }
    if (unsubscribed.has(message.channel)) {
      eventsAfterUnsubscribe++;
      return;
    }
    counters.get(message.channel)?.record(message.seq);
    highest.set(message.channel, Math.max(highest.get(message.channel) ?? -1, message.seq));
    if (subscriptions.has(message.channel)) subscriptions.set(message.channel, message.seq);
  });
  const subscribe = (channel: string) => {
    subscriptions.set(channel, -1);
    counters.set(channel, new SequenceCounter());
    return conn.send(JSON.stringify({ op: 'subscribe', channel, after: -1 }));
  };
  const unsubscribe = (channel: string) => {
    subscriptions.delete(channel);
    return conn.send(JSON.stringify({ op: 'unsubscribe', channel }));
  };
  const received = (channel: string) => counters.get(channel)?.uniqueCount ?? 0;

  await conn.send(JSON.stringify(hello));
  await Promise.all([subscribe('prices'), subscribe('news')]);
  await until(() => received('prices') >= 100 && received('news') >= 100, 'prices and news flowing');

  await server.kill();
  await server.start();
  let mark = received('prices');
  await until(() => welcomes >= 2 && received('prices') >= mark + 100, 'prices after the first kill');

  // The subscriptions change between failures; the next recovery follows them.
  await Promise.all([subscribe('alerts'), unsubscribe('news')]);
  await until(() => unsubscribed.has('news') && received('alerts') >= 100, 'alerts flowing, news stopped');

  await server.kill();
  await server.start();
  mark = received('alerts');
  await until(() => welcomes >= 3 && received('alerts') >= mark + 100, 'alerts after the second kill');

  conn.close();
  await conn.closed;
  const kills = server.kills;
  await server.kill();

  const counts: Record<string, number | string> = {
    'server kills (SIGKILL)': kills,
    welcomes,
    'subscriptions renewed by recover': resubscribed,
    'news events after unsubscribe': eventsAfterUnsubscribe,
  };
  let ok = welcomes === 3 && resubscribed === 4 && eventsAfterUnsubscribe === 0;
  for (const [channel, counter] of counters) {
    // Every event from 0 up to the last one received must be there exactly once.
    const c = counter.counts((highest.get(channel) ?? -1) + 1);
    counts[`${channel} received`] = c.unique;
    counts[`${channel} lost`] = c.lost;
    counts[`${channel} duplicated`] = c.duplicated;
    counts[`${channel} out of order`] = c.reordered;
    ok &&= c.unique > 0 && c.lost === 0 && c.duplicated === 0 && c.reordered === 0;
  }
  report('Resubscribe after reopen', counts);
  process.exitCode = ok ? 0 : 1;
}
