import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { WebSocketServer } from 'ws';
import { attachNetServer } from './net-adapter.js';
import { ResumeServer, type ResumeServerOptions } from './resume-server.js';
import { attachWebSocketServer } from './ws-adapter.js';

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

  /** Serves the connections of an existing `ws` WebSocketServer or `net.Server`. */
  attach(server: WebSocketServer | NetServer): void {
    this.detachers.push(
      server instanceof WebSocketServer ? attachWebSocketServer(this, server) : attachNetServer(this, server),
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
      const wss = new WebSocketServer({ server: http, maxPayload: this.maxFrameBytes });
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
