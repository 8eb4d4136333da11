import type { Observable } from 'rxjs';
import { InvalidMessageError } from './errors.js';

/** What a link can carry: text or binary. */
export type LinkData = string | ArrayBuffer | ArrayBufferView;

/**
 * One physical connection. Opened by a {@link Transport}; never reopened (a new link is opened instead).
 *
 * `messages$` is hot: it starts delivering as soon as the link is open, completes when the link is
 * closed by us, and errors with a typed {@link LifelineError} when the link fails or the peer closes it.
 *
 * Wrapping a link (in a transport of your own, or `HAWebSocket`'s `wrapTransport`): a wrapper that
 * overrides `send` must see every message, so the optional fast paths {@link Link.sendWith} and
 * {@link Link.write}, which write without calling `send`, must not reach it. The WebSocket links
 * offer them to themselves only: read through `Object.create(link)`, both are `undefined`, and
 * every message goes through the wrapper's `send`. A wrapper of another link that keeps
 * `sendWith` or `write` must route them through its own `send` or set them to `undefined`.
 */
export interface Link<In = LinkData, Out = LinkData> {
  /** Incoming messages. Errors when the link fails; completes after {@link Link.close}. */
  readonly messages$: Observable<In>;
  /**
   * Writes one message. Resolves when the message was handed to the network (written to the
   * socket), rejects with a typed error when the link broke first. A `send` (or `sendWith`) that
   * throws synchronously refuses that message, as a wrapper's may: `attach` rejects that send
   * with the thrown error, unchanged, does not write it again, and goes on with the next one on
   * the same link (a failing link is reported by `messages$`, not by a throw); so a wrapper
   * throws before it writes to the link it wraps, never after. Under
   * `resumable(t)`, a throw from `t`'s link cannot refuse one frame (the session numbers them,
   * and a missing one is a gap the peer ends the session for): that link fails instead, with a
   * recoverable `LinkFailedError` (the thrown error its `cause`), and the session replays from
   * that frame on the next link.
   */
  send(data: Out): Promise<void>;
  /**
   * Writes one message without confirmation, for callers that learn of delivery otherwise (the
   * resume protocol's acks). A failed write surfaces as `messages$` erroring, never as a throw.
   * Cheaper than `send` where the platform confirms each write (no promise, no callback).
   *
   * @example
   * ```ts
   * if (link.write) link.write(frame);
   * else link.send(frame).catch(() => {}); // the failure reaches messages$ too
   * ```
   * @see Link.send
   */
  write?(data: Out): void;
  /**
   * {@link Link.send} without a promise: writes one message and calls `confirmed(undefined, token)`
   * once it was written to the network, or `confirmed(error, token)` when it cannot be. Calls
   * come in write order, possibly for a whole batch at once (one confirmation per tick for the
   * writes of that tick); never synchronously from `sendWith` itself. Used by the engine where
   * present (no promise and no per-message platform callback per send). The link is done with
   * `data` when `sendWith` returns (written, or copied): the caller may reuse the buffer at once.
   *
   * @example
   * ```ts
   * link.sendWith(data, (error, token) => (error ? fail(token, error) : done(token)), entry);
   * ```
   */
  sendWith?(data: Out, confirmed: (error: unknown, token: object) => void, token: object): void;
  /** Closes the link. `messages$` completes. Idempotent. */
  close(code?: number, reason?: string): void;
  /** Sends a transport-level ping, where the transport has one (WebSocket ping frames in Node). */
  ping?(): void;
  /** Emits when the peer answered a ping; counts as liveness for the heartbeat. */
  readonly pongs$?: Observable<unknown>;
  /** Bytes accepted by `send` but not yet written to the network, where known. */
  readonly bufferedAmount?: number;
  /**
   * True for links of a session that replays unacknowledged sends itself after a reconnect (the
   * resume protocol). `attach` then leaves a broken link's in-flight sends to the session, whose
   * promises settle on acknowledgement, instead of writing them again.
   */
  readonly replaysSends?: boolean;
  /**
   * Drops the physical link but keeps what it carries for the next link (a resumable session
   * stays resumable; `close()` would end it). `attach` calls this instead of `close()` when it
   * abandons a failed link to recover.
   */
  abandon?(): void;
  /**
   * The direct read seam: `reader` is told of every message, pong and the end, as a subscription
   * to `messages$` and `pongs$` would be, by plain method calls (no subscriber, observer and
   * teardown per link, no rxjs hop per message). Messages that arrived before are handed to it
   * first, synchronously. `read_(undefined)` stops telling it. `messages$` keeps working for its
   * own subscribers, who are told after the reader. Optional: `attach` subscribes to `messages$`
   * (and `pongs$`) on links without it. Core's own links only (the name is mangled).
   * @internal
   */
  read_?(reader: LinkReader<In> | undefined): void;
  /** Free-form facts about the link (negotiated subprotocol, remote address...). */
  readonly info?: Readonly<Record<string, unknown>>;
}

