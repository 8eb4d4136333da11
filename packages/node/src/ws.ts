import {
  after,
  ConnectFailedError,
  defineHAWebSocket,
  defineHaWebSocket,
  type HAWebSocketConstructor,
  type HaWebSocketFactory,
  HttpStatusError,
  type LinkData,
  LinkFailedError,
  type ResumeOption,
  resume,
  type Transport,
  type WebSocketHandlers,
  type WebSocketOpenOptions,
  type WebSocketTransportOptions,
  webSocketTransport,
} from '@lifeline/core/internal';
import type { SchedulerLike } from 'rxjs';
import type WebSocket from 'ws';
import { lazyListenerMaps } from './lazy-listener-maps.js';
import { keepEncodeIntoMaps, keepMessageEventMaps } from './message-event-maps.js';
import { requirePeer } from './require-peer.js';

// Loaded through requirePeer so that a missing `ws` fails this import with an error naming it.
// `.WebSocket`: the class under either form `require` may return (ws's CommonJS export, or its ES
// wrapper's namespace when the resolver prefers the `import` condition, as vitest's does).
const WsWebSocket = requirePeer<typeof import('ws')>('ws', '@lifeline/node/ws').WebSocket;

/** The TCP socket under a `ws` client: `ws` keeps it in `_socket` and has no public accessor. */
type CorkableSocket = { cork(): void; uncork(): void; readonly writableCorked: number };

const uncork = (tcp: CorkableSocket) => tcp.uncork();

/**
 * Corks the `ws`'s TCP socket until the end of the tick, so the frames written in one tick (a
 * burst of sends, or one ack per message of a chunk just read) leave in one writev instead of
 * one syscall each. Each cork is paired with exactly one uncork on the next tick, whatever
 * happens to the link meanwhile: nothing stays corked after a close, and a close frame written
 * after a message queues behind it under the same cork (`end()` uncorks fully anyway).
 *
 * @example
 * ```ts
 * corkForTick(socket);
 * socket.send(frame);
 * ```
 * @see WriteBatcher in `@lifeline/core`, which batches the TCP link's writes the same way
 */
function corkForTick(socket: WebSocket): void {
  const tcp = (socket as unknown as { _socket?: CorkableSocket | null })._socket;
  // Corked already this tick (by us: `ws` corks and uncorks within one call), or no Node stream
  // to cork (Bun's `ws` replacement).
  if (tcp?.writableCorked !== 0 || typeof tcp.cork !== 'function') return;
  tcp.cork();
  process.nextTick(uncork, tcp);
}

/**
 * The sends of one tick on one socket, confirmed together (see {@link sendWith}). The engine
 * passes the same `confirmed` function for every send of a link (one link per socket), so a
 * batch keeps that one function and the tokens; a batch that sees another function keeps one
 * per token from then on (`confirms`).
 */
interface WriteBatch {
  readonly tcp: CorkableSocket & import('node:net').Socket;
  readonly confirm: (error: unknown, token: object) => void;
  confirms: ((error: unknown, token: object) => void)[] | undefined;
  readonly tokens: object[];
}

const batches = new WeakMap<WebSocket, WriteBatch>();
/** Set on a socket that sent a Blob: its frames are confirmed one by one from then on (see sendWith). */
const kOneByOne = Symbol('lifeline.oneByOne');
type OneByOne = WebSocket & { [kOneByOne]?: true };
const EMPTY = new Uint8Array(0);

/**
 * Writes a message and confirms it, with the others written in the same tick, once they reached
 * the network: at the end of the tick a zero-length write goes behind them on the TCP socket
 * (inside the same cork, so in the same writev), and its callback, which Node calls only after
 * every earlier write, confirms the batch. One callback per tick instead of one per message
 * (a `ws` send with a callback costs about twice one without). With an extension negotiated
 * (permessage-deflate), `ws` may hold frames back to compress them, so each one is confirmed by
 * its own callback, as before; so is every frame of a socket from its first Blob on (`ws` reads a
 * Blob asynchronously and holds the frames after it, as they were given, until it has).
 *
 * Per send, with a batch open for the socket (every send of a tick but the first): two
 * comparisons, `ws.send` without a callback, one push. What decides between the batch and a
 * callback per frame (`ws`'s `extensions`, a string it builds on each read, and the socket's
 * kind) cannot change while the socket is open, so it is looked at when a batch is opened.
 */
