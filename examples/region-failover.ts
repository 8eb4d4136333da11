// Failover across regions, with a health check picking the next one: a recovery function that
// asks each region's HTTP health endpoint, in order after the region that failed, and opens the
// feed on the first healthy one, continuing after the last event received.
//
// Three regions (eu, us, ap), each a server process with `/health` and a WebSocket feed on one
// port. The client starts on eu. Then us is drained (its health answers 503 while it still accepts
// connections, as a region being taken out of rotation does) and eu is killed with SIGKILL: the
// recovery skips us and lands on ap. Then us is back in rotation and ap is killed: the recovery
// finds eu unreachable and lands on us. The feed is a log (event k due at START + k / RATE s)
// that every region serves from any cursor (`?after=k`), so nothing is lost or repeated.
//
//   pnpm --filter @lifeline/examples example:region-failover
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { attach, ConnectFailedError } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';
import { wsTransport } from '@lifeline/node/ws';
import { WebSocketServer } from 'ws';
import { report, ServerProcess, until } from './example-support.js';

if (process.argv[2] === 'serve') {
  const [port = '0', start = String(Date.now()), rate = '100'] = process.argv.slice(3);
  const due = () => Math.floor(((Date.now() - Number(start)) * Number(rate)) / 1_000);
  let draining = false;
  const http = createServer((request, response) => {
    if (request.url === '/health') return void response.writeHead(draining ? 503 : 200).end();
    if (request.method === 'POST' && (request.url === '/drain' || request.url === '/undrain')) {
      draining = request.url === '/drain';
      return void response.writeHead(204).end();
    }
    response.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (socket, request) => {
    let next = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('after') ?? -1) + 1;
    const pump = setInterval(() => {
      const upTo = due();
      for (
        const first = next;
        next <= upTo && next < first + 500 && socket.bufferedAmount < 1 << 20;
        next++
      ) {
        socket.send(String(next));
      }
    }, 10);
    socket.on('close', () => clearInterval(pump));
  });
  http.listen(Number(port), '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: (http.address() as { port: number }).port })}\n`),
  );
} else {
  const start = Date.now();
  const script = fileURLToPath(import.meta.url);
  const regions = ['eu', 'us', 'ap'].map((name) => ({
    name,
    server: new ServerProcess(script, () => [String(start), '100']),
  }));
  await Promise.all(regions.map((region) => region.server.start()));
  const httpUrl = (region: (typeof regions)[number], path: string) =>
    `http://127.0.0.1:${region.server.port}${path}`;

  let current = regions[0]!;
  let last = -1; // the last event received: where the next region continues
  const visited = [current.name];
  const health = { checks: 0, unhealthy: 0, unreachable: 0 };

  /** 200 from `/health` within a second; a refused connection or a 503 is not healthy. */
  async function healthy(region: (typeof regions)[number], signal: AbortSignal): Promise<boolean> {
    health.checks++;
    try {
      const response = await fetch(httpUrl(region, '/health'), {
        signal: AbortSignal.any([signal, AbortSignal.timeout(1_000)]),
      });
      await response.body?.cancel();
      if (response.ok) return true;
      health.unhealthy++;
    } catch (error) {
      if (signal.aborted) throw error; // the connection was closed: stop the attempt
      health.unreachable++;
    }
    return false;
  }

  const feed = (region: (typeof regions)[number]) =>
    wsTransport(`ws://127.0.0.1:${region.server.port}/feed?after=${last}`);

  const conn = attach(feed(current), {
    recover: async (ctx) => {
      // The regions after the one that failed, in order, the failed one last (it may be back).
      const i = regions.indexOf(current);
      const order = [...regions.slice(i + 1), ...regions.slice(0, i + 1)];
      for (const region of order) {
        if (!(await healthy(region, ctx.signal))) continue;
        const link = await feed(region).open(ctx.signal);
        if (region !== current) visited.push(region.name);
        current = region;
        return link;
      }
      // Recoverable: the next attempt, after the backoff, asks every region again.
      throw new ConnectFailedError('no healthy region');
    },
    backoff: { initialDelayMs: 50, maxDelayMs: 500 },
  });
  const events = new SequenceCounter();
  conn.messages$.subscribe((data) => {
    const k = Number(String(data));
    events.record(k);
    last = Math.max(last, k);
  });

  await until(() => events.uniqueCount >= 100, 'events from eu');
  await fetch(httpUrl(regions[1]!, '/drain'), { method: 'POST' });
  await regions[0]!.server.kill();
  let mark = events.uniqueCount;
  await until(() => current.name === 'ap' && events.uniqueCount >= mark + 100, 'events from ap');

  await fetch(httpUrl(regions[1]!, '/undrain'), { method: 'POST' });
  await regions[2]!.server.kill();
  mark = events.uniqueCount;
  await until(() => current.name === 'us' && events.uniqueCount >= mark + 100, 'events from us');

  conn.close();
  await conn.closed;
  const kills = regions.reduce((sum, region) => sum + region.server.kills, 0);
  await Promise.all(regions.map((region) => region.server.kill()));

  const c = events.counts(last + 1);
  report('Region failover', {
    'regions, in order': visited.join(' -> '),
    'region kills (SIGKILL)': kills,
    'health checks': health.checks,
    'skipped, unhealthy (503)': health.unhealthy,
    'skipped, unreachable': health.unreachable,
    'events received': c.unique,
    lost: c.lost,
    duplicated: c.duplicated,
    'out of order': c.reordered,
  });
  const ok =
    visited.join(',') === 'eu,ap,us' &&
    health.unhealthy >= 1 &&
    health.unreachable >= 1 &&
    c.lost === 0 &&
    c.duplicated === 0 &&
    c.reordered === 0;
  process.exitCode = ok ? 0 : 1;
}
