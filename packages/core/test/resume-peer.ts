// The resume server of the core tests: the real `ResumeServer` (the one the Node and Deno adapters
// run) served over the in-memory transport, with what the tests read beside it: every frame the
// client sent, what each session received, a restart that forgets every session. `ScriptedServer`,
// below, is the hand-driven peer for tests that misbehave on purpose.
import { type LinkData, ProtocolError } from '@lifeline/core';
import {
  decodeFrame,
  encodeWelcome,
  frameBytes,
  newSessionId,
  newSessionToken,
  type ResumeFrame,
} from '@lifeline/core/internal';
import {
  ResumeServer,
  type ResumeServerOptions,
  type ServerSession,
  type SessionMessage,
} from '@lifeline/core/resume/server';
import { type MemoryPeer, type MemoryTransport, serveOverMemory } from '@lifeline/core/testing';
import type { Subscription } from 'rxjs';

export interface PeerSession {
  readonly id: string;
  /** What the session delivered to the application, in order (the test reads every message). */
  readonly received: Pick<SessionMessage, 'seq' | 'data'>[];
  /** The server's session: `send` on it whether or not a link is up. */
  readonly endpoint: ServerSession;
}

export class TestResumePeer {
  /** Live sessions of the current server by id (a restart forgets them). */
  readonly sessions = new Map<string, PeerSession>();
  /** Errors the server reported: link errors, link violations and protocol errors that detached a session. */
  readonly errors: unknown[] = [];
  /** Every frame the client sent, decoded, in order. */
  readonly frames: ResumeFrame[] = [];
  private server!: ResumeServer;
  private stopServing = () => {};
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly transport: MemoryTransport<LinkData>,
    private readonly options: ResumeServerOptions = {},
  ) {
    this.subscriptions.push(
      transport.connections$.subscribe((peer) =>
        peer.messages$.subscribe((message) => {
          try {
            this.frames.push(decodeFrame(frameBytes(message)));
          } catch {
            // The server counts and reports a malformed frame itself.
          }
        }),
      ),
    );
    this.start();
  }

  /** The one session, for tests that have one. */
  get session(): PeerSession {
    const [session] = this.sessions.values();
    if (!session) throw new Error('no session yet');
    return session;
  }

  /** A server restart with an in-memory store: every session is forgotten, every link dropped. */
  forgetAll(): void {
    this.stopServing();
    void this.server.close();
    this.sessions.clear();
    this.start();
  }

  stop(): void {
    this.stopServing();
    void this.server.close();
    this.sessions.clear();
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  private start(): void {
    const server = new ResumeServer(this.options);
    this.server = server;
    server.events$.subscribe((event) => {
      if (event.type === 'link-error' || event.type === 'link-violation') this.errors.push(event.error);
    });
    server.sessions$.subscribe((endpoint) => {
      const received: Pick<SessionMessage, 'seq' | 'data'>[] = [];
      this.sessions.set(endpoint.id, { id: endpoint.id, received, endpoint });
      endpoint.messages$.subscribe(({ seq, data }) => received.push({ seq, data }));
      endpoint.events$.subscribe((event) => {
        if (event.type === 'detach' && event.error instanceof ProtocolError) this.errors.push(event.error);
        if ((event.type === 'close' || event.type === 'expire') && this.server === server) {
          this.sessions.delete(endpoint.id);
        }
      });
    });
    this.stopServing = serveOverMemory(server, this.transport);
  }
}

/**
 * A hand-driven server end: answers the first HELLO with a WELCOME, then lets the test read the
 * client's frames and write any bytes it likes.
 */
export class ScriptedServer {
  readonly frames: ResumeFrame[] = [];
  readonly id = newSessionId();
  token = newSessionToken();

  constructor(
    readonly peer: MemoryPeer<LinkData>,
    options: {
      welcome?: boolean;
      lastReceived?: number;
      resumed?: boolean;
      /** Answers the HELLO instead of the WELCOME. */
      onHello?: (server: ScriptedServer) => void;
    } = {},
  ) {
    peer.messages$.subscribe((message) => {
      const frame = decodeFrame(frameBytes(message));
      this.frames.push(frame);
      if (frame.type === 'hello' && options.onHello) options.onHello(this);
      else if (frame.type === 'hello' && options.welcome !== false && this.frames.length === 1) {
        peer.send(encodeWelcome(options.resumed ?? false, this.id, this.token, options.lastReceived ?? 0));
      }
    });
  }

  /** Client DATA frames received, as [seq, data]. */
  get data(): [number, string | Uint8Array][] {
    return this.frames.flatMap((frame) =>
      frame.type === 'data' ? [[frame.seq, frame.data] as [number, string | Uint8Array]] : [],
    );
  }

  /** Client ACK values received after the handshake's confirming one. */
  get acks(): number[] {
    return this.frames.flatMap((frame) => (frame.type === 'ack' ? [frame.ack] : [])).slice(1);
  }

  send(frame: Uint8Array | string): void {
    this.peer.send(frame);
  }
}