function sendWith(
  socket: WebSocket,
  data: LinkData,
  confirmed: (error: unknown, token: object) => void,
  token: object,
): void {
  // The last socket's batch first: a burst of sends goes to one socket (no WeakMap lookup each).
  let batch = socket === lastSocket ? lastBatch : batches.get(socket);
  // Bytes first: `instanceof` against the global `Blob` (a property Node replaces on first read,
  // so never folded to a constant) is a generic lookup on every send, a view check is not.
  if (!ArrayBuffer.isView(data) && data instanceof Blob) {
    // `ws` reads a Blob asynchronously and queues every later frame of the socket behind it, as
    // given: from now on each frame is copied and confirmed by its own callback (see below).
    // A batch open this tick is sealed as it is (its frames go before the Blob).
    (socket as OneByOne)[kOneByOne] = true;
    batch = undefined;
    batches.delete(socket);
    if (lastSocket === socket) lastSocket = lastBatch = undefined;
  }
  if (batch === undefined) {
    // Each frame is confirmed by its own callback when ws may hold frames back: to compress them
    // (permessage-deflate), or behind a Blob it reads; or when the socket under it is not a Node
    // stream (Bun's `ws` replacement keeps a native socket there, with no write callback to queue
    // behind the frames).
    if (
      socket.extensions !== '' ||
      (socket as OneByOne)[kOneByOne] ||
      !isNodeStream((socket as unknown as { _socket?: unknown })._socket)
    ) {
      corkForTick(socket);
      // `ws` may hold the frame back: it must not see the caller's buffer change.
      socket.send(copyOf(data), (error) =>
        confirmed(error ? new LinkFailedError('WebSocket write failed', { cause: error }) : undefined, token),
      );
      return;
    }
    const tcp = (socket as unknown as { _socket: WriteBatch['tcp'] })._socket;
    batch = { tcp, confirm: confirmed, confirms: undefined, tokens: [] };
    batches.set(socket, batch);
    // Queued before corkForTick's uncork: the marker joins the tick's corked writes.
    process.nextTick(sealBatch, socket, batch);
    corkForTick(socket);
  }
  // An open batch means this tick's cork is on (made with it, lifted after its seal).
  lastSocket = socket;
  lastBatch = batch;
  socket.send(data as Buffer);
  if (batch.confirms !== undefined) batch.confirms.push(confirmed);
  else if (confirmed !== batch.confirm) {
    const first = batch.confirm;
    batch.confirms = batch.tokens.map(() => first);
    batch.confirms.push(confirmed);
  }
  batch.tokens.push(token);
}

/** Whether `ws`'s `_socket` is a Node `net.Socket` (writable, corkable), as under Node and Deno. */
function isNodeStream(tcp: unknown): tcp is WriteBatch['tcp'] {
  return (
    typeof tcp === 'object' &&
    tcp !== null &&
    typeof (tcp as WriteBatch['tcp']).write === 'function' &&
    typeof (tcp as WriteBatch['tcp']).cork === 'function'
  );
}

