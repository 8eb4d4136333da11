import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type WebSocket, WebSocketServer } from 'ws';

/** An in-process ws server on 127.0.0.1:0 that echoes every message, for tests. */
export class EchoServer {
  readonly connections = new Set<WebSocket>();
  accepted = 0;
  private constructor(
    readonly wss: WebSocketServer,
    readonly port: number,
  ) {
    wss.on('connection', (socket) => {
      this.accepted++;
      this.connections.add(socket);
      socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()));
      socket.on('close', () => this.connections.delete(socket));
      socket.on('error', () => {});
    });
  }

  static async start(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<EchoServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
    await once(wss, 'listening');
    return new EchoServer(wss, (wss.address() as { port: number }).port);
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Kills every connection without a close frame (the client sees 1006). */
  terminateAll(): void {
    for (const socket of this.connections) socket.terminate();
  }

  async close(): Promise<void> {
    this.terminateAll();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const serverScript = fileURLToPath(new URL('./ws-stream-server.mjs', import.meta.url));

/** The stream server in a child process, killable with SIGKILL and restartable on the same port. */
export class ChildStreamServer {
  private child: ChildProcess | undefined;
  port = 0;
  starts = 0;

  constructor(private readonly tickMs = 5) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, [serverScript, String(this.port), String(this.tickMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
    this.child = child;
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`stream server exited with ${code} before listening`);
      }),
    ])) as [string];
    lines.close();
    this.port = (JSON.parse(line) as { port: number }).port;
    this.starts++;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** SIGKILL: no close frames, no FIN handshake from the application. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}
