import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type WebSocket, WebSocketServer } from 'ws';
import { cleanups } from './cleanups.js';
import { firstLine } from './durable-harness.js';

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

/** A ws server on 127.0.0.1:0 that counts the messages it receives, and greets each connection if asked. */
export async function countingWsServer(greeting?: string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const received: string[] = [];
  const sockets = new Set<WebSocket>();
  let closed = 0;
  wss.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('message', (data) => received.push(data.toString()));
    socket.on('close', () => {
      sockets.delete(socket);
      closed++;
    });
    socket.on('error', () => {});
    if (greeting !== undefined) socket.send(greeting);
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.terminate();
        wss.close(() => resolve());
      }),
  );
  const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
  return {
    url,
    received,
    /** Connections whose close the server saw: every message sent before the close frame is in. */
    closed: () => closed,
    terminateAll: () => {
      for (const socket of sockets) socket.terminate();
    },
  };
}

const serverScript = fileURLToPath(new URL('./ws-stream-server.mjs', import.meta.url));

/** A record the stream server wrote to its log (see ws-stream-server.mjs): `p` pid, `t` epoch ms. */
export interface StreamServerLine {
  p: number;
  t: number;
  d: string;
}

/** Every record the stream server processes wrote to `log`, in order. */
export function readStreamServerLog(log: string): StreamServerLine[] {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as StreamServerLine);
}

/**
 * The stream server in a child process, killable with SIGKILL and restartable on the same port.
 * With `log`, each process appends every message it receives to that file (readStreamServerLog).
 */
export class ChildStreamServer {
  private child: ChildProcess | undefined;
  private readonly standbys: { child: ChildProcess; ready: Promise<void> }[] = [];
  port = 0;
  starts = 0;

  constructor(
    private readonly tickMs = 5,
    private readonly log?: string,
  ) {}

  /** The running process's id, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Loads the next `count` processes ahead and keeps them waiting, so each following
   * {@link start} only has one listen (milliseconds instead of a process start): a test then
   * controls how long the server stays down. Resolves once they are loaded (rejects if one exits
   * first or takes over `timeoutMs`). {@link kill} does not touch them; {@link dispose} does.
   */
  prepare(count = 1, timeoutMs = 60_000): Promise<void> {
    while (this.standbys.length < count) {
      const child = this.spawn(true);
      const ready = firstLine(child, timeoutMs).then(() => {});
      // Observed by start(); one disposed of before it was ready must not be an unhandled rejection.
      ready.catch(() => {});
      this.standbys.push({ child, ready });
    }
    return Promise.all(this.standbys.map((standby) => standby.ready)).then(() => {});
  }

  private spawn(standby: boolean): ChildProcess {
    const args = [serverScript, String(this.port), String(this.tickMs), this.log ?? ''];
    if (standby) args.push('standby');
    return spawn(process.execPath, args, {
      stdio: [standby ? 'pipe' : 'ignore', 'pipe', 'inherit'],
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
  }

  async start(): Promise<void> {
    const standby = this.standbys.shift();
    let child: ChildProcess;
    if (standby) {
      this.child = standby.child;
      await standby.ready;
      child = standby.child;
      child.stdin!.end('go\n');
    } else child = this.spawn(false);
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

  /** Kills the running process and the prepared ones. */
  async dispose(): Promise<void> {
    await this.kill();
    for (const { child } of this.standbys.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
}
