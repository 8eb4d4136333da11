import { ok as assert, deepStrictEqual as assertEquals } from 'node:assert/strict';
import { attach, type ConnectionState, LinkClosedError } from '@lifeline/core';
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { denoWebSocketTransport, HAWebSocket } from '../src/index.ts';
import { ChildWsStreamServer, WsEchoServer } from './support/servers.ts';
import { streamEchoes, textCodec } from './support/stream-echoes.ts';

const fast = { backoff: { initialDelayMs: 20, maxDelayMs: 200 }, minUptimeMs: 100 } as const;

function waitForStatus(conn: { state$: Observable<ConnectionState> }, status: ConnectionState['status']) {
  return firstValueFrom(conn.state$.pipe(filter((state) => state.status === status)));
}

Deno.test('WebSocket: recovers from server-side closes (1012) mid-stream; nothing reordered, loss and duplicates bounded by the window', async () => {
  const server = await WsEchoServer.start();
  const conn = attach(denoWebSocketTransport(server.url), { ...fast, maxAttemptsPerFailure: 50 });
  try {
    const WINDOW = 8;
    const TOTAL = 3_000;
    const KILLS = 5;
    let kills = 0;
    const echoes = await streamEchoes(conn, textCodec, TOTAL, WINDOW, (sent) => {
      if (kills < KILLS && sent === Math.round(((kills + 1) * TOTAL) / (KILLS + 1))) {
        kills++;
        server.closeAll(1012, 'restart');
      }
    });
    const counts = echoes.counts(TOTAL);
    assertEquals(kills, KILLS);
    assertEquals(server.accepted, KILLS + 1);
    assertEquals(counts.reordered, 0);
    // Plain mode: what the server never echoed is lost, what was written twice is duplicated;
    // both bounded by the window at each kill. The resume protocol makes both zero.
    assert(counts.lost <= WINDOW * KILLS, `lost ${counts.lost}`);
    assert(counts.duplicated <= WINDOW * KILLS, `duplicated ${counts.duplicated}`);
    assertEquals(counts.unique + counts.lost, TOTAL);
    assert(echoes.has(TOTAL - 1));
  } finally {
    conn.close();
    await conn.closed;
    await server.close();
  }
});

Deno.test('WebSocket: survives a Deno server process killed with SIGKILL and restarted on the same port, streaming both ways', async () => {
  const server = new ChildWsStreamServer(2);
  await server.start();
  const conn = attach(denoWebSocketTransport(server.url), { ...fast, maxAttemptsPerFailure: 100 });
  const ticksPerLink: number[][] = [];
  const links = conn.events$.subscribe((event) => {
    if (event.type === 'link-open') ticksPerLink.push([]);
  });
  const ticks = conn.messages$.subscribe((data) => {
    const [kind, n] = String(data).split(':');
    if (kind === 'tick') ticksPerLink.at(-1)!.push(Number(n));
  });
  try {
    const KILLS = 3;
    const TOTAL = 2_000;
    const WINDOW = 4;
    const restarts: Promise<void>[] = [];
    const echoes = await streamEchoes(conn, textCodec, TOTAL, WINDOW, (sent) => {
      if (restarts.length < KILLS && sent === Math.round(((restarts.length + 1) * TOTAL) / (KILLS + 1))) {
        restarts.push(server.kill().then(() => server.start()));
      }
    });
    await Promise.all(restarts);
    assertEquals(server.starts, KILLS + 1);
    const counts = echoes.counts(TOTAL);
    assertEquals(counts.reordered, 0);
    assert(counts.lost <= KILLS * WINDOW, `lost ${counts.lost}`);
    assert(counts.duplicated <= KILLS * WINDOW, `duplicated ${counts.duplicated}`);
    assert(echoes.has(TOTAL - 1));
    // Server to client: within each link the ticks arrive gap-free and in order.
    assertEquals(ticksPerLink.length, KILLS + 1);
    for (const linkTicks of ticksPerLink) {
      assert(linkTicks.length > 0);
      assertEquals(
        linkTicks,
        linkTicks.map((_, i) => i),
      );
    }
  } finally {
    ticks.unsubscribe();
    links.unsubscribe();
    conn.close();
    await conn.closed;
    await server.kill();
  }
});

Deno.test('WebSocket: a close with 4401 is not retried and reaches the caller unchanged', async () => {
  const server = await WsEchoServer.start();
  server.onOpen = (socket) => socket.close(4401, 'token expired');
  const conn = attach(denoWebSocketTransport(server.url), fast);
  try {
    const closed = await conn.closed;
    assertEquals(closed.reason, 'irrecoverable');
    assert(closed.error instanceof LinkClosedError);
    assertEquals(closed.error.closeCode, 4401);
    assertEquals(closed.error.reason, 'token expired');
    assertEquals(server.accepted, 1);
  } finally {
    await server.close();
  }
});

Deno.test('HAWebSocket: stays OPEN across a server-side close, dispatches recovering/recovered, delivers queued sends in order', async () => {
  const server = await WsEchoServer.start();
  const socket = new HAWebSocket(server.url, undefined, fast);
  try {
    assertEquals(socket.readyState, HAWebSocket.CONNECTING);
    await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
    assertEquals(socket.readyState, HAWebSocket.OPEN);
    const events: string[] = [];
    socket.addEventListener('recovering', () => events.push('recovering'));
    socket.onrecovered = () => events.push('recovered');
    const received: string[] = [];
    const lastEcho = Promise.withResolvers<void>();
    socket.onmessage = (event) => {
      received.push(String(event.data));
      if (event.data === 'q19') lastEcho.resolve();
    };
    const recovered = new Promise((resolve) => socket.addEventListener('recovered', resolve, { once: true }));
    server.closeAll(1012, 'restart');
    await waitForStatus(socket, 'recovering');
    assertEquals(socket.readyState, HAWebSocket.OPEN);
    for (let i = 0; i < 20; i++) socket.send(`q${i}`);
    assert(socket.bufferedAmount > 0);
    await recovered;
    await lastEcho.promise;
    assertEquals(
      received,
      Array.from({ length: 20 }, (_, i) => `q${i}`),
    );
    assertEquals(events, ['recovering', 'recovered']);
    assertEquals(server.accepted, 2);
  } finally {
    const closed = new Promise((resolve) => socket.addEventListener('close', resolve, { once: true }));
    socket.close();
    await closed;
    await server.close();
  }
});
