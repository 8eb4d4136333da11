// A private redis-server for the tests: a child process on a free loopback port, never a shared
// or system Redis. It can be restarted on the same port (with its data, when `appendonly`),
// frozen (SIGSTOP: unreachable for a moment) and killed.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const REDIS_SERVER_BIN = process.env.LIFELINE_REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisServerOptions {
  /** Persist every write to an append-only file (fsync always), so a restart keeps the data. @default false */
  appendonly?: boolean;
  /** How long to wait for readiness. @default 10_000 */
  startTimeoutMs?: number;
  /** More redis-server arguments (`--cluster-enabled yes`, `--replicaof ...`). @default [] */
  args?: readonly string[];
}

/** A free loopback port: bind port 0, read it, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  /** Starts a redis-server on a free port in a temporary directory, resolved once it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-redis-'));
    const server = new RedisServer(await freePort(), dir, options);
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The redis-server process id while it runs (for CPU figures read from /proc). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops Redis (SIGKILL: no final save beyond what appendonly already wrote). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** Kills Redis and starts it again on the same port and directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Freezes the process: connections stay open, nothing answers (unreachable for a moment). */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills Redis and removes its directory. */
  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Sends one inline command and resolves with the raw reply line (for tests: DBSIZE, PING...). */
  async command(...words: string[]): Promise<string> {
    const socket = connect(this.port, '127.0.0.1');
    socket.setEncoding('utf8');
    try {
      await once(socket, 'connect');
      socket.write(`${words.join(' ')}\r\n`);
      const [reply] = (await once(socket, 'data')) as [string];
      return reply.trim();
    } finally {
      socket.destroy();
    }
  }

  private async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir];
    args.push('--appendonly', this.options.appendonly ? 'yes' : 'no');
    if (this.options.appendonly) args.push('--appendfsync', 'always');
    args.push(...(this.options.args ?? []));
    const child = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const output: string[] = [];
    const lines = createInterface({ input: child.stdout! });
    child.stderr!.on('data', (chunk) => output.push(String(chunk)));
    const timeoutMs = this.options.startTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`redis-server not ready within ${timeoutMs} ms`)),
          timeoutMs,
        );
        child.once('error', reject);
        child.once('exit', (code) =>
          reject(new Error(`redis-server exited with ${code}: ${output.join('')}`)),
        );
        lines.on('line', (line) => {
          output.push(line);
          if (line.includes('Ready to accept connections')) resolve();
        });
      });
    } finally {
      clearTimeout(timer);
      lines.close();
      child.stdout!.resume();
    }
    const pong = await this.command('PING');
    if (pong !== '+PONG') throw new Error(`redis-server answered PING with ${pong}`);
  }
}
