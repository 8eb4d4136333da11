import { ResumeServer, type ResumeServerOptions } from '@lifeline/core/resume/server';
import { attachDenoListener, type DenoListenerLike } from './listener-adapter.js';
import { type DenoServeInfo, upgradeToResume } from './web-socket-adapter.js';

/** Where {@link DenoResumeServer.listen} listens. */
export interface ResumeListenOptions {
  /** @default 0 (an ephemeral port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** `'ws'`: WebSocket upgrades on `Deno.serve`; `'tcp'`: framed TCP on `Deno.listen`. @default 'ws' */
  transport?: 'ws' | 'tcp';
}

/** The address a listening server took. */
export interface ResumeServerAddress {
  readonly port: number;
  readonly host: string;
  /** `ws://host:port` or `tcp://host:port`. */
  readonly url: string;
}

interface DenoNet {
  serve(
    options: {
      hostname: string;
      port: number;
      signal: AbortSignal;
      onListen: (address: { port: number }) => void;
    },
    handler: (request: Request, info: DenoServeInfo) => Response,
  ): { finished: Promise<void> };
  listen(options: { hostname: string; port: number; transport: 'tcp' }): DenoListenerLike & {
    readonly addr: unknown;
    close(): void;
  };
}

/**
 * A {@link ResumeServer} with the Deno adapters: serve requests of your own `Deno.serve`
 * ({@link DenoResumeServer.handle}), connections of your own `Deno.listen`
 * ({@link DenoResumeServer.serveListener}), or listen on a port of its own. Same protocol, stores
 * and options as `@lifeline/node/server`: a Node or browser client resumes on it, and back.
 */
export class DenoResumeServer extends ResumeServer {
  private readonly owned: (() => Promise<void>)[] = [];

  /** Answers one request of a `Deno.serve` handler: upgrades it and serves the WebSocket. */
  handle(request: Request, info?: DenoServeInfo): Response {
    return upgradeToResume(this, request, info);
  }

  /** Serves every connection of a `Deno.listen` listener until it is closed. */
  serveListener(listener: DenoListenerLike): Promise<void> {
    return attachDenoListener(this, listener);
  }

  /**
   * Creates a server of its own and listens; {@link close} closes it. Rejects with the store's
   * error when the store cannot open (its `ready()` rejects), before listening: a server that
   * would refuse every client does not start.
   */
  async listen(options: ResumeListenOptions = {}): Promise<ResumeServerAddress> {
    const deno = (globalThis as { Deno?: DenoNet }).Deno;
    if (deno === undefined) throw new TypeError('Deno is not available in this runtime');
    await this.ready();
    const host = options.host ?? '127.0.0.1';
    const transport = options.transport ?? 'ws';
    let port: number;
    if (transport === 'tcp') {
      const listener = deno.listen({ hostname: host, port: options.port ?? 0, transport: 'tcp' });
      port = (listener.addr as { port: number }).port;
      const serving = this.serveListener(listener);
      this.owned.push(async () => {
        try {
          listener.close();
        } catch {
          // Closed already.
        }
        await serving;
      });
    } else {
      const abort = new AbortController();
      let server!: { finished: Promise<void> };
      port = await new Promise<number>((resolve) => {
        server = deno.serve(
          { hostname: host, port: options.port ?? 0, signal: abort.signal, onListen: (a) => resolve(a.port) },
          (request, info) => this.handle(request, info),
        );
      });
      this.owned.push(async () => {
        abort.abort();
        await server.finished;
      });
    }
    return { port, host, url: `${transport}://${host}:${port}` };
  }

  override async close(): Promise<void> {
    await super.close();
    await Promise.all(this.owned.splice(0).map((close) => close()));
  }
}

/**
 * Creates the server half of the resume protocol on Deno: it hands the application one
 * `ServerSession` per client session, across that client's reconnects.
 *
 * @example
 * ```ts
 * import { createResumeServer } from '@lifeline/deno/server';
 * const server = createResumeServer({ sessionTtlMs: 60_000 });
 * server.sessions$.subscribe((session) => session.messages$.subscribe(({ data }) => session.send(data)));
 * const { url } = await server.listen({ port: 0 });
 * ```
 * @see resumable in `@lifeline/core/resume`, the client half
 */
export function createResumeServer(options: ResumeServerOptions = {}): DenoResumeServer {
  return new DenoResumeServer(options);
}
