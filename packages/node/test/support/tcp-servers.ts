import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { HAConnection } from '@lifeline/core';
import { SequenceCounter, waitFor as waitForValue } from '@lifeline/core/testing';
import { FramedSocket } from '@lifeline/node/tcp';
import { filter, type Observable } from 'rxjs';

/** An in-process TCP server on 127.0.0.1:0 that tracks its sockets, so tests can kill them. */
export class TcpTestServer {
  readonly sockets = new Set<Socket>();
  accepted = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(onSocket: (socket: Socket, server: TcpTestServer) => void): Promise<TcpTestServer> {
    const server = createServer({ noDelay: true });
    server.listen({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const test = new TcpTestServer(server, (server.address() as { port: number }).port);
    server.on('connection', (socket) => {
      test.accepted++;
      test.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => test.sockets.delete(socket));
      onSocket(socket, test);
      for (const wake of test.waiters) wake();
    });
    return test;
  }

  /** A framed echo server built on the package's own server helper ({@link FramedSocket}). */
  static framedEcho(onMessage?: (payload: Uint8Array, peer: FramedSocket) => void): Promise<TcpTestServer> {
    return TcpTestServer.start((socket) => {
      const peer = new FramedSocket(socket);
      peer.on('message', (payload) => {
        onMessage?.(payload, peer);
        if (!socket.destroyed) peer.send(payload);
      });
    });
  }

  /** Resolves once `count` connections were accepted in total. Bounded by `timeoutMs`. */
  async waitForConnections(count: number, timeoutMs = 10_000): Promise<void> {
    if (this.accepted >= count) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`accepted ${this.accepted} of ${count} connections in ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = () => {
        if (this.accepted < count) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
    });
  }

  /** `socket.destroy()` on every accepted socket: a FIN, or a RST when unread data is pending. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** A RST on every accepted socket: the client sees ECONNRESET. */
  resetAll(): void {
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  /** Stops listening (new connects are refused) and resets every socket; resolves when all are closed. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sockets = [...this.sockets].map((socket) => (socket.closed ? undefined : once(socket, 'close')));
    this.resetAll();
    await Promise.all([closed, ...sockets]);
  }
}

const echoScript = fileURLToPath(new URL('./tcp-echo-server.mjs', import.meta.url));

/** The echo server of `tcp-echo-server.mjs` in a child process, killable with SIGKILL and restartable on its port. */
export class ChildTcpServer {
  private child: ChildProcess | undefined;
  port = 0;
  starts = 0;

  constructor(private readonly mode: 'framed' | 'stream' = 'framed') {}

  /** Starts the server; on port 0 the first time, then on the same port again. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, [echoScript, String(this.port), this.mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.child = child;
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`tcp echo server exited with ${code} before listening`);
      }),
    ])) as [string];
    lines.close();
    this.port = (JSON.parse(line) as { port: number }).port;
    this.starts++;
  }

  /** SIGKILL: the kernel closes the server's sockets; the application says nothing. Resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const closed = once(child, 'close');
    child.kill('SIGKILL');
    await closed;
  }
}

/** Encodes sequence number `n` as a 4-byte big-endian record. */
export function record(n: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer.writeUInt32BE(n, 0);
  return buffer;
}

/** Splits a byte stream into 4-byte records, carrying a partial record over to the next chunk. */
export function recordReader(): (chunk: Uint8Array) => number[] {
  let carry = Buffer.alloc(0);
  return (chunk) => {
    const bytes =
      carry.length === 0
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
        : Buffer.concat([carry, chunk]);
    const out: number[] = [];
    let offset = 0;
    for (; offset + 4 <= bytes.length; offset += 4) out.push(bytes.readUInt32BE(offset));
    carry = Buffer.from(bytes.subarray(offset));
    return out;
  };
}

/** What {@link streamEchoes} observed. */
export interface EchoStreamResult {
  readonly echoes: SequenceCounter;
  /** Sends whose promise resolved, and rejected. */
  readonly resolved: number;
  readonly rejected: number;
  /** Links that went down while streaming. */
  readonly breaks: number;
  /** Sends made while no link was open: they waited in the engine's queue. */
  readonly sentWhileDown: number;
  /**
   * Lost messages whose send was still pending when a link broke, or was made after it: the
   * messages plain mode must retransmit. Must be empty.
   */
  readonly lostInFlight: number[];
  /**
   * Lost messages whose send had resolved (written to the kernel) before the link broke: a plain
   * link cannot know whether a dead server read them. Only the resume protocol covers these.
   */
  readonly lostAfterWrite: number[];
}

/**
 * Streams 0..total-1 as 4-byte records through `conn` against an echo server, at most `window`
 * ahead of the highest echo seen (so reads interleave with writes), and counts the echoes.
 * `beforeSend(n)` runs before message n is sent, so tests can inject faults there. A recovered
 * link reopens the window: echoes a dead server never sent cannot be waited for.
 * `reader` makes a fresh decoder for each link (stream mode: records may straddle chunks).
 * Bounded: fails when no echo arrives for `stallMs`.
 */
export async function streamEchoes(
  conn: HAConnection<Uint8Array, Uint8Array>,
  options: {
    total: number;
    window: number;
    beforeSend?: (n: number) => void;
    reader?: () => (chunk: Uint8Array) => number[];
    stallMs?: number;
  },
): Promise<EchoStreamResult> {
  const { total, window } = options;
  const stallMs = options.stallMs ?? 20_000;
  const makeReader = options.reader ?? (() => (chunk: Uint8Array) => [Buffer.from(chunk).readUInt32BE(0)]);
  const echoes = new SequenceCounter();
  // Epoch = links broken so far. A message is "written before a break" when its send resolved in
  // the epoch it was sent in, and a break followed.
  let epoch = 0;
  const sentEpoch: number[] = [];
  const resolvedEpoch: number[] = [];
  let resolved = 0;
  let rejected = 0;
  let sentWhileDown = 0;
  let highest = -1;
  let sentSoFar = 0;
  let read = makeReader();
  let wake: (() => void) | undefined;
  const events = conn.events$.subscribe((event) => {
    if (event.type === 'link-down') epoch++;
    if (event.type === 'link-open') {
      read = makeReader();
      if (event.recovered) {
        highest = Math.max(highest, sentSoFar - 1);
        wake?.();
      }
    }
  });
  const messages = conn.messages$.subscribe((chunk) => {
    for (const n of read(chunk)) {
      echoes.record(n);
      highest = Math.max(highest, n);
    }
    wake?.();
  });
  const progress = (what: () => string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no echo progress for ${stallMs} ms: ${what()}`)),
        stallMs,
      );
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  const sends: Promise<void>[] = [];
  try {
    for (let n = 0; n < total; n++) {
      while (n - highest > window) await progress(() => `at ${n}, highest echo ${highest}`);
      options.beforeSend?.(n);
      sentSoFar = n + 1;
      sentEpoch[n] = epoch;
      if (conn.link === undefined) sentWhileDown++;
      sends.push(
        conn.send(record(n)).then(
          () => {
            resolved++;
            resolvedEpoch[n] = epoch;
          },
          () => {
            rejected++;
          },
        ),
      );
    }
    while (!echoes.has(total - 1)) await progress(() => `last echo missing, highest ${highest}`);
    await Promise.all(sends);
  } finally {
    messages.unsubscribe();
    events.unsubscribe();
  }
  const lostInFlight: number[] = [];
  const lostAfterWrite: number[] = [];
  for (let n = 0; n < total; n++) {
    if (echoes.has(n)) continue;
    const writtenBeforeBreak = resolvedEpoch[n] === sentEpoch[n] && sentEpoch[n]! < epoch;
    (writtenBeforeBreak ? lostAfterWrite : lostInFlight).push(n);
  }
  return { echoes, resolved, rejected, breaks: epoch, sentWhileDown, lostInFlight, lostAfterWrite };
}

/** Resolves with the first value of `source$` that matches, or fails after `timeoutMs`. */
export function waitFor<T>(
  source$: Observable<T>,
  predicate: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  return waitForValue(source$.pipe(filter(predicate)), { timeoutMs, what: 'a matching value' });
}

/** Resolves as `promise` does, or fails after `ms` with `what()` in the message. */
export function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  return waitForValue(promise, { timeoutMs: ms, what: 'the promise', state: what });
}

/**
 * Counts of the handle kinds a TCP client can leak: sockets, listeners and pending connects
 * (Node 20 names them TCPSocketWrap, TCPServerWrap and ConnectWrap; async_hooks says TCPWRAP), and timers.
 */
export function liveResources(): { tcp: number; timers: number } {
  const info = process.getActiveResourcesInfo();
  return {
    tcp: info.filter((kind) => kind.startsWith('TCP') || kind === 'ConnectWrap').length,
    timers: info.filter((kind) => kind === 'Timeout').length,
  };
}
