// A minimal resume-protocol server over the in-memory transport, for the core tests: it speaks the
// protocol with the same SessionEndpoint the client uses, and lets tests forget sessions (a
// restart), craft raw frames and count what was delivered.
import type { LinkData } from '@lifeline/core';
import {
  bytesToHex,
  constantTimeEqual,
  decodeFrame,
  encodePong,
  encodeReject,
  encodeWelcome,
  frameBytes,
  newSessionId,
  newSessionToken,
  type ResumeFrame,
  SessionEndpoint,
  type SessionEndpointOptions,
} from '@lifeline/core/internal';
import type { MemoryPeer, MemoryTransport } from '@lifeline/core/testing';
import type { Subscription } from 'rxjs';

export interface PeerSession {
  readonly id: string;
  token: Uint8Array;
  readonly endpoint: SessionEndpoint;
  readonly received: { seq: number; data: string | Uint8Array }[];
  link: MemoryPeer<LinkData> | undefined;
}

export class TestResumePeer {
  readonly sessions = new Map<string, PeerSession>();
  readonly errors: unknown[] = [];
  /** Every frame the client sent, decoded, in order. */
  readonly frames: ResumeFrame[] = [];
  private readonly subscription: Subscription;

  constructor(
    transport: MemoryTransport<LinkData>,
    private readonly options: SessionEndpointOptions = {},
  ) {
    this.subscription = transport.connections$.subscribe((peer) => this.accept(peer));
  }

  /** The one session, for tests that have one. */
  get session(): PeerSession {
    const [session] = this.sessions.values();
    if (!session) throw new Error('no session yet');
    return session;
  }

  /** A server restart with an in-memory store: every session is forgotten. */
  forgetAll(): void {
    for (const session of this.sessions.values()) session.endpoint.end(() => new Error('forgotten'));
    this.sessions.clear();
  }

  stop(): void {
    this.subscription.unsubscribe();
    this.forgetAll();
  }

  private accept(peer: MemoryPeer<LinkData>): void {
    let session: PeerSession | undefined;
    const write = (frame: Uint8Array) => peer.send(frame);
    const sub = peer.messages$.subscribe({
      next: (message) => {
        let frame: ResumeFrame;
        try {
          frame = decodeFrame(frameBytes(message));
        } catch (error) {
          this.errors.push(error);
          peer.close(1002);
          return;
        }
        this.frames.push(frame);
        if (!session) {
          if (frame.type !== 'hello') {
            this.errors.push(new Error(`expected HELLO, got ${frame.type}`));
            peer.close(1002);
            return;
          }
          // Bound before the WELCOME goes out: the in-memory client answers synchronously.
          this.hello(peer, frame, write, (bound) => {
            session = bound;
          });
          return;
        }
        const endpoint = session.endpoint;
        let problem: unknown;
        if (frame.type === 'data') problem = endpoint.receiveData(frame.seq, frame.ack, frame.data);
        else if (frame.type === 'ack') problem = endpoint.receiveAck(frame.ack);
        else if (frame.type === 'ping') write(encodePong());
        else if (frame.type === 'close') {
          this.sessions.delete(session.id);
          endpoint.end(() => new Error('closed by the client'));
          peer.close(1000);
        } else if (frame.type !== 'pong') problem = new Error(`unexpected ${frame.type}`);
        if (problem) {
          this.errors.push(problem);
          peer.close(1002);
        }
      },
      complete: () => {
        if (session && session.link === peer) {
          session.link = undefined;
          session.endpoint.disconnect();
        }
        sub?.unsubscribe();
      },
    });
  }

  private hello(
    peer: MemoryPeer<LinkData>,
    frame: Extract<ResumeFrame, { type: 'hello' }>,
    write: (frame: Uint8Array) => void,
    bind: (session: PeerSession) => void,
  ): void {
    if (!frame.resume) {
      const id = newSessionId();
      const token = newSessionToken();
      const received: PeerSession['received'] = [];
      const session: PeerSession = {
        id: bytesToHex(id),
        token,
        endpoint: new SessionEndpoint(this.options),
        received,
        link: peer,
      };
      this.sessions.set(session.id, session);
      bind(session);
      session.endpoint.connect(
        write,
        0,
        { ready: true, deliver: (data, seq) => received.push({ seq, data }) },
        encodeWelcome(false, id, token, 0),
      );
      return;
    }
    const session = this.sessions.get(bytesToHex(frame.resume.id));
    if (!session) {
      write(encodeReject('unknown-session', 'no such session'));
      return; // the client may send a new HELLO on this link
    }
    if (!constantTimeEqual(session.token, frame.resume.token)) {
      write(encodeReject('invalid-token', 'wrong token'));
      peer.close(1008);
      return;
    }
    const problem = session.endpoint.checkResume(frame.lastReceived);
    if (problem) {
      this.errors.push(problem);
      write(encodeReject('protocol-error', problem.message));
      peer.close(1002);
      return;
    }
    if (session.link && session.link !== peer) session.link.close(1001);
    session.link = peer;
    session.token = newSessionToken();
    bind(session);
    session.endpoint.connect(
      write,
      frame.lastReceived,
      { ready: true, deliver: (data, seq) => session.received.push({ seq, data }) },
      encodeWelcome(true, frame.resume.id, session.token, session.endpoint.ackable),
    );
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
