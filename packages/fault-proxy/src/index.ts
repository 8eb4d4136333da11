import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, isIP, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';

/** Where a {@link FaultProxy} listens and where it forwards to. */
export interface FaultProxyOptions {
  /** Where to forward: the real server. */
  target: {
    /** Host of the real server. @default '127.0.0.1' */
    host?: string;
    /** Port of the real server. */
    port: number;
  };
  /** Address to listen on; must be a loopback address. @default '127.0.0.1' */
  host?: string;
  /** Port to listen on. @default 0 (an ephemeral port) */
  port?: number;
}

/** The fault currently injected, as reported by {@link FaultProxy.mode}. */
export type FaultMode = 'pass' | 'blackhole' | 'refuse';

/** A direction of traffic: `upstream` is client to server, `downstream` is server to client. */
export type FaultDirection = 'upstream' | 'downstream';

/** Why the proxy reset a connection. */
export type FaultResetReason = 'reset-all' | 'cut' | 'refused' | 'upstream-unreachable';

/** One client connection accepted by the proxy. */
export interface FaultConnectionInfo {
  /** Sequence number of the connection, from 1, unique per proxy. */
  readonly id: number;
  /** The client's port: equals `localPort` of the client's socket, to tell connections apart in tests. */
  readonly remotePort: number | undefined;
}

/** A connection the proxy reset on purpose. */
export interface FaultResetInfo {
  /** Sequence number of the connection, as in {@link FaultConnectionInfo.id}. */
  readonly id: number;
  /** Why it was reset. */
  readonly reason: FaultResetReason;
}

/** A chunk of bytes the proxy dropped (blackhole) or held back (delay). */
export interface FaultChunkInfo {
  /** Sequence number of the connection, as in {@link FaultConnectionInfo.id}. */
  readonly id: number;
  /** Which way the bytes were going. */
  readonly direction: FaultDirection;
  /** Size of the chunk in bytes. */
  readonly bytes: number;
}

/** The events a {@link FaultProxy} emits, with their arguments. */
export interface FaultProxyEvents {
  /** A client connection was accepted (refused ones only emit `reset`). */
  connection: [info: FaultConnectionInfo];
  /** The proxy reset a connection (or refused one). */
  reset: [info: FaultResetInfo];
  /** A chunk was dropped while blackholing. */
  discard: [info: FaultChunkInfo];
  /** A chunk is held back by {@link FaultProxy.setDelay}; it is forwarded (or dropped) later. */
  delay: [info: FaultChunkInfo];
  /** Both sockets of a connection are closed. */
  disconnect: [info: FaultConnectionInfo];
  /** A close (FIN or reset) from the side `direction` leaves was held back by `blackhole({ closes: 'hold' })`. */
  hold: [info: { readonly id: number; readonly direction: FaultDirection }];
}

/** The proxy state a connection reads and reports to; keeps the proxy's fields private. */
interface ConnectionHost {
  readonly blackholed: boolean;
  /** Blackholed as a partition: closes (FIN, reset) are held back too, until `pass()`. */
  readonly holdsCloses: boolean;
  readonly delayMs: number;
  forwarded(direction: FaultDirection, bytes: number): void;
  discarded(id: number, direction: FaultDirection, bytes: number): void;
  delayed(id: number, direction: FaultDirection, bytes: number): void;
  held(id: number, direction: FaultDirection): void;
  reset(id: number, reason: FaultResetReason): void;
  closed(connection: ProxiedConnection): void;
}

interface CutRule {
  readonly bytes: number;
  readonly direction: FaultDirection | 'both';
}

// `Symbol.asyncDispose` only exists from Node 20.4 (and TS's ES2022 lib lacks it); the fallback is the key
// TypeScript's and esbuild's `await using` helpers look up when the well-known symbol is missing.
const asyncDispose: typeof Symbol.asyncDispose = (Symbol.asyncDispose ??
  Symbol.for('Symbol.asyncDispose')) as typeof Symbol.asyncDispose;