/** A copy of binary data that `ws` may keep past the call (strings and Blobs are immutable). */
function copyOf(data: LinkData): LinkData {
  if (typeof data === 'string' || data instanceof Blob) return data;
  if (data instanceof ArrayBuffer) return data.slice(0);
  return Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

let lastSocket: WebSocket | undefined;
let lastBatch: WriteBatch | undefined;

function sealBatch(socket: WebSocket, batch: WriteBatch): void {
  if (batches.get(socket) === batch) batches.delete(socket);
  if (lastSocket === socket) {
    lastSocket = undefined;
    lastBatch = undefined;
  }
  afterWrites(batch.tcp, (error) => {
    const failure = error ? new LinkFailedError('WebSocket write failed', { cause: error }) : undefined;
    const { confirm, confirms, tokens } = batch;
    if (confirms === undefined) for (let i = 0; i < tokens.length; i++) confirm(failure, tokens[i]!);
    else for (let i = 0; i < tokens.length; i++) confirms[i]!(failure, tokens[i]!);
  });
}

/** Calls `done` once every write made so far on `tcp` has been handed to the OS, or with why not. */
function afterWrites(tcp: WriteBatch['tcp'], done: (error?: unknown) => void): void {
  if (!tcp.writableEnded && !tcp.destroyed) {
    tcp.write(EMPTY, (error) => done(error ?? undefined));
    return;
  }
  // `ws` ended the socket (its closing handshake) after our writes: they are flushed before the
  // end, or lost with the socket.
  if (tcp.writableFinished) done();
  else if (tcp.destroyed) done(new Error('the socket closed before its writes were flushed'));
  else {
    const onFinish = () => {
      tcp.off('close', onClose);
      done();
    };
    const onClose = () => {
      tcp.off('finish', onFinish);
      done(tcp.writableFinished ? undefined : new Error('the socket closed before its writes were flushed'));
    };
    tcp.once('finish', onFinish);
    tcp.once('close', onClose);
  }
}

/**
 * What only `ws` can do, handed to the core's web-standard WebSocket transport: write
 * confirmation through `send`'s callback, writes batched per tick, protocol-level ping/pong, and
 * the HTTP status of a refused upgrade (so a 401 is classified as fatal, a 503 as recoverable).
 */
const kHandlers = Symbol('lifeline.handlers');
type Listened = WebSocket & { [kHandlers]?: WebSocketHandlers | undefined };

function onWsOpen(this: Listened): void {
  this[kHandlers]?.onOpen();
}
function onWsMessage(this: Listened, data: WebSocket.RawData, isBinary: boolean): void {
  this[kHandlers]?.onMessage(isBinary ? (data as Buffer) : data.toString());
}
function onWsError(this: Listened, error: Error): void {
  this[kHandlers]?.onError({ error });
}
function onWsClose(this: Listened, code: number, reason: Buffer): void {
  this[kHandlers]?.onClose(code, reason.toString());
}
function onWsPong(this: Listened): void {
  this[kHandlers]?.onPong?.();
}

/**
 * The `ws` client our links open: it hands the link's handlers its five events from `emit`
 * itself, so a link adds no listener to the socket. Five listeners put the socket's event table
 * (a dictionary: EventEmitter's `_events` has no prototype) at a larger capacity, about 100 B
 * more per idle connection than the empty table every `ws` socket has. Other listeners (the close
 * linger's, the late-error guard's) still hear their events through `EventEmitter`'s `emit`.
 */
class LinkWebSocket extends WsWebSocket {
  [kHandlers]: WebSocketHandlers | undefined = undefined;

  override emit(type: string | symbol, a?: unknown, b?: unknown): boolean {
    // `ws` emits the link's events with at most two arguments; an 'error' nobody else hears is the link's.
    const hear = this[kHandlers] === undefined ? undefined : linkListener(type);
    if (hear !== undefined) {
      hear.call(this, a, b);
      return this.listenerCount(type) === 0 || super.emit(type, a, b);
    }
    // biome-ignore lint/complexity/noArguments: every argument `ws` gave, without a rest array per event
    return super.emit.apply(this, arguments as never);
  }
}

type LinkListener = (this: Listened, a: unknown, b: unknown) => void;

/** The shared listener of each of the five events a link hears (called by LinkWebSocket's `emit`). */
function linkListener(type: string | symbol): LinkListener | undefined {
  switch (type) {
    case 'message':
      return onWsMessage as LinkListener;
    case 'open':
      return onWsOpen;
    case 'error':
      return onWsError as LinkListener;
    case 'close':
      return onWsClose as LinkListener;
    case 'pong':
      return onWsPong;
    default:
      return undefined;
  }
}

export const wsCapabilities = {
  send: (socket: WebSocket, data: LinkData) =>
    new Promise<void>((resolve, reject) => {
      corkForTick(socket);
      socket.send(data as Buffer, (error) => {
        if (error) reject(new LinkFailedError('WebSocket write failed', { cause: error }));
        else resolve();
      });
    }),
  sendWith,
  write: (socket: WebSocket, data: LinkData) => {
    corkForTick(socket);
    socket.send(data as Buffer);
  },
  ping: (socket: WebSocket) => socket.ping(),
  terminate: (socket: WebSocket) => socket.terminate(),
  terminateAfter: (socket: WebSocket, ms: number, scheduler: SchedulerLike | undefined) => {
    const linger = after(ms, () => socket.terminate(), scheduler);
    socket.once('close', () => linger.unsubscribe());
  },
  // Pongs come through `listen` (handlers.onPong), so no `onPong` capability.
  listen: (socket: WebSocket, handlers: WebSocketHandlers): undefined => {
    (socket as Listened)[kHandlers] = handlers;
    // Our own sockets call the handlers from `emit` (see LinkWebSocket). Any other `ws` socket
    // (these capabilities are public) gets shared listeners that find the link's handlers on the
    // socket (`ws` calls them with the socket as `this`), stopped by `unlisten`: no closure per
    // connection.
    if (socket instanceof LinkWebSocket) return undefined;
    socket.on('open', onWsOpen);
    socket.on('message', onWsMessage);
    socket.on('error', onWsError);
    socket.on('close', onWsClose);
    socket.on('pong', onWsPong);
    return undefined;
  },
  unlisten: (socket: WebSocket) => {
    socket.off('open', onWsOpen);
    socket.off('message', onWsMessage);
    socket.off('error', onWsError);
    socket.off('close', onWsClose);
    socket.off('pong', onWsPong);
    (socket as Listened)[kHandlers] = undefined;
  },
  describeError: (event: unknown, opened: boolean) => {
    const error = (event as { error?: unknown }).error;
    const message = error instanceof Error ? error.message : '';
    const status = /Unexpected server response: (\d{3})/.exec(message);
    if (status)
      return new HttpStatusError(Number(status[1]), `WebSocket upgrade refused: HTTP ${status[1]}`, {
        cause: error,
      });
    return opened
      ? new LinkFailedError(`WebSocket failed: ${message}`, { cause: error })
      : new ConnectFailedError(`cannot open WebSocket: ${message}`, { cause: error });
  },
};

/** Options of {@link wsTransport}: the core transport's, without the constructor (it is `ws`). */
export interface WsTransportOptions extends WebSocketOpenOptions<WebSocket> {}

/**
 * A WebSocket transport for Node, on `ws`.
 *
 * @example
 * ```ts
 * import { attach } from '@lifeline/core';
 * import { wsTransport } from '@lifeline/node/ws';
 * const conn = attach(wsTransport('ws://127.0.0.1:8080/feed'));
 * ```
 */
export function wsTransport(
  url: WebSocketTransportOptions<WebSocket>['url'],
  options: WsTransportOptions = {},
): Transport<LinkData, LinkData> {
  return webSocketTransport<WebSocket>({
    ...wsCapabilities,
    binaryType: 'nodebuffer',
    ...options,
    url,
    WebSocket: LinkWebSocket as unknown as WebSocketTransportOptions<WebSocket>['WebSocket'],
  });
}

/** The `binaryType` values Node's `HAWebSocket` delivers, as `ws` does. */
export type WsBinaryType = 'nodebuffer' | 'arraybuffer' | 'blob' | 'fragments';

/**
 * The WebSocket drop-in for Node: `ws`'s interface (as a WHATWG WebSocket), recovering beneath it.
 * Binary messages arrive as `Buffer` by default, as with `ws`; set `binaryType = 'arraybuffer'` for
 * ArrayBuffers. `resume: resume()` (or `resume: true`) for exactly-once delivery against a resume
 * server; `socket.session` is then the session's handle.
 *
 * @example
 * ```ts
 * import { HAWebSocket } from '@lifeline/node/ws';
 * const socket = new HAWebSocket('ws://127.0.0.1:8080/feed', { maxAttemptsPerFailure: 20 });
 * socket.addEventListener('message', (event) => console.log(event.data));
 * socket.addEventListener('close', (event) => console.log(event.code, event.reason));
 * ```
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/node/ws';
 * const socket = new HAWebSocket('ws://127.0.0.1:8080/session', { resume: resume() });
 * socket.session?.events$.subscribe((event) => console.log(event.type)); // new, resumed, lost
 * ```
 */
export const HAWebSocket: HAWebSocketConstructor<ResumeOption, WsBinaryType> = defineHAWebSocket<
  WebSocket,
  ResumeOption,
  WsBinaryType
>({
  ...wsCapabilities,
  WebSocket: LinkWebSocket as unknown as WebSocketTransportOptions<WebSocket>['WebSocket'],
  binaryType: 'nodebuffer',
  defaultBinaryType: 'nodebuffer',
  convertBinary: convertWsBinary,
  resume,
});
// Node 20 and 22 make an EventTarget's two maps in its constructor: made on first use instead.
lazyListenerMaps(HAWebSocket);
// Every received message is a MessageEvent: their shared hidden classes kept across full GCs.
keepMessageEventMaps();
// A resumable socket encodes text into its frames with `encodeInto`: its result's hidden class kept too.
keepEncodeIntoMaps();

/**
 * A drop-in for RxJS's `webSocket()` on `ws`: the `WebSocketSubject` interface (`next`, `error`,
 * `complete`, `subscribe`, `multiplex`) and config fields, recovering beneath the subscribers, with
 * `resume: resume()` (or `true`) for exactly-once delivery against a resume server. See docs/websocket.md,
 * "Coming from RxJS".
 *
 * @example
 * ```ts
 * import { haWebSocket } from '@lifeline/node/ws';
 * const subject = haWebSocket<{ price: number }>('ws://127.0.0.1:8080/feed');
 * subject.subscribe((message) => console.log(message.price));
 * subject.next({ subscribe: 'prices' } as never);
 * ```
 * @see https://rxjs.dev/api/webSocket/webSocket
 */
export const haWebSocket: HaWebSocketFactory = defineHaWebSocket<WebSocket>({
  ...wsCapabilities,
  WebSocket: LinkWebSocket as unknown as WebSocketTransportOptions<WebSocket>['WebSocket'],
  binaryType: 'nodebuffer',
  defaultBinaryType: 'nodebuffer',
  convertBinary: convertWsBinary,
  resume,
});

/** `ws`'s four binary types, applied per message (`HAWebSocket` converts at dispatch). */
function convertWsBinary(data: ArrayBuffer | ArrayBufferView, binaryType: string): unknown {
  const buffer = Buffer.isBuffer(data)
    ? data
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  switch (binaryType) {
    case 'nodebuffer':
      return buffer;
    case 'fragments':
      return [buffer];
    case 'blob':
      return new Blob([buffer as Uint8Array<ArrayBuffer>]);
    default:
      // 'arraybuffer': a copy of exactly these bytes (the Buffer may be a view into a larger pool).
      return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  }
}

export { type ResumableOptions, type ResumeSession, resume } from '@lifeline/core/resume';
export type {
  HAWebSocketErrorEvent,
  HAWebSocketEventMap,
  HAWebSocketInstance,
  HAWebSocketOptions,
  HAWebSocketSubjectConfig,
} from '@lifeline/core/websocket';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics, enableSharedHeartbeats, useFrameViews } from '@lifeline/core/internal';

enableDiagnostics();
// Resume frames as Buffers: `ws` would make each Uint8Array frame into one (a second view per send).
useFrameViews((buffer, offset, length) => Buffer.from(buffer, offset, length));
// Heartbeats run by default on Node (ws ping frames): one timer for all of them, not one each.
enableSharedHeartbeats();
