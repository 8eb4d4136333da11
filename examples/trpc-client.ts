// `HAWebSocket` as the WebSocket of tRPC's WebSocket link (`createWSClient({ WebSocket })`),
// through a tRPC server SIGKILLed and restarted mid-subscription.
//
// The tRPC server keeps its subscriptions in memory; a restarted one has none. The socket stays
// OPEN for tRPC while it recovers, so the recovery function renegotiates: it watches the
// subscription requests tRPC sends and the tracked events (`tracked(id, data)`) it receives, and on
// the reopened link sends each live subscription again with `lastEventId` set to the last event
// received, which the tRPC server hands to the procedure as `input.lastEventId`. tRPC sees one
// socket and one subscription whose events never repeat or skip.
//
//   pnpm --filter @lifeline/examples example:trpc
import { fileURLToPath } from 'node:url';
import type { Link, LinkData, RecoveryContext } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { initTRPC, tracked } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { WebSocketServer } from 'ws';
import { report, ServerProcess, until } from './example-support.js';

const [, , mode, portArg = '0', startArg = String(Date.now()), rateArg = '100'] = process.argv;
const due = () => Math.floor(((Date.now() - Number(startArg)) * Number(rateArg)) / 1_000);

const t = initTRPC.create();
const router = t.router({
  // A log: event k is due at START + k / RATE s; served after any event id, by any process.
  ticks: t.procedure
    .input((raw) => (raw ?? {}) as { lastEventId?: string })
    .subscription(async function* ({ input, signal }) {
      for (let k = Number(input.lastEventId ?? -1) + 1; !signal?.aborted; ) {
        for (const upTo = due(); k <= upTo; k++) yield tracked(String(k), k);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }),
});
export type AppRouter = typeof router;

if (mode === 'serve') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(portArg) });
  applyWSSHandler({ wss, router });
  wss.on('listening', () =>
    process.stdout.write(`${JSON.stringify({ port: (wss.address() as { port: number }).port })}\n`),
  );
} else {
  const server = new ServerProcess(fileURLToPath(import.meta.url), () => [startArg, rateArg]);
  await server.start();

  type Request = { id: number | string; method: string; params?: { lastEventId?: string } };
  type Response = { id?: number | string | null; result?: { type: string; id?: string } };
  let renegotiations = 0;

  /** An `HAWebSocket` that sends tRPC's live subscriptions again on a recovered link. */
  class TrpcHASocket extends HAWebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      const live = new Map<Request['id'], Request>(); // subscription requests by id, until stopped
      const recover = async (ctx: RecoveryContext<LinkData, LinkData, unknown>): Promise<Link> => {
        const link = await ctx.reopen();
        if (live.size > 0) await link.send(JSON.stringify([...live.values()]));
        renegotiations++;
        return link;
      };
      super(url, protocols, { recover, backoff: { initialDelayMs: 50, maxDelayMs: 500 } });
      this.send = (data: unknown) => {
        const sent = JSON.parse(String(data)) as Request | Request[];
        for (const request of Array.isArray(sent) ? sent : [sent]) {
          if (request.method === 'subscription') live.set(request.id, structuredClone(request));
          else if (request.method === 'subscription.stop') live.delete(request.id);
        }
        HAWebSocket.prototype.send.call(this, data as string);
      };
      this.addEventListener('message', (event) => {
        const data = String((event as MessageEvent).data);
        if (!data.startsWith('{') && !data.startsWith('[')) return; // PING / PONG
        const received = JSON.parse(data) as Response | Response[];
        for (const response of Array.isArray(received) ? received : [received]) {
          const request = response.id == null ? undefined : live.get(response.id);
          if (!request) continue;
          if (response.result?.type === 'data' && response.result.id !== undefined) {
            request.params = { ...request.params, lastEventId: response.result.id };
          } else if (response.result?.type === 'stopped') live.delete(request.id);
        }
      });
    }
  }

  const wsClient = createWSClient({
    url: server.url,
    WebSocket: TrpcHASocket as unknown as typeof WebSocket,
  });
  const trpc = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient })] });
  const events = new SequenceCounter();
  let highest = -1;
  let failed: unknown;
  const subscription = trpc.ticks.subscribe(
    {},
    {
      onData: ({ data }) => {
        events.record(data);
        highest = Math.max(highest, data);
      },
      onError: (error) => {
        failed = error;
      },
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
  subscription.unsubscribe();
  await wsClient.close();
  const kills = server.kills;
  await server.kill();

  const c = events.counts(highest + 1);
  report('tRPC over HAWebSocket', {
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
