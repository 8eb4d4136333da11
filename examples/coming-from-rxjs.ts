// Coming from RxJS: the same client written with RxJS's webSocket() + retry, then with
// haWebSocket() (docs/websocket.md, "Coming from RxJS", shows the two regions below). Each runs
// against a local server that drops its connections and refuses new ones for a while (HTTP 503,
// as while it restarts), while the client sends a note. The output says what each delivered.
//
//   node --conditions=@lifeline/source --import tsx coming-from-rxjs.ts
import { once } from 'node:events';
import { firstValueFrom, type Observable, Subject, take, toArray } from 'rxjs';
import { WebSocketServer } from 'ws';

type Message = { topic: string; n: number } | { sub: string } | { unsub: string } | { note: string };

// #region before
import { retry } from 'rxjs';
import { webSocket } from 'rxjs/webSocket';
import WebSocket from 'ws';

function before(url: string) {
  const subject = webSocket<Message>({ url, WebSocketCtor: WebSocket as never });
  const prices$ = subject
    .multiplex(
      () => ({ sub: 'prices' }),
      () => ({ unsub: 'prices' }),
      (message) => 'topic' in message && message.topic === 'prices',
    )
    .pipe(retry({ delay: 100 }));
  return { subject, prices$ };
}

// #endregion before

// #region after
import { haWebSocket } from '@lifeline/node/ws';

function after(url: string) {
  // The same config (WebSocketCtor is optional here: Node's haWebSocket uses `ws` already); no retry.
  const subject = haWebSocket<Message>({ url, WebSocketCtor: WebSocket as never });
  const prices$ = subject.multiplex(
    () => ({ sub: 'prices' }),
    () => ({ unsub: 'prices' }),
    (message) => 'topic' in message && message.topic === 'prices',
  );
  return { subject, prices$ };
}
// #endregion after

/**
 * A server that sends {topic:'prices', n} every 20 ms to each connection subscribed to prices and
 * logs what it gets. While `down`, it refuses every upgrade with HTTP 503 (a server restarting
 * behind a load balancer), and counts the refusals: connection attempts that failed.
 */
async function startServer() {
  const log: Message[] = [];
  let down = false;
  let refused = 0;
  let onRefused = () => {};
  const server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, callback) => {
      if (!down) return callback(true);
      refused++;
      onRefused();
      callback(false, 503);
    },
  });
  server.on('connection', (socket) => {
    let n = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Message;
      log.push(message);
      if ('sub' in message)
        timer ??= setInterval(() => socket.send(JSON.stringify({ topic: 'prices', n: ++n })), 20);
      if ('unsub' in message) clearInterval(timer);
    });
    socket.on('close', () => clearInterval(timer));
  });
  await once(server, 'listening');
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`,
    log,
    /**
     * Drops every connection and refuses new ones; `whileDown` runs once the client has seen the
     * drop (its first attempt failed). Accepts again after `attempts` more failed.
     */
    async outage(attempts: number, whileDown: () => void) {
      down = true;
      const failed = (count: number) => {
        const target = refused + count;
        return new Promise<void>((resolve) => {
          onRefused = () => refused >= target && resolve();
        });
      };
      const first = failed(1);
      for (const client of server.clients) client.terminate();
      await first;
      whileDown();
      await failed(attempts);
      down = false;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Client = { subject: { next(value: Message): void; unsubscribe(): void }; prices$: Observable<Message> };

async function run(name: string, make: (url: string) => Client) {
  const server = await startServer();
  const { subject, prices$ } = make(server.url);
  const prices = new Subject<Message>();
  const subscription = prices$.subscribe(prices);
  const ticks = (count: number) => firstValueFrom(prices.pipe(take(count), toArray()));
  await ticks(2);
  await server.outage(2, () => subject.next({ note: 'sent while the server was down' }));
  // Prices flow again; the note, if it is coming, was written right after the subscribe message.
  await ticks(2);
  const notes = server.log.filter((message) => 'note' in message).length;
  const subscribes = server.log.filter((message) => 'sub' in message).length;
  console.log(
    `${name}: prices flowing again; note delivered ${notes} time(s); subscribe messages ${subscribes}`,
  );
  subscription.unsubscribe();
  subject.unsubscribe();
  await server.close();
}

await run('rxjs webSocket() + retry', before);
await run('haWebSocket()', after);
