import { once } from 'node:events';
import {
  attach,
  ConnectFailedError,
  type ConnectionState,
  FrameTooLargeError,
  InvalidMessageError,
  InvalidOptionError,
  LinkClosedError,
  LinkFailedError,
} from '@lifeline/core';
import { encodeFrame } from '@lifeline/core/internal';
import { connectTcp, FramedSocket, tcpTransport } from '@lifeline/node/tcp';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { record, recordReader, streamEchoes, TcpTestServer, waitFor, within } from './support/tcp-servers.js';

const fast = { backoff: { initialDelayMs: 10, maxDelayMs: 100 }, minUptimeMs: 50 } as const;

describe('tcpTransport', () => {
  it('opens a link whose sends resolve once written and whose messages are the peer frames', async () => {
    const server = await TcpTestServer.framedEcho();
    cleanups.push(() => server.close());
    const link = await tcpTransport({ port: server.port }).open();
    const got: number[] = [];
    const done = new Promise<void>((resolve, reject) =>
      link.messages$.subscribe({
        next: (m) => got.push(Buffer.from(m).readUInt32BE(0)),
        complete: resolve,
        error: reject,
      }),
    );
    const last = waitFor(link.messages$, (m) => Buffer.from(m).readUInt32BE(0) === 99);
    for (let i = 0; i < 100; i++) await link.send(record(i));
    await last;
    let pongs = 0;
    link.pongs$!.subscribe(() => pongs++);
    const pong = waitFor(link.pongs$!, () => true);
    link.ping!();
    await pong;
    link.close();
    await done;
    await link.closed;
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(pongs).toBe(1);
  });

  it('writes a burst of small and large payloads in one tick as one batch, intact and in order, both modes', async () => {
    const sizes = [0, 1, 64, 2_047, 2_048, 4_096, 100_000, 3, 1_000_000, 5];
    const payloads = sizes.map((size, i) => Buffer.alloc(size, i + 1));
    for (const mode of ['framed', 'stream'] as const) {
      const server =
        mode === 'framed'
          ? await TcpTestServer.framedEcho()
          : await TcpTestServer.start((socket) => socket.on('data', (chunk) => socket.write(chunk)));
      const link = await tcpTransport({ port: server.port, mode }).open();
      const received: Buffer[] = [];
      let bytes = 0;
      const total = sizes.reduce((sum, size) => sum + size, 0);
      const all = new Promise<void>((resolve, reject) =>
        link.messages$.subscribe({
          next: (message) => {
            received.push(Buffer.from(message));
            bytes += message.length;
            if (mode === 'framed' ? received.length === sizes.length : bytes === total) resolve();
          },
          error: reject,
        }),
      );
      const settled = await Promise.allSettled(payloads.map((payload) => link.send(payload)));
      expect(settled.every((result) => result.status === 'fulfilled')).toBe(true);
      await all;
      if (mode === 'framed') expect(received.map((m) => m.length)).toEqual(sizes);
      expect(Buffer.concat(received).equals(Buffer.concat(payloads))).toBe(true);
      link.close();
      await link.closed;
      await server.close();
    }
  });

  it('answers the server pings with pongs of the same payload, without surfacing them as messages', async () => {
    const pongs: number[][] = [];
    let pongReceived!: () => void;
    const gotPong = new Promise<void>((resolve) => {
      pongReceived = resolve;
    });
    const server = await TcpTestServer.start((socket) => {
      const peer = new FramedSocket(socket);
      peer.on('pong', (payload) => {
        pongs.push([...payload]);
        pongReceived();
      });
      peer.ping(Uint8Array.of(1, 2, 3));
      peer.send(record(7));
    });
    cleanups.push(() => server.close());
    const link = await tcpTransport({ port: server.port }).open();
    const messages: number[] = [];
    link.messages$.subscribe({ next: (m) => messages.push(Buffer.from(m).readUInt32BE(0)), error: () => {} });
    await within(gotPong, 5_000, () => 'no pong');
    expect(pongs).toEqual([[1, 2, 3]]);
    expect(messages).toEqual([7]);
    link.close();
    await link.closed;
  });

  it('validates its options at once, and honours an aborted signal', async () => {
    expect(() => tcpTransport({ port: 0 })).toThrow(InvalidOptionError);
    expect(() => tcpTransport({ port: 70_000 })).toThrow(InvalidOptionError);
    expect(() => tcpTransport({ port: 1, mode: 'lines' as 'stream' })).toThrow(InvalidOptionError);
    expect(() => tcpTransport({ port: 1, maxFrameSize: -1 })).toThrow(InvalidOptionError);
    const reason = new Error('stop');
    await expect(tcpTransport({ port: 1 }).open(AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('rejects an open on a closed port with a recoverable ConnectFailedError ECONNREFUSED', async () => {
    const server = await TcpTestServer.start(() => {});
    const port = server.port;
    await server.close();
    const error = await tcpTransport({ port })
      .open()
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(error).toBeInstanceOf(ConnectFailedError);
    expect(error).toMatchObject({ syscallCode: 'ECONNREFUSED' });
  });

  it('fails the link with LinkClosedError (no close code, recoverable) on a FIN and LinkFailedError ECONNRESET on a RST', async () => {
    const server = await TcpTestServer.framedEcho();
    cleanups.push(() => server.close());
    const transport = tcpTransport({ port: server.port });
    const errorOf = async (kill: () => void) => {
      const link = await transport.open();
      const failed = new Promise<unknown>((resolve) => link.messages$.subscribe({ error: resolve }));
      const echoed = waitFor(link.messages$, () => true);
      await link.send(record(1));
      await echoed;
      kill();
      const error = await failed;
      await link.closed;
      return error;
    };
    const fin = await errorOf(() => {
      for (const socket of server.sockets) socket.end();
    });
    expect(fin).toBeInstanceOf(LinkClosedError);
    expect(fin).toMatchObject({ closeCode: undefined });
    const rst = await errorOf(() => server.resetAll());
    expect(rst).toBeInstanceOf(LinkFailedError);
    expect(rst).toMatchObject({ syscallCode: 'ECONNRESET' });
  });

  it('recovers from socket.destroy() on the server mid-stream (framed, both ways): nothing reordered, nothing in flight lost', async () => {
    const TOTAL = 5_000;
    const WINDOW = 16;
    const KILLS = 4;
    const killAt = new Set(
      Array.from({ length: KILLS }, (_, k) => Math.round(((k + 1) * TOTAL) / (KILLS + 1))),
    );
    const serverReceived: number[] = [];
    // The server kills the connection on its own schedule, when a given message arrives (before
    // echoing it), so the client has writes in flight that it cannot know the fate of.
    const server = await TcpTestServer.framedEcho((payload, peer) => {
      const n = Buffer.from(payload).readUInt32BE(0);
      if (peer.socket.destroyed) return;
      serverReceived.push(n);
      if (killAt.delete(n)) peer.destroy();
    });
    cleanups.push(() => server.close());
    const conn = connectTcp({ port: server.port, ...fast, maxAttemptsPerFailure: 50 });
    cleanups.push(() => conn.close());
    const result = await streamEchoes(conn, { total: TOTAL, window: WINDOW });
    const counts = result.echoes.counts(TOTAL);
    const serverUnique = new Set(serverReceived).size;
    console.info('tcp destroy mid-stream', {
      ...counts,
      breaks: result.breaks,
      sentWhileDown: result.sentWhileDown,
      lostAfterWrite: result.lostAfterWrite.length,
      serverLost: TOTAL - serverUnique,
      serverDuplicated: serverReceived.length - serverUnique,
    });
    expect(killAt.size).toBe(0);
    expect(result.breaks).toBe(KILLS);
    expect(server.accepted).toBe(KILLS + 1);
    expect(result.resolved).toBe(TOTAL);
    expect(result.rejected).toBe(0);
    expect(counts.reordered).toBe(0);
    // Every send that was pending when a link broke (or made while it was down) was written again.
    expect(result.lostInFlight).toEqual([]);
    // Plain mode's blind spot: a send written to the kernel before the break that the server never
    // read, or whose echo died with the link. The window bounds it; the resume protocol removes it.
    expect(counts.lost).toBe(result.lostAfterWrite.length);
    expect(counts.lost).toBeLessThanOrEqual(WINDOW * KILLS);
    expect(counts.duplicated).toBeLessThanOrEqual(WINDOW * KILLS);
    expect(TOTAL - serverUnique).toBeLessThanOrEqual(counts.lost);
    expect(serverReceived.length - serverUnique).toBeLessThanOrEqual(WINDOW * KILLS);
  });

  it('server stays down: backoff runs, the per-failure budget runs out, the ORIGINAL error reaches the caller and rejects every pending send', async () => {
    const server = await TcpTestServer.framedEcho();
    const MAX_ATTEMPTS = 4;
    const conn = connectTcp({ port: server.port, ...fast, maxAttemptsPerFailure: MAX_ATTEMPTS });
    cleanups.push(() => conn.close());
    await waitFor(conn.state$, (s) => s.status === 'open');
    const states: ConnectionState[] = [];
    conn.state$.subscribe((state) => states.push(state));
    let linkDownError: unknown;
    conn.events$.subscribe((event) => {
      if (event.type === 'link-down') linkDownError ??= event.error;
    });
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) sends.push(conn.send(record(i)));
    await sends.at(-1);
    // A burst still in flight when the server goes, then more while recovery runs.
    for (let i = 50; i < 100; i++) sends.push(conn.send(record(i)));
    await server.close(); // RST on the link, and every reconnect is refused
    await waitFor(conn.state$, (s) => s.status === 'recovering');
    for (let i = 100; i < 120; i++) sends.push(conn.send(record(i)));
    const closed = await conn.closed;
    const results = await Promise.allSettled(sends);
    const resolved = results.filter((r) => r.status === 'fulfilled').length;
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(closed.reason).toBe('attempts-exhausted');
    const original = closed.error;
    expect(original).toBe(linkDownError);
    expect(original).toBeInstanceOf(LinkFailedError);
    expect(original).toMatchObject({ syscallCode: 'ECONNRESET' });
    // Counted: none silently dropped, every one that did not get written rejects with the original.
    expect(resolved + rejected.length).toBe(120);
    expect(rejected.length).toBeGreaterThanOrEqual(20);
    for (const result of rejected) expect(result.reason).toBe(original);
    const recovering = states.filter(
      (s): s is Extract<ConnectionState, { status: 'recovering' }> => s.status === 'recovering',
    );
    expect(recovering.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
    for (const state of recovering) expect(state.error).toBe(original);
    for (const state of recovering.slice(1)) {
      expect(state.lastError).toBeInstanceOf(ConnectFailedError);
      expect(state.lastError).toMatchObject({ syscallCode: 'ECONNREFUSED' });
    }
  });

  it('an oversized message to send ends the connection with FrameTooLargeError instead of a retried reset', async () => {
    const MAX = 1024;
    const server = await TcpTestServer.start((socket) => socket.resume());
    cleanups.push(() => server.close());
    const conn = connectTcp({ port: server.port, maxFrameSize: MAX, ...fast });
    await conn.send(record(1));
    const tooBig = conn.send(new Uint8Array(MAX + 1));
    const closed = await conn.closed;
    expect(closed.reason).toBe('irrecoverable');
    expect(closed.error).toBeInstanceOf(FrameTooLargeError);
    expect(closed.error).toMatchObject({ size: MAX + 1, maxSize: MAX });
    await expect(tooBig).rejects.toBe(closed.error);
    // Refused once, not retried on new connections.
    expect(server.accepted).toBe(1);
  });

  it('an oversized frame from the server fails the connection with FrameTooLargeError: irrecoverable, closed, no crash', async () => {
    const MAX = 1024;
    const server = await TcpTestServer.start((socket) => {
      socket.resume();
      // Only the header of a frame one byte too large: the client must not wait for the body.
      socket.write(encodeFrame(new Uint8Array(MAX + 1)).subarray(0, 5));
    });
    cleanups.push(() => server.close());
    const transport = tcpTransport({ port: server.port, maxFrameSize: MAX });
    let opens = 0;
    const conn = attach(
      {
        open: (signal) => {
          opens++;
          return transport.open(signal);
        },
      },
      { ...fast },
    );
    const pending = conn.send(record(1));
    const closed = await conn.closed;
    expect(closed.reason).toBe('irrecoverable');
    expect(closed.error).toBeInstanceOf(FrameTooLargeError);
    expect(closed.error).toMatchObject({ size: MAX + 1, maxSize: MAX });
    // Written before the header arrived, or rejected with the error: settled either way.
    await pending.catch((error: unknown) => expect(error).toBe(closed.error));
    await expect(conn.send(record(2))).rejects.toBe(closed.error);
    expect(opens).toBe(1);
    // The client closed its socket: the server sees its one connection go away.
    const [socket] = server.sockets;
    if (socket) await once(socket, 'close');
    expect(server.sockets.size).toBe(0);
    expect(server.accepted).toBe(1);
  });

  it('byte-stream mode: bytes resume on the new connection after a destroy', async () => {
    const TOTAL = 3_000;
    const WINDOW = 16;
    const KILLS = 3;
    let bytesIn = 0;
    let kills = 0;
    const server = await TcpTestServer.start((socket) =>
      socket.on('data', (chunk: Buffer) => {
        bytesIn += chunk.length;
        // Killed mid-stream at byte counts, wherever the chunks fall.
        if (kills < KILLS && bytesIn >= ((kills + 1) * TOTAL * 4) / (KILLS + 1)) {
          kills++;
          socket.destroy();
          return;
        }
        socket.write(chunk);
      }),
    );
    cleanups.push(() => server.close());
    const conn = connectTcp({ port: server.port, mode: 'stream', ...fast, maxAttemptsPerFailure: 50 });
    cleanups.push(() => conn.close());
    const result = await streamEchoes(conn, { total: TOTAL, window: WINDOW, reader: recordReader });
    const counts = result.echoes.counts(TOTAL);
    console.info('tcp stream mode destroy', {
      ...counts,
      breaks: result.breaks,
      sentWhileDown: result.sentWhileDown,
      lostAfterWrite: result.lostAfterWrite.length,
    });
    expect(kills).toBe(KILLS);
    expect(server.accepted).toBe(KILLS + 1);
    expect(result.breaks).toBe(KILLS);
    expect(result.rejected).toBe(0);
    expect(counts.reordered).toBe(0);
    expect(result.lostInFlight).toEqual([]);
    expect(counts.lost).toBe(result.lostAfterWrite.length);
    expect(counts.lost).toBeLessThanOrEqual(WINDOW * KILLS);
    expect(counts.duplicated).toBeLessThanOrEqual(WINDOW * KILLS);
    // The last connection carried the tail of the stream, record-aligned and complete.
    for (let n = TOTAL - 100; n < TOTAL; n++) expect(result.echoes.has(n)).toBe(true);
  });
});

describe('connectTcp send: bytes only', () => {
  it('refuses every non-Uint8Array value at the send with InvalidMessageError, queues nothing, and the connection carries on', async () => {
    // Before: a string reached the write batcher, whose flush threw a RangeError on no caller's
    // stack (an uncaught exception that ended the process).
    const frames: number[] = [];
    const server = await TcpTestServer.framedEcho((payload) => frames.push(payload.byteLength));
    cleanups.push(() => server.close());
    const conn = connectTcp({ host: '127.0.0.1', port: server.port });
    cleanups.push(() => conn.close());
    await waitFor(conn.state$, (state) => state.status === 'open');
    const bad: unknown[] = [
      'text',
      42,
      { a: 1 },
      null,
      undefined,
      [1, 2],
      new DataView(new ArrayBuffer(3)),
      new ArrayBuffer(2),
      new Uint16Array(2),
    ];
    const refused: unknown[] = [];
    for (const value of bad) {
      await conn.send(value as Uint8Array).then(
        () => refused.push('accepted'),
        (error: unknown) => refused.push(error),
      );
    }
    expect(refused).toHaveLength(bad.length);
    for (const error of refused) {
      expect(error).toBeInstanceOf(InvalidMessageError);
      expect((error as InvalidMessageError).code).toBe('ERR_INVALID_MESSAGE');
    }
    expect((refused[0] as Error).message).toMatch(/must be bytes.*got a string/);
    expect(conn.pending.messages).toBe(0);
    // The connection is unharmed: a byte message after the refusals is echoed.
    const echoed = waitFor(conn.messages$, (message) => message.byteLength === 5);
    await conn.send(new Uint8Array(5));
    await within(echoed, 10_000, () => 'the echo of the byte message');
    expect(frames).toEqual([5]);
    expect(conn.state$.value.status).toBe('open');
  });
});
