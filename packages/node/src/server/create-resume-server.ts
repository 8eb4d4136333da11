import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  Server as NetServerClass,
  type Socket,
} from 'node:net';
import { after, unrefTimer } from '@lifeline/core/internal/server';
import {
  ResumeServer,
  type ResumeServerCloseOptions,
  type ResumeServerOptions,
} from '@lifeline/core/resume/server';
import type { Subscription } from 'rxjs';
import type { WebSocketServer } from 'ws';
import { requirePeer } from '../require-peer.js';
import { attachNetServer } from './net-adapter.js';
import { attachWebSocketServer } from './ws-adapter.js';

const loadWs = () =>
  requirePeer<typeof import('ws')>('ws', 'the WebSocket transport of @lifeline/node/server');

/** Where {@link NodeResumeServer.listen} listens. */
export interface ResumeListenOptions {
  /** @default 0 (an ephemeral port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** `'ws'`: a WebSocket server; `'tcp'`: framed TCP. @default 'ws' */
  transport?: 'ws' | 'tcp';
}

/** The address a listening server took. */
export interface ResumeServerAddress {
  readonly port: number;
  readonly host: string;
  /** `ws://host:port` or `tcp://host:port`. */
  readonly url: string;
}

/** A {@link ResumeServer} with the Node adapters: attach to an existing `ws` or `net` server, or listen. */
export class NodeResumeServer extends ResumeServer {
  private readonly detachers: (() => void)[] = [];
  private readonly owned: (() => Promise<void>)[] = [];
  /** Stop listening (new connections go elsewhere) without closing the connections already open. */
  private readonly listening: (() => void)[] = [];

  /**
   * Serves the connections of an existing `ws` WebSocketServer or `net.Server`. A `wss` whose
   * `maxPayload` is above `maxFrameBytes` has it lowered (see {@link attachWebSocketServer}).
   *
   * The resume handshake timeout starts once the WebSocket is open: the HTTP upgrade before it is
   * bounded by your HTTP server, whose header timeout is 60 s in Node. Bound it yourself, e.g.
   * `http.createServer({ headersTimeout: 2_000, requestTimeout: 2_000, connectionsCheckingInterval: 500 })`
   * (Node checks those timeouts every `connectionsCheckingInterval`), or destroy sockets that have
   * not upgraded after your handshake timeout, as {@link listen} does.
   */
  attach(server: WebSocketServer | NetServer): void {
    this.detachers.push(
      // `ws` is loaded only for its transport: a TCP-only server needs no `ws` installed.
      server instanceof NetServerClass
        ? attachNetServer(this, server)
        : attachWebSocketServer(this, server as WebSocketServer),
    );
  }

  /**
   * Creates a server of its own and listens; {@link close} closes it. Rejects with the store's
   * error (a `SessionStoreError`) when the store cannot open, and stops listening: a server that
   * would refuse every client with 1011 does not start. (The store opens while the socket binds,
   * so a restart is not slowed by the two in a row; a client that connects meanwhile waits for
   * the store.)
   */
  async listen(options: ResumeListenOptions = {}): Promise<ResumeServerAddress> {
    const ready = this.ready();
    // Observed below, once listening; until then its rejection must not count as unhandled.
    ready.catch(() => {});
    const closers: (() => Promise<void>)[] = [];
    const host = options.host ?? '127.0.0.1';
    const transport = options.transport ?? 'ws';
    let server: HttpServer | NetServer;
    if (transport === 'tcp') {
      server = createNetServer();
      this.attach(server);
    } else {
      const http = createHttpServer();
      // ws refuses a larger message itself (close 1009) before buffering it.
      const wss = new (loadWs().WebSocketServer)({ server: http, maxPayload: this.maxFrameBytes });
      this.boundUpgrades(http, wss);
      this.attach(wss);
      closers.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
      server = http;
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= new Promise<void>((resolve) => server.close(() => resolve()));
    };
    this.listening.push(stop);
    closers.push(() => {
      stop();
      (server as HttpServer).closeAllConnections?.();
      return stopped!;
    });
    try {
      await ready;
    } catch (error) {
      await Promise.all(closers.map((close) => close()));
      throw error;
    }
    this.owned.push(...closers);
    const { port } = server.address() as AddressInfo;
    return { port, host, url: `${transport === 'tcp' ? 'tcp' : 'ws'}://${host}:${port}` };
  }

  /**
   * A connection must finish its HTTP upgrade within the handshake timeout, as a TCP link must
   * send its HELLO: otherwise a client trickling its request line by line would hold a socket for
   * Node's 60 s header timeout (counted by the `handshakeTimeouts` stat, like a late HELLO).
   */
  private boundUpgrades(http: HttpServer, wss: WebSocketServer): void {
    // Each pending upgrade's timer and close listener go once the upgrade is done: left on the
    // socket, they would be held (~0.3 KB) for as long as the connection lives.
    const pending = new Map<Socket, { timer: Subscription; closed: () => void }>();
    http.on('connection', (socket: Socket) => {
      const timer = after(
        this.handshakeTimeoutMs,
        () => {
          pending.delete(socket);
          this.count('handshakeTimeouts');
          socket.destroy();
        },
        this.scheduler,
      );
      unrefTimer(timer);
      const closed = () => {
        timer.unsubscribe();
        pending.delete(socket);
      };
      pending.set(socket, { timer, closed });
      socket.once('close', closed);
    });
    wss.on('connection', (_socket, request) => {
      const upgrade = pending.get(request.socket);
      if (upgrade === undefined) return;
      upgrade.timer.unsubscribe();
      request.socket.off('close', upgrade.closed);
      pending.delete(request.socket);
    });
  }

  /**
   * Stops listening at once (a load balancer's next connection goes to another replica), then
   * closes as {@link ResumeServer.close} does (gracefully by default: GOAWAY, drain, store), then
   * closes the servers {@link listen} created.
   *
   * A SIGTERM handler for deploys:
   * ```ts
   * process.once('SIGTERM', async () => {
   *   await server.close({ goAway: { url: process.env.HANDOFF_URL } }); // or no URL: via the load balancer
   *   await store.close();
   * });
   * ```
   */
  override async close(options?: ResumeServerCloseOptions): Promise<void> {
    for (const stop of this.listening.splice(0)) stop();
    for (const detach of this.detachers.splice(0)) detach();
    await super.close(options);
    await Promise.all(this.owned.splice(0).map((close) => close()));
  }
}

/**
 * Creates the server half of the resume protocol: it hands the application one
 * {@link ServerSession} per client session, across that client's reconnects.
 *
 * @example
 * ```ts
 * const server = createResumeServer({ sessionTtlMs: 60_000 });
 * server.sessions$.subscribe((session) => {
 *   session.messages$.subscribe(({ seq, data }) => handle(session.id, seq, data));
 * });
 * const { url } = await server.listen({ port: 0 });
 * ```
 * @see resumable in `@lifeline/core`, the client half
 */
export function createResumeServer(options: ResumeServerOptions = {}): NodeResumeServer {
  return new NodeResumeServer(options);
}