/**
 * What a link tells its reader ({@link Link.read_}): called as methods, in the order things
 * happened; nothing after the end, which comes once (`linkFailed_` as `messages$` would error,
 * `linkEnded_` as it would complete).
 * @internal
 */
export interface LinkReader<In> {
  linkMessage_(data: In): void;
  linkPong_(): void;
  linkFailed_(error: unknown): void;
  linkEnded_(): void;
}

/** Opens links. The same transport opens the first link and every reopened one. */
export interface Transport<In = LinkData, Out = LinkData> {
  /** Opens a link. Rejects with a typed error (classified by `isRecoverable`) when it cannot. */
  open(signal?: AbortSignal): Promise<Link<In, Out>>;
  /**
   * The server of the current link is going away (a resume GOAWAY) and named `url` as the place
   * to reconnect, or none: a transport that can choose (failover) opens the next link there, or
   * at least not on the departing endpoint. Optional: a transport with one address ignores it
   * (behind a load balancer, the same address reaches another replica).
   */
  redirect?(url: string | undefined): void;
  /**
   * Takes a send while no link is up, for a transport whose session keeps sends across links: a
   * resumable session with a client store numbers the message and stores it now, and writes it
   * on the next link, so a process that dies during an outage keeps it. Settles as a replaying
   * link's `send` does (resolves once the peer has the message; a rejection is final). Returns
   * `undefined` when it does not take the message: it then waits in `attach`'s queue for a link,
   * as on a transport without this method. `attach` calls it in send order, and only while no
   * send waits in its queue, so order is kept.
   */
  hold?(data: Out): Promise<void> | undefined;
  /**
   * Refuses data this transport cannot carry, by throwing a typed error (`InvalidMessageError`):
   * `attach` calls it on every send before the data is queued, so the caller gets the error (a
   * rejected `send`, a throwing `post`) and the connection carries on. Optional: without it every
   * value is queued as given.
   */
  check?(data: Out): void;
  /**
   * The connection was closed on purpose while no link was up (an outage, or before the first
   * link): ends what the transport keeps across links, as closing its link would have (a
   * resumable session ends, and its client store is cleared). Optional.
   */
  close?(code?: number, reason?: string): void;
  /**
   * The connection ended by itself (recovery gave up, an irrecoverable error), not by `close()`:
   * lets go of what the transport holds for this process but keeps what it stored (a resumable
   * session closes its client store without clearing it, so the next start resumes from it).
   * Optional.
   */
  release?(): void;
}

/** Whether `data` is message data: a string, an `ArrayBuffer` or a view of one (a Node `Buffer`). */
export function isLinkData(data: unknown): data is LinkData {
  return typeof data === 'string' || data instanceof ArrayBuffer || ArrayBuffer.isView(data);
}

/** The error for `data` handed to a send that takes {@link LinkData} only. */
export function invalidMessageError(data: unknown): InvalidMessageError {
  const type = data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data;
  return new InvalidMessageError(
    `a message must be a string or bytes (an ArrayBuffer, a typed array, a Buffer), got ${type}`,
  );
}

/** The size in bytes of a message, for queue and buffer limits. Strings count as UTF-16 length * 2 at most. */
export function byteSizeOf(data: unknown): number {
  if (typeof data === 'string') return data.length * 2;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  // Every runtime the packages support (Node >= 20, Deno, Bun, browsers) has a global Blob.
  if (data instanceof Blob) return data.size;
  return 0;
}
