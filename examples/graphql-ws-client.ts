// `HAWebSocket` as the WebSocket of graphql-ws's client (`createClient({ webSocketImpl })`), through
// a server SIGKILLed and restarted mid-subscription.
//
// graphql-ws's protocol is stateful: a new server knows neither the `connection_init` nor the
// subscriptions. The socket never closes for graphql-ws (it stays OPEN while it recovers), so the
// renegotiation is the recovery function's: it watches what graphql-ws sends and receives, and on
// the reopened link it sends `connection_init`, waits for the new server's `connection_ack`, and
// sends each live `subscribe` again with its cursor moved past the last event received. graphql-ws
// sees one socket and one subscription whose events never repeat or skip.
//
//   pnpm --filter @lifeline/examples example:graphql-ws
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Link, LinkData, RecoveryContext } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { createClient } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { WebSocketServer } from 'ws';
import { report, ServerProcess, until } from './example-support.js';

if (process.argv[2] === 'serve') {
  const [port = '0', start = String(Date.now()), rate = '100'] = process.argv.slice(3);
  const due = () => Math.floor(((Date.now() - Number(start)) * Number(rate)) / 1_000);
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: { ok: { type: GraphQLString, resolve: () => 'ok' } },
    }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        // A log: event k is due at START + k / RATE s; served from any cursor, by any process.
        ticks: {
          type: new GraphQLNonNull(GraphQLInt),
          args: { after: { type: new GraphQLNonNull(GraphQLInt) } },
          subscribe: async function* (_: unknown, { after }: { after: number }) {
            for (let k = after + 1; ; ) {
              for (const upTo = due(); k <= upTo; k++) yield { ticks: k };
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
          },
        },
      },
    }),
  });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(port) });
  useServer({ schema }, wss);
  await once(wss, 'listening');
  process.stdout.write(`${JSON.stringify({ port: (wss.address() as { port: number }).port })}\n`);
} else {
  const start = Date.now();
  const server = new ServerProcess(fileURLToPath(import.meta.url), () => [String(start), '100']);
  await server.start();

  type Message = {
    id?: string;
    type: string;
    payload?: { variables?: Record<string, unknown>; data?: unknown };
  };
  let renegotiations = 0;

  /**
   * An `HAWebSocket` that knows graphql-ws's protocol well enough to renegotiate it on a recovered
   * link. `cursorOf` reads an event's cursor, `resumeAfter` rewrites a subscribe to continue after it.
   */
  function graphqlWsSocket(
    cursorOf: (data: unknown) => number,
    resumeAfter: (message: Message, cursor: number) => Message,
  ) {
    return class GraphqlWsHASocket extends HAWebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        let init: string | undefined;
        const live = new Map<string, Message>(); // subscribe messages by id, until complete
        const cursors = new Map<string, number>();
        const recover = async (ctx: RecoveryContext<LinkData, LinkData, unknown>): Promise<Link> => {
          const link = await ctx.reopen();
          if (init === undefined) return link; // graphql-ws has not initialised yet: it will
          // The ack is read here, before the link is handed over: graphql-ws already has one.
          const ack = firstValueFrom(
            link.messages$.pipe(
              filter((data) => (JSON.parse(String(data)) as Message).type === 'connection_ack'),
              timeout(10_000),
            ),
          );
          await link.send(init);
          await ack;
          for (const [id, message] of live) {
            const cursor = cursors.get(id);
            await link.send(JSON.stringify(cursor === undefined ? message : resumeAfter(message, cursor)));
          }
          renegotiations++;
          return link;
        };
        super(url, protocols, { recover, backoff: { initialDelayMs: 50, maxDelayMs: 500 } });
        this.send = (data: unknown) => {
          const message = JSON.parse(String(data)) as Message;
          if (message.type === 'connection_init') init = String(data);
          else if (message.type === 'subscribe') live.set(message.id!, message);
          else if (message.type === 'complete') live.delete(message.id!);
          HAWebSocket.prototype.send.call(this, data as string);
        };
        this.addEventListener('message', (event) => {
          const message = JSON.parse(String((event as MessageEvent).data)) as Message;
          if (message.type === 'next') cursors.set(message.id!, cursorOf(message.payload?.data));
          else if (message.type === 'complete' || message.type === 'error') live.delete(message.id!);
        });
      }
    };
  }

  const WebSocketImpl = graphqlWsSocket(
    (data) => (data as { ticks: number }).ticks,
    (message, cursor) => ({
      ...message,
      payload: { ...message.payload, variables: { ...message.payload?.variables, after: cursor } },
    }),
  );
  // graphql-ws's own retries stay off: the socket beneath never closes while it recovers.
  const client = createClient({ url: server.url, webSocketImpl: WebSocketImpl, retryAttempts: 0 });
  const events = new SequenceCounter();
  let highest = -1;
  let failed: unknown;
  const unsubscribe = client.subscribe<{ ticks: number }>(
    { query: 'subscription ($after: Int!) { ticks(after: $after) }', variables: { after: -1 } },
    {
      next: ({ data }) => {
        events.record(data!.ticks);
        highest = Math.max(highest, data!.ticks);
      },
      error: (error) => {
        failed = error;
      },
      complete: () => {},
    },
  );

  for (let kill = 1; kill <= 2; kill++) {
    const mark = events.uniqueCount;
    await until(() => events.uniqueCount >= mark + 100 || failed !== undefined, 'subscription events');
    await server.kill();
    await server.start();
  }
  const mark = events.uniqueCount;
  await until(
    () => (renegotiations >= 2 && events.uniqueCount >= mark + 100) || failed !== undefined,
    'events after the second kill',
  );
  unsubscribe();
  await client.dispose();
  const kills = server.kills;
  await server.kill();

  const c = events.counts(highest + 1);
  report('graphql-ws over HAWebSocket', {
    'server kills (SIGKILL)': kills,
    renegotiations,
    'events received': c.unique,
    lost: c.lost,
    duplicated: c.duplicated,
    'out of order': c.reordered,
    'subscription errors': failed === undefined ? 0 : 1,
  });
  const ok =
    failed === undefined && renegotiations === 2 && c.lost === 0 && c.duplicated === 0 && c.reordered === 0;
  process.exitCode = ok ? 0 : 1;
}