/**
 * A TCP proxy for tests that forwards to a real server and injects network faults on demand.
 *
 * Resets, blackholes, refused connections, latency and mid-stream cuts are what highly available clients
 * must survive; producing them with a real socket in between exercises the same code paths as production.
 *
 * @example
 * const proxy = await FaultProxy.start({ target: { port: server.port } });
 * try {
 *   connect(proxy.url);
 *   await proxy.waitForConnections(1);
 *   proxy.resetAll();
 * } finally {
 *   await proxy.close();
 * }
 */
export class FaultProxy extends EventEmitter<FaultProxyEvents> {
  readonly #server: Server;
  readonly #target: { readonly host: string; readonly port: number };
  readonly #connections = new Set<ProxiedConnection>();
  // Refused sockets own a handle until their reset completes, and close() promises that none is left.
  readonly #closingSockets = new Set<Promise<void>>();
  readonly #onClose = new Set<() => void>();
  readonly #host: ConnectionHost;
  #blackholed = false;
  #holdCloses = false;
  #refusing = false;
  #delayMs = 0;
  #cutRule: CutRule | undefined;
  #nextId = 1;
  #accepted = 0;
  #refused = 0;
  #resets = 0;
  #bytesUpstream = 0;
  #bytesDownstream = 0;
  #bytesDiscarded = 0;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, target: { host: string; port: number }) {
    super();
    this.#server = server;
    this.#target = target;
    const proxy = this;
    this.#host = {
      get blackholed() {
        return proxy.#blackholed;
      },
      get holdsCloses() {
        return proxy.#blackholed && proxy.#holdCloses;
      },
      get delayMs() {
        return proxy.#delayMs;
      },
      forwarded(direction, bytes) {
        if (direction === 'upstream') proxy.#bytesUpstream += bytes;
        else proxy.#bytesDownstream += bytes;
      },
      discarded(id, direction, bytes) {
        proxy.#bytesDiscarded += bytes;
        proxy.emit('discard', { id, direction, bytes });
      },
      delayed(id, direction, bytes) {
        proxy.emit('delay', { id, direction, bytes });
      },
      held(id, direction) {
        proxy.emit('hold', { id, direction });
      },
      reset(id, reason) {
        proxy.#resets++;
        proxy.emit('reset', { id, reason });
      },
      closed(connection) {
        proxy.#connections.delete(connection);
        proxy.emit('disconnect', connection.info);
      },
    };
    server.on('connection', (socket) => this.#accept(socket));
    // Accept errors (EMFILE...) must not crash the test process; the client sees its connect fail anyway.
    server.on('error', () => {});
  }

  /** Starts a proxy listening on loopback and resolves once it accepts connections. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const host = options.host ?? '127.0.0.1';
    if (!isLoopback(host)) {
      throw new TypeError(`FaultProxy only listens on loopback, got host ${JSON.stringify(host)}`);
    }
    const port = options.port ?? 0;
    assertPort(port, 'port', true);
    assertPort(options.target.port, 'target.port', false);
    const target = { host: options.target.host ?? '127.0.0.1', port: options.target.port };
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    const proxy = new FaultProxy(server, target);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The address the proxy listens on. */
  address(): { host: string; port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('FaultProxy is not listening');
    return { host: address.address, port: address.port };
  }

  /** The port the proxy listens on. */
  get port(): number {
    return this.address().port;
  }

  /** The address the proxy listens on, e.g. `127.0.0.1`. */
  get host(): string {
    return this.address().host;
  }

  /** `tcp://host:port` of the proxy; swap the scheme for other protocols (`ws://...`). */
  get url(): string {
    const { host, port } = this.address();
    return `tcp://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  }

  /** The fault being injected; `refuse` wins when blackholing and refusing at once. */
  get mode(): FaultMode {
    if (this.#refusing) return 'refuse';
    return this.#blackholed ? 'blackhole' : 'pass';
  }

  /** Number of client connections currently open (until both of their sockets closed). */
  get activeConnections(): number {
    return this.#connections.size;
  }

  /** Number of client connections accepted in total; refused ones are not counted. */
  get acceptedConnections(): number {
    return this.#accepted;
  }

  /** Number of client connections refused by {@link refuseNewConnections} in total. */
  get refusedConnections(): number {
    return this.#refused;
  }

  /** Number of connections the proxy reset in total, for any {@link FaultResetReason}. */
  get resetCount(): number {
    return this.#resets;
  }

  /** Bytes forwarded from clients to the server in total. */
  get bytesUpstream(): number {
    return this.#bytesUpstream;
  }

  /** Bytes forwarded from the server to clients in total. */
  get bytesDownstream(): number {
    return this.#bytesDownstream;
  }

  /** Bytes dropped while blackholing, both directions, in total. */
  get bytesDiscarded(): number {
    return this.#bytesDiscarded;
  }

  /** Resets (RST) both sides of every current connection; each one emits `reset`. */
  resetAll(): void {
    for (const connection of this.#connections) connection.reset('reset-all');
  }

  /**
   * Forwards nothing either way from now on, keeping every socket open: a half-open link.
   * By default closes (FIN or reset) still cross, so a client giving up does not leave its server
   * socket behind. `{ closes: 'hold' }` models a network partition instead: a side that closes is
   * not seen closing by the other until `pass()`, which then delivers the close (as TCP
   * retransmits a FIN once the path is back).
   */
  blackhole(options: { closes?: 'forward' | 'hold' } = {}): void {
    this.#blackholed = true;
    this.#holdCloses = options.closes === 'hold';
  }

  /** Forwards new data normally again; data dropped while blackholing stays lost; closes held back are delivered. */
  pass(): void {
    this.#blackholed = false;
    this.#holdCloses = false;
    for (const connection of this.#connections) connection.releaseHeldCloses();
  }

  /** While on, resets every new client connection at once; existing ones are untouched. */
  refuseNewConnections(on = true): void {
    this.#refusing = on;
  }

  /** Delays every chunk forwarded in either direction by `ms`, keeping their order. */
  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay must be a finite number >= 0, got ${ms}`);
    this.#delayMs = ms;
  }

  /**
   * Resets each connection once it forwarded `bytes` bytes in `direction`, counted from now, for current
   * and new connections. With `both`, each direction has its own budget of `bytes`.
   * `Infinity` disables the rule.
   */
  cutAfterBytes(bytes: number, direction: FaultDirection | 'both' = 'downstream'): void {
    if (Number.isNaN(bytes) || bytes < 0 || (Number.isFinite(bytes) && !Number.isInteger(bytes))) {
      throw new RangeError(`bytes must be an integer >= 0 or Infinity, got ${bytes}`);
    }
    this.#cutRule = bytes === Number.POSITIVE_INFINITY ? undefined : { bytes, direction };
    for (const connection of this.#connections) connection.setCutRule(this.#cutRule);
  }

  /** Resolves once {@link acceptedConnections} reaches `count`; rejects after `timeoutMs` or on close. */
  waitForConnections(count: number, timeoutMs = 10_000): Promise<void> {
    if (this.#accepted >= count) return Promise.resolve();
    if (this.#closing) return Promise.reject(new Error('FaultProxy is closed'));
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.off('connection', onConnection);
        this.#onClose.delete(onClose);
      };
      const onConnection = () => {
        if (this.#accepted < count) return;
        cleanup();
        resolve();
      };
      const onClose = () => {
        cleanup();
        reject(new Error(`FaultProxy closed while waiting for ${count} connections`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`FaultProxy accepted ${this.#accepted} of ${count} connections in ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('connection', onConnection);
      this.#onClose.add(onClose);
    });
  }

  /** Stops listening, destroys every socket and clears every timer; resolves when all are gone. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@link close}, for `await using proxy = await FaultProxy.start(...)`. */
  [asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    for (const onClose of [...this.#onClose]) onClose();
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const socketsClosed = [...this.#connections].map((connection) => connection.destroy());
    await Promise.all([serverClosed, ...socketsClosed, ...this.#closingSockets]);
  }

  /** Lets close() wait for a socket that belongs to no connection. */
  #untilClosed(socket: Socket): void {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.#closingSockets.add(closed);
    void closed.then(() => this.#closingSockets.delete(closed));
  }

  #accept(client: Socket): void {
    // Errors are expected here (ECONNRESET...); without a listener they would be uncaught exceptions.
    client.on('error', () => {});
    const id = this.#nextId++;
    if (this.#closing) {
      this.#untilClosed(client);
      client.destroy();
      return;
    }
    if (this.#refusing) {
      this.#refused++;
      this.#untilClosed(client);
      client.resetAndDestroy();
      this.#host.reset(id, 'refused');
      return;
    }
    this.#accepted++;
    const connection = new ProxiedConnection(id, client, this.#target, this.#host, this.#cutRule);
    this.#connections.add(connection);
    this.emit('connection', connection.info);
  }
}

/** One client socket and its upstream socket. */
class ProxiedConnection {
  readonly info: FaultConnectionInfo;
  readonly #client: Socket;
  readonly #upstream: Socket;
  readonly #host: ConnectionHost;
  readonly #toUpstream: Pipe;
  readonly #toClient: Pipe;
  readonly #closed: Promise<void>;
  #connected = false;
  #terminated = false;
  #cutting = false;
  #cutTimer: NodeJS.Timeout | undefined;
  #clientClosed = false;
  #upstreamClosed = false;
  /** An abrupt close that crossed no partition yet: mirrored on `pass()`. */
  #heldReset: (() => void) | undefined;

  constructor(
    id: number,
    client: Socket,
    target: { host: string; port: number },
    host: ConnectionHost,
    cutRule: CutRule | undefined,
  ) {
    this.info = { id, remotePort: client.remotePort };
    this.#client = client;
    this.#host = host;
    client.setNoDelay(true);
    const upstream = createConnection({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    this.#upstream = upstream;
    upstream.on('error', () => {});
    this.#toUpstream = new Pipe(this, 'upstream', client, upstream, host);
    this.#toClient = new Pipe(this, 'downstream', upstream, client, host);
    this.setCutRule(cutRule);
    let resolveClosed: () => void;
    this.#closed = new Promise<void>((resolve) => {
      resolveClosed = resolve;
    });
    const onClosed = () => {
      if (!this.#clientClosed || !this.#upstreamClosed) return;
      this.#toUpstream.dispose();
      this.#toClient.dispose();
      host.closed(this);
      resolveClosed();
    };
    client.once('close', (hadError) => {
      this.#clientClosed = true;
      this.#peerClosed(this.#toUpstream, upstream, hadError);
      onClosed();
    });
    upstream.once('close', (hadError) => {
      this.#upstreamClosed = true;
      if (!this.#connected && !this.#terminated) {
        // Reset rather than close so the client fails fast, as with a direct connection to a dead server.
        this.reset('upstream-unreachable');
      } else {
        this.#peerClosed(this.#toClient, client, hadError);
      }
      onClosed();
    });
    upstream.once('connect', () => {
      this.#connected = true;
      // The client was accepted paused so nothing it sends can be lost before the upstream exists.
      if (!this.#terminated) client.resume();
    });
  }

  /** Whether forwarding has stopped for good (reset, being cut, or destroyed). */
  get stopped(): boolean {
    return this.#terminated || this.#cutting;
  }

  setCutRule(rule: CutRule | undefined): void {
    const applies = (direction: FaultDirection) =>
      rule !== undefined && (rule.direction === 'both' || rule.direction === direction);
    this.#toUpstream.budget = rule && applies('upstream') ? rule.bytes : Number.POSITIVE_INFINITY;
    this.#toClient.budget = rule && applies('downstream') ? rule.bytes : Number.POSITIVE_INFINITY;
  }

  /** Resets both sockets and reports it; no-op once the connection is already going away. */
  reset(reason: FaultResetReason): void {
    if (this.#terminated) return;
    this.#terminate();
    hardReset(this.#client);
    hardReset(this.#upstream);
    this.#host.reset(this.info.id, reason);
  }

  /** Called by a pipe that reached its byte budget; `write` sends the last allowed bytes, then calls back. */
  cut(dest: Socket, write: ((done: () => void) => void) | undefined): void {
    if (this.stopped) return;
    this.#cutting = true;
    this.#client.pause();
    this.#upstream.pause();
    // A reset discards whatever is still queued in the socket, so the last bytes must be handed to the
    // kernel first or the peer would receive fewer than the budget.
    if (write) write(() => this.#resetOnceDelivered(dest));
    else this.#resetOnceDelivered(dest);
  }

  destroy(): Promise<void> {
    this.#terminate();
    this.#client.destroy();
    this.#upstream.destroy();
    return this.#closed;
  }

  #terminate(): void {
    this.#terminated = true;
    this.#toUpstream.dispose();
    this.#toClient.dispose();
    if (this.#cutTimer !== undefined) clearTimeout(this.#cutTimer);
    this.#cutTimer = undefined;
  }

  /**
   * Resets once the peer has read everything sent to it. Handing bytes to the kernel is not enough: a
   * reset drops unsent bytes, and when the reset arrives together with unread data libuv reports a clean
   * end instead of ECONNRESET. Gives up waiting after {@link CUT_DELIVERY_TIMEOUT_MS}.
   */
  #resetOnceDelivered(dest: Socket): void {
    const deadline = performance.now() + CUT_DELIVERY_TIMEOUT_MS;
    const poll = () => {
      this.#cutTimer = undefined;
      if (this.#terminated) return;
      if (!dest.destroyed && performance.now() < deadline && !isDelivered(dest)) {
        this.#cutTimer = setTimeout(poll, 1);
        return;
      }
      this.reset('cut');
    };
    poll();
  }

  /** Delivers the closes a partition held back (see {@link FaultProxy.blackhole}). */
  releaseHeldCloses(): void {
    this.#toUpstream.releaseHeldEnd();
    this.#toClient.releaseHeldEnd();
    const held = this.#heldReset;
    this.#heldReset = undefined;
    held?.();
  }

  /** Mirrors an abrupt close of one side onto the other, as a direct connection would see it. */
  #peerClosed(pipeFromClosedSide: Pipe, other: Socket, hadError: boolean): void {
    if (this.#terminated) return;
    // A clean close after FIN is forwarded through the pipe (after any delayed data); only abrupt ones reset.
    if (!hadError && pipeFromClosedSide.sourceEnded) return;
    if (this.#host.holdsCloses) {
      this.#heldReset = () => this.#peerClosed(pipeFromClosedSide, other, hadError);
      this.#host.held(this.info.id, pipeFromClosedSide.direction);
      return;
    }
    this.#terminate();
    hardReset(other);
  }
}

interface QueuedChunk {
  /** `null` stands for the source's FIN, queued so it stays behind delayed data. */
  readonly chunk: Buffer | null;
  readonly due: number;
}

/** One direction of a connection: applies blackhole, delay and cut rules to the chunks it forwards. */
class Pipe {
  /** Bytes this direction may still forward before the connection is cut. */
  budget = Number.POSITIVE_INFINITY;
  sourceEnded = false;
  readonly #connection: ProxiedConnection;
  readonly #direction: FaultDirection;

  get direction(): FaultDirection {
    return this.#direction;
  }
  readonly #source: Socket;
  readonly #dest: Socket;
  readonly #host: ConnectionHost;
  #queue: QueuedChunk[] = [];
  #lastDue = 0;
  #timer: NodeJS.Timeout | undefined;
  #waitingForDrain = false;
  #heldEnd = false;

  constructor(
    connection: ProxiedConnection,
    direction: FaultDirection,
    source: Socket,
    dest: Socket,
    host: ConnectionHost,
  ) {
    this.#connection = connection;
    this.#direction = direction;
    this.#source = source;
    this.#dest = dest;
    this.#host = host;
    source.on('data', (chunk: Buffer) => {
      if (this.#connection.stopped) return;
      if (this.#host.blackholed) {
        this.#host.discarded(this.#connection.info.id, this.#direction, chunk.length);
        return;
      }
      this.#enqueue(chunk);
    });
    source.on('end', () => {
      this.sourceEnded = true;
      if (this.#host.holdsCloses) {
        this.#heldEnd = true;
        this.#host.held(this.#connection.info.id, this.#direction);
      } else this.#enqueue(null);
    });
  }

  /** Forwards the FIN a partition held back. */
  releaseHeldEnd(): void {
    if (!this.#heldEnd) return;
    this.#heldEnd = false;
    this.#enqueue(null);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
  }

  #enqueue(chunk: Buffer | null): void {
    if (this.#connection.stopped) return;
    const delay = this.#host.delayMs;
    if (delay <= 0 && this.#queue.length === 0) {
      this.#deliver(chunk);
      return;
    }
    // Never due before the previous chunk, so lowering the delay cannot reorder the stream.
    const due = Math.max(performance.now() + delay, this.#lastDue);
    this.#lastDue = due;
    this.#queue.push({ chunk, due });
    this.#schedule();
    if (chunk !== null) this.#host.delayed(this.#connection.info.id, this.#direction, chunk.length);
  }

  #schedule(): void {
    const head = this.#queue[0];
    if (this.#timer !== undefined || head === undefined) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#flush();
      },
      Math.max(0, head.due - performance.now()),
    );
  }

  #flush(): void {
    // Timers may fire up to a millisecond early compared to performance.now(); waiting again would only spin.
    const now = performance.now() + 1;
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now) {
      const { chunk } = this.#queue.shift()!;
      this.#deliver(chunk);
      if (this.#connection.stopped) return;
    }
    this.#schedule();
  }

  #deliver(chunk: Buffer | null): void {
    if (this.#connection.stopped) return;
    const dest = this.#dest;
    if (chunk === null) {
      if (!dest.destroyed && !dest.writableEnded) dest.end();
      return;
    }
    // Data still in flight when the blackhole started is lost too, as on a real link.
    if (this.#host.blackholed) {
      this.#host.discarded(this.#connection.info.id, this.#direction, chunk.length);
      return;
    }
    if (dest.destroyed || dest.writableEnded) return;
    if (chunk.length < this.budget) {
      this.budget -= chunk.length;
      this.#write(chunk);
      return;
    }
    const last = chunk.subarray(0, this.budget);
    this.budget = 0;
    if (last.length === 0) {
      this.#connection.cut(dest, undefined);
      return;
    }
    this.#connection.cut(dest, (done) => this.#write(last, done));
  }

  #write(chunk: Buffer, done?: () => void): void {
    this.#host.forwarded(this.#direction, chunk.length);
    const flushed = this.#dest.write(chunk, done);
    if (flushed || this.#waitingForDrain) return;
    // Backpressure: stop reading until the slow side catches up instead of buffering without bound.
    this.#waitingForDrain = true;
    this.#source.pause();
    this.#dest.once('drain', () => {
      this.#waitingForDrain = false;
      if (!this.#connection.stopped) this.#source.resume();
    });
  }
}

/** How long a cut waits for the peer to read the last bytes before resetting anyway. */
const CUT_DELIVERY_TIMEOUT_MS = 2_000;

/**
 * Whether everything written to `socket` was acknowledged and, when the peer socket is on this host, read
 * by its owner. Only Linux exposes socket queues (in procfs); elsewhere this says yes at once.
 */
function isDelivered(socket: Socket): boolean {
  const { localPort, remotePort } = socket;
  if (localPort === undefined || remotePort === undefined) return true;
  let table = '';
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      table += readFileSync(file, 'latin1');
    } catch {
      // No procfs (not Linux) or no IPv6: what the other file says, if anything, is all we can know.
    }
  }
  // Lines read `sl local_address rem_address st tx_queue:rx_queue ...`, addresses as HEXIP:HEXPORT.
  const port = (address: string | undefined) =>
    Number.parseInt(address?.slice(address.lastIndexOf(':') + 1) ?? '', 16);
  const queue = (queues: string | undefined, index: 0 | 1) =>
    Number.parseInt(queues?.split(':')[index] ?? '', 16);
  for (const line of table.split('\n')) {
    const [, local, remote, , queues] = line.trim().split(/\s+/);
    const from = port(local);
    const to = port(remote);
    if (from === localPort && to === remotePort && queue(queues, 0) > 0) return false;
    if (from === remotePort && to === localPort && queue(queues, 1) > 0) return false;
  }
  return true;
}

/** Sends a RST where possible; a socket still connecting has nothing to reset and is just destroyed. */
function hardReset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const v4 = host.startsWith('::ffff:') ? host.slice('::ffff:'.length) : host;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function assertPort(port: number, name: string, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65_535) {
    throw new RangeError(`${name} must be an integer port number, got ${port}`);
  }
}
