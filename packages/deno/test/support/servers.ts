import { encodeFrame, FrameDecoder, FrameType } from '@lifeline/core/tcp';

/** An in-process WebSocket echo server on 127.0.0.1:0 (`Deno.serve` + `Deno.upgradeWebSocket`). */
export class WsEchoServer {
  readonly sockets = new Set<WebSocket>();
  accepted = 0;
  /** Runs on each accepted socket once it is open (tests close it with a code there). */
  onOpen: ((socket: WebSocket) => void) | undefined;
  private readonly abort = new AbortController();
  private server!: Deno.HttpServer<Deno.NetAddr>;
  port = 0;

  static async start(): Promise<WsEchoServer> {
    const server = new WsEchoServer();
    const listening = Promise.withResolvers<number>();
    server.server = Deno.serve(
      {
        hostname: '127.0.0.1',
        port: 0,
        signal: server.abort.signal,
        onListen: ({ port }) => listening.resolve(port),
      },
      (request) => server.handle(request),
    );
    server.port = await listening.promise;
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  private handle(request: Request): Response {
    const { socket, response } = Deno.upgradeWebSocket(request);
    this.accepted++;
    socket.onopen = () => {
      this.sockets.add(socket);
      this.onOpen?.(socket);
    };
    socket.onmessage = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
    socket.onclose = () => this.sockets.delete(socket);
    socket.onerror = () => {};
    return response;
  }

  /** Closes every connection with `code` (1012 "service restart" is recoverable). */
  closeAll(code = 1012, reason = 'restart'): void {
    for (const socket of this.sockets) socket.close(code, reason);
  }

  async close(): Promise<void> {
    this.closeAll(1001, 'going away');
    this.abort.abort();
    await this.server.finished;
  }
}

const childScript = new URL('./ws-stream-server.ts', import.meta.url).pathname;

/**
 * The WebSocket stream server (see ws-stream-server.ts) in a child Deno process, killable with
 * SIGKILL and restartable on the same port.
 */
export class ChildWsStreamServer {
  private child: Deno.ChildProcess | undefined;
  port = 0;
  starts = 0;

  constructor(private readonly tickMs = 5) {}

  async start(): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ['run', '--allow-net', childScript, String(this.port), String(this.tickMs)],
      stdout: 'piped',
      stderr: 'inherit',
      stdin: 'null',
      env: { DENO_NO_UPDATE_CHECK: '1' },
    }).spawn();
    this.child = child;
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      while (!text.includes('\n')) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream server exited before listening');
        text += value;
      }
    } finally {
      // Nothing more is read: release the pipe so the test leaks no resource.
      await reader.cancel();
    }
    this.port = (JSON.parse(text.split('\n')[0]!) as { port: number }).port;
    this.starts++;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** SIGKILL: no close frames, nothing from the application. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    try {
      child.kill('SIGKILL');
    } catch {
      // Already exited.
    }
    await child.status;
  }
}

/**
 * An in-process TCP echo server on 127.0.0.1:0 (`Deno.listen`): framed (echoes each data frame,
 * answers pings) or stream (echoes bytes as they come).
 */
export class TcpEchoServer {
  readonly conns = new Set<Deno.Conn>();
  accepted = 0;
  /** Framed mode: answer ping frames. Off, the server stays silent to pings (a half-open peer). */
  answerPings = true;
  /** Echo what arrives. Off, the server reads and drops (a server that hangs). */
  echo = true;
  private readonly listener: Deno.Listener;
  private readonly serving: Promise<void>;
  private readonly handlers = new Set<Promise<void>>();

  private constructor(readonly mode: 'framed' | 'stream') {
    this.listener = Deno.listen({ hostname: '127.0.0.1', port: 0 });
    this.serving = this.acceptLoop();
  }

  static start(mode: 'framed' | 'stream' = 'framed'): TcpEchoServer {
    return new TcpEchoServer(mode);
  }

  get port(): number {
    return (this.listener.addr as Deno.NetAddr).port;
  }

  private async acceptLoop(): Promise<void> {
    for await (const conn of this.listener) {
      this.accepted++;
      this.conns.add(conn);
      const handler = this.serve(conn).finally(() => {
        this.conns.delete(conn);
        this.handlers.delete(handler);
      });
      this.handlers.add(handler);
    }
  }

  private async serve(conn: Deno.Conn): Promise<void> {
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await conn.read(buffer);
        if (read === null) break;
        const chunk = buffer.slice(0, read);
        if (this.mode === 'stream') {
          if (this.echo) await writeAll(conn, chunk);
          continue;
        }
        const out: Uint8Array[] = [];
        decoder.push(chunk, (payload, type) => {
          if (type === FrameType.Data && this.echo) out.push(encodeFrame(payload));
          else if (type === FrameType.Ping && this.answerPings)
            out.push(encodeFrame(payload, FrameType.Pong));
        });
        for (const frame of out) await writeAll(conn, frame);
      }
    } catch {
      // Reset by the client, or closed by closeAll(): either way this connection is over.
    } finally {
      try {
        conn.close();
      } catch {
        // closeAll() got there first.
      }
    }
  }

  /** Closes every accepted connection at once, mid-stream. */
  closeAll(): void {
    for (const conn of this.conns) {
      try {
        conn.close();
      } catch {
        // Closed meanwhile.
      }
    }
  }

  async close(): Promise<void> {
    this.listener.close();
    this.closeAll();
    await this.serving.catch(() => {});
    await Promise.allSettled([...this.handlers]);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) offset += await conn.write(bytes.subarray(offset));
}
