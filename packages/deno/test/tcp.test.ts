import { ok as assert, deepStrictEqual as assertEquals } from 'node:assert/strict';
import {
  attach,
  ConnectFailedError,
  type ConnectionState,
  FrameTooLargeError,
  HeartbeatTimeoutError,
} from '@lifeline/core';
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { connectTcp, tcpTransport } from '../src/index.ts';
import { TcpEchoServer } from './support/servers.ts';
import { streamEchoes, u32FrameCodec, u32StreamCodec } from './support/stream-echoes.ts';

const fast = { backoff: { initialDelayMs: 20, maxDelayMs: 200 }, minUptimeMs: 100 } as const;

function waitForStatus(conn: { state$: Observable<ConnectionState> }, status: ConnectionState['status']) {
  return firstValueFrom(conn.state$.pipe(filter((state) => state.status === status)));
}

Deno.test('TCP framed: recovers from the server closing every connection mid-stream; windowed counts', async () => {
  const server = TcpEchoServer.start('framed');
  const conn = connectTcp({ port: server.port, ...fast, maxAttemptsPerFailure: 50 });
  try {
    const WINDOW = 8;
    const TOTAL = 5_000;
    const KILLS = 5;
    let kills = 0;
    const echoes = await streamEchoes(conn, u32FrameCodec, TOTAL, WINDOW, (sent) => {
      if (kills < KILLS && sent === Math.round(((kills + 1) * TOTAL) / (KILLS + 1))) {
        kills++;
        server.closeAll();
      }
    });
    const counts = echoes.counts(TOTAL);
    assertEquals(kills, KILLS);
    assertEquals(server.accepted, KILLS + 1);
    assertEquals(counts.reordered, 0);
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

Deno.test('TCP stream mode: bytes echoed across server-side closes; numbers reassembled per link, windowed counts', async () => {
  const server = TcpEchoServer.start('stream');
  const conn = attach(tcpTransport({ port: server.port, mode: 'stream' }), {
    ...fast,
    maxAttemptsPerFailure: 50,
  });
  const codec = u32StreamCodec();
  const links = conn.events$.subscribe((event) => {
    if (event.type === 'link-open') codec.reset();
  });
  try {
    const WINDOW = 16;
    const TOTAL = 5_000;
    const KILLS = 4;
    let kills = 0;
    const echoes = await streamEchoes(conn, codec, TOTAL, WINDOW, (sent) => {
      if (kills < KILLS && sent === Math.round(((kills + 1) * TOTAL) / (KILLS + 1))) {
        kills++;
        server.closeAll();
      }
    });
    const counts = echoes.counts(TOTAL);
    assertEquals(server.accepted, KILLS + 1);
    assertEquals(counts.reordered, 0);
    assert(counts.lost <= WINDOW * KILLS, `lost ${counts.lost}`);
    assert(counts.duplicated <= WINDOW * KILLS, `duplicated ${counts.duplicated}`);
    assertEquals(counts.unique + counts.lost, TOTAL);
  } finally {
    links.unsubscribe();
    conn.close();
    await conn.closed;
    await server.close();
  }
});

Deno.test('TCP framed: the heartbeat detects a peer that stops answering, and recovery reconnects', async () => {
  const server = TcpEchoServer.start('framed');
  const heartbeat = { intervalMs: 50, timeoutMs: 300 };
  const conn = connectTcp({ port: server.port, ...fast, heartbeat, maxAttemptsPerFailure: 50 });
  try {
    await waitForStatus(conn, 'open');
    server.answerPings = false;
    server.echo = false;
    const silentFrom = performance.now();
    const recovering = (await waitForStatus(conn, 'recovering')) as Extract<
      ConnectionState,
      { status: 'recovering' }
    >;
    const detectedAfter = performance.now() - silentFrom;
    assert(recovering.error instanceof HeartbeatTimeoutError);
    assert(detectedAfter >= heartbeat.timeoutMs - 50, `detected after ${detectedAfter} ms`);
    server.answerPings = true;
    server.echo = true;
    await waitForStatus(conn, 'open');
    assertEquals(server.accepted, 2);
    const echoed = firstValueFrom(conn.messages$);
    await conn.send(new TextEncoder().encode('after'));
    assertEquals(new TextDecoder().decode(await echoed), 'after');
  } finally {
    conn.close();
    await conn.closed;
    await server.close();
  }
});

Deno.test('TCP: a refused connect is a recoverable ConnectFailedError with ECONNREFUSED; the budget ends it', async () => {
  const server = TcpEchoServer.start('framed');
  const port = server.port;
  await server.close();
  const states: ConnectionState[] = [];
  const conn = connectTcp({ port, ...fast, maxAttemptsPerFailure: 3 });
  const recording = conn.state$.subscribe((state) => states.push(state));
  const closed = await conn.closed;
  recording.unsubscribe();
  assertEquals(closed.reason, 'attempts-exhausted');
  assert(closed.error instanceof ConnectFailedError);
  assertEquals(closed.error.syscallCode, 'ECONNREFUSED');
  assertEquals(
    states.filter((s) => s.status === 'recovering').map((s) => (s as { attempt: number }).attempt),
    [1, 2, 3],
  );
});

Deno.test('TCP framed: a frame over maxFrameSize fails the connection irrecoverably', async () => {
  const server = TcpEchoServer.start('framed');
  const conn = connectTcp({ port: server.port, ...fast, maxFrameSize: 16 });
  try {
    await waitForStatus(conn, 'open');
    conn.send(new Uint8Array(64)).catch(() => {});
    const closed = await conn.closed;
    assertEquals(closed.reason, 'irrecoverable');
    assert(closed.error instanceof FrameTooLargeError);
    assertEquals(closed.error.size, 64);
    assertEquals(server.accepted, 1);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test('TCP framed: a send over maxFrameSize rejects with FrameTooLargeError and ends the connection, as on Node', async () => {
  const server = TcpEchoServer.start('framed');
  // The server reads and drops: no echo of the oversized frame may fail the link in its place.
  server.echo = false;
  const conn = connectTcp({ port: server.port, ...fast, maxFrameSize: 16 });
  try {
    await conn.send(new Uint8Array(16));
    const tooBig = conn.send(new Uint8Array(64));
    const outcome = await tooBig.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    assert(outcome instanceof FrameTooLargeError, `the oversized send settled with ${String(outcome)}`);
    assertEquals(outcome.size, 64);
    assertEquals(outcome.maxSize, 16);
    const closed = await conn.closed;
    assertEquals(closed.reason, 'irrecoverable');
    assert(closed.error === outcome);
    // Refused once, not retried on new connections.
    assertEquals(server.accepted, 1);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test('TCP: connect is injectable: every open goes through the function given', async () => {
  const server = TcpEchoServer.start('framed');
  let connects = 0;
  const conn = connectTcp({
    port: server.port,
    ...fast,
    connect: (options) => {
      connects++;
      return Deno.connect(options);
    },
  });
  try {
    await waitForStatus(conn, 'open');
    const echoed = firstValueFrom(conn.messages$);
    await conn.send(new Uint8Array([1, 2, 3]));
    assertEquals([...(await echoed)], [1, 2, 3]);
    assertEquals(connects, 1);
  } finally {
    conn.close();
    await conn.closed;
    await server.close();
  }
});
