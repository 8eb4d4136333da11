import type { IncomingMessage } from 'node:http';
import { FrameTooLargeError } from '@lifeline/core/internal/server';
import type {
  LinkViolationReason,
  ResumeServer,
  ServerLinkInput,
  ServerLinkPort,
} from '@lifeline/core/resume/server';
import type { WebSocket, WebSocketServer } from 'ws';

/**
 * Feeds every connection of a `ws` WebSocketServer to a resume server: one binary message per
 * frame. Returns a function that stops taking new connections (existing ones run on).
 *
 * A message is one resume frame, so the server's `maxFrameBytes` is the largest message it can
 * take: a `wss` whose `maxPayload` is larger (`ws` defaults to 100 MiB) or unlimited has it
 * lowered to `maxFrameBytes` for the connections it accepts from now on, so `ws` refuses a larger
 * message (close 1009) as soon as its header announces it, instead of buffering it whole first.
 *
 * @example
 * ```ts
 * const detach = attachWebSocketServer(resumeServer, new WebSocketServer({ port: 0 }));
 * ```
 * @see createResumeServer
 */
export function attachWebSocketServer(server: ResumeServer, wss: WebSocketServer): () => void {
  // `ws` reads `options.maxPayload` at each upgrade: lowering it here bounds every later connection.
  const options = wss.options as { maxPayload?: number };
  if (!(options.maxPayload! > 0 && options.maxPayload! <= server.maxFrameBytes)) {
    options.maxPayload = server.maxFrameBytes;
  }
  // The peer's address is read (and `net` caches it, ~90 B per connection) only for a server that
  // limits sessions per address: read at the upgrade, while the socket is certainly open.
  const byAddress = Number.isFinite(server.maxSessionsPerAddress);
  // The same three listeners for every connection of this server, finding the link by the socket
  // `ws` calls them on (`this`, as every EventEmitter does): three closures and their context per
  // connection were ~0.2 KB of an attached session's heap (heap snapshots, docs/benchmarks.md).
  // Weakly held: a socket that is gone takes its entry with it.
  const inputs = new WeakMap<WebSocket, ServerLinkInput>();
  function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    inputs.get(this)?.receive(isBinary ? data : String(data));
  }
  // Errors are followed by 'close'; without a listener they would crash the process. `ws` emits
  // 'error' on a server socket only for what the peer sent against RFC 6455 (it closes the link
  // itself), which the server reports and counts. A message above maxPayload is refused by ws
  // from its header: reported as a violation and counted as an oversized frame too (ws does not
  // say how large it was, only that it passed the limit).
  function onError(this: WebSocket, error: Error & { code?: string }): void {
    const input = inputs.get(this);
    if (input === undefined) return;
    const reason = violationOf(error);
    const reported =
      reason === 'message-too-large'
        ? new FrameTooLargeError(server.maxFrameBytes + 1, server.maxFrameBytes)
        : error;
    input.violation(reason, reported);
  }
  function onClose(this: WebSocket): void {
    const input = inputs.get(this);
    inputs.delete(this);
    input?.closed();
  }
  const onConnection = (socket: WebSocket, request: IncomingMessage) => {
    // A socket emitted twice (a user's upgrade handler): a second link would take its entry and
    // the same listeners again (each message twice to it), leaving the first link fed nothing.
    if (inputs.has(socket)) return;
    socket.binaryType = 'nodebuffer';
    const input = server.accept(new WsLinkPort(socket, byAddress ? request.socket.remoteAddress : undefined));
    inputs.set(socket, input);
    socket.on('message', onMessage);
    socket.on('error', onError);
    socket.on('close', onClose);
  };
  wss.on('connection', onConnection);
  return () => wss.off('connection', onConnection);
}

/**
 * One `ws` connection as the resume server writes to it. A class, not an object literal with a
 * getter and arrow functions: those cost a dictionary-mode object and a closure per member, per
 * connection (about 0.7 KB each, measured by `pnpm bench server`).
 */
class WsLinkPort implements ServerLinkPort {
  constructor(
    private readonly socket: WebSocket,
    readonly remoteAddress: string | undefined,
  ) {}

  send(frame: Uint8Array, written?: () => void): void {
    this.socket.send(frame, written);
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  close(code: number, reason: string, abrupt: boolean): void {
    // A peer presumed gone will not answer a closing handshake: do not wait 30 s for it.
    if (abrupt) this.socket.terminate();
    else this.socket.close(code, reason);
  }
}

/** The reason for an error `ws` raised on what the peer sent (its `WS_ERR_*` codes). */
function violationOf(error: Error): LinkViolationReason {
  switch ((error as { code?: unknown }).code) {
    case 'WS_ERR_INVALID_UTF8':
      return 'invalid-utf8';
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return 'message-too-large';
    case 'WS_ERR_EXPECTED_MASK':
      return 'unmasked-frame';
    default:
      return 'invalid-frame';
  }
}
