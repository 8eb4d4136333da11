import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  Server as NetServerClass,
  type Socket,
} from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';
import type { WebSocketServer } from 'ws';
import { requirePeer } from '../require-peer.js';
import { attachNetServer } from './net-adapter.js';
import { ResumeServer, type ResumeServerOptions } from './resume-server.js';
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

  /** Creates a server of its own and listens; {@link close} closes it. */
  async listen(options: ResumeListenOptions = {}): Promise<ResumeServerAddress> {
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
      this.owned.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
      server = http;
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.owned.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as HttpServer).closeAllConnections?.();
        }),
    );
    const { port } = server.address() as AddressInfo;
    return { port, host, url: `${transport === 'tcp' ? 'tcp' : 'ws'}://${host}:${port}` };
  }

  /**
   * A connection must finish its HTTP upgrade within the handshake timeout, as a TCP link must
   * send its HELLO: otherwise a client trickling its request line by line would hold a socket for
   * Node's 60 s header timeout (counted by the `handshakeTimeouts` stat, like a late HELLO).
   */
  private boundUpgrades(http: HttpServer, wss: WebSocketServer): void {
    const pending = new Map<Socket, ReturnType<typeof setTimeout>>();
    http.on('connection', (socket: Socket) => {
      const timer = setTimeout(() => {
        pending.delete(socket);
        this.count('handshakeTimeouts');
        socket.destroy();
      }, this.handshakeTimeoutMs);
      timer.unref();
      pending.set(socket, timer);
      socket.once('close', () => {
        clearTimeout(timer);
        pending.delete(socket);
      });
    });
    wss.on('connection', (_socket, request) => {
      const timer = pending.get(request.socket);
      if (timer === undefined) return;
      clearTimeout(timer);
      pending.delete(request.socket);
    });
  }

  override async close(): Promise<void> {
    for (const detach of this.detachers.splice(0)) detach();
    await super.close();
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
