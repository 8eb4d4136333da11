// A small TCP load balancer for the fleet tests, on loopback: each connection goes to the next
// live backend in round-robin order; a backend that refuses a connection is skipped for
// `retryDeadMs` (then tried again), and the connection tries the next one. Counts the connections
// routed to each backend per second (the attempts a replica sees).
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpBalancerOptions {
  /** How long a backend that refused a connection is skipped. @default 1_000 */
  retryDeadMs?: number;
  /** Connections held at once; beyond it a new one is closed at once. @default 50_000 */
  maxConnections?: number;
}

/** Per-second counts kept: the last ten minutes. */
const MAX_BUCKETS = 600;

export class TcpBalancer {
  /**
   * Connections routed to each backend port, per second (key: whole epoch seconds, from the
   * monotonic clock: `performance.timeOrigin + performance.now()`, comparable across processes).
   */
  readonly attempts = new Map<number, Map<number, number>>();
  /** Connections the balancer could not route (every backend refused). */
  unrouted = 0;
  private next = 0;
  private readonly deadUntil = new Map<number, number>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly backends: number[],
    private readonly options: Required<TcpBalancerOptions>,
  ) {}

  static async start(backends: readonly number[], options: TcpBalancerOptions = {}): Promise<TcpBalancer> {
    const server = createServer();
    const balancer = new TcpBalancer(server, [...backends], {
      retryDeadMs: options.retryDeadMs ?? 1_000,
      maxConnections: options.maxConnections ?? 50_000,
    });
    server.on('connection', (socket) => balancer.route(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return balancer;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }

  private route(client: Socket): void {
    if (this.sockets.size >= this.options.maxConnections) {
      client.destroy();
      return;
    }
    this.sockets.add(client);
    client.pause();
    client.on('error', () => {});
    client.once('close', () => this.sockets.delete(client));
    this.tryBackend(client, 0);
  }

  private tryBackend(client: Socket, tried: number): void {
    if (client.destroyed) return;
    const now = performance.now();
    const live = this.backends.filter((port) => (this.deadUntil.get(port) ?? 0) <= now);
    if (tried >= this.backends.length || live.length === 0) {
      this.unrouted++;
      client.destroy();
      return;
    }
    const port = live[this.next++ % live.length]!;
    this.count(port, now);
    const upstream = connect(port, '127.0.0.1');
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on('error', () => {
      if (connected) return;
      // Refused: this backend is down; skip it for a while and try the next for this client.
      this.deadUntil.set(port, performance.now() + this.options.retryDeadMs);
      this.tryBackend(client, tried + 1);
    });
    upstream.once('close', () => {
      if (connected) client.destroy();
    });
    client.once('close', () => upstream.destroy());
  }

  private count(port: number, now: number): void {
    const second = Math.floor((performance.timeOrigin + now) / 1_000);
    let counts = this.attempts.get(second);
    if (!counts) {
      counts = new Map();
      this.attempts.set(second, counts);
      if (this.attempts.size > MAX_BUCKETS) this.attempts.delete(this.attempts.keys().next().value!);
    }
    counts.set(port, (counts.get(port) ?? 0) + 1);
  }
}

/**
 * The highest per-second sum of attempts at `ports` over the seconds from `since` (epoch ms),
 * summed over several balancers' per-second counts (see {@link TcpBalancer.attempts}).
 */
export function peakAttemptsPerSecond(
  counts: readonly ReadonlyMap<number, ReadonlyMap<number, number>>[],
  ports: readonly number[],
  since: number,
): number {
  const sums = new Map<number, number>();
  for (const attempts of counts) {
    for (const [second, perPort] of attempts) {
      if (second < Math.floor(since / 1_000)) continue;
      let sum = 0;
      for (const port of ports) sum += perPort.get(port) ?? 0;
      sums.set(second, (sums.get(second) ?? 0) + sum);
    }
  }
  return Math.max(0, ...sums.values());
}
