import type { Observable, Subscription } from 'rxjs';
import type { DiagnosticsOptions } from '../diagnostics/diagnostics.js';
import { type HeartbeatOwner, HeartbeatTimer, type HeartbeatTimingOptions } from '../operators/heartbeat.js';
import { CloseCode } from '../policy/close-codes.js';
import { monotonicScheduler } from './clock.js';
import type { ClosedState, CloseReason, ConnectionState } from './connection-state.js';
import { type ConnectionDiagnosticsPort, connectionDiagnosticsFor } from './diagnostics-hook.js';
import {
  ClosedByUserError,
  DetachedError,
  NotOpenError,
  type QueueOverflowError,
  SendWithdrawnError,
} from './errors.js';
import type { Link, LinkData, LinkReader, Transport } from './link.js';
import { FanoutObservable, fanOut, lateFanout, MessageFanout, ValueFanout } from './message-fanout.js';
import { checkConnectionOptions } from './options.js';
import { copyBytes, type OutgoingEntry, OutgoingQueue, type QueueOptions } from './outgoing-queue.js';
import {
  RecoveryCore,
  RecoveryDeclined,
  type RecoveryEvent,
  type RecoveryListener,
  type RecoveryOptions,
} from './recovery-core.js';

/** What a recovery function is told (libha's `rfn(coid, rhdl)`, with more to go on). */
export interface RecoveryContext<In, Out, H> {
  /** This attempt, 1-based, and the per-failure budget. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The error that started this failure. */
  readonly error: unknown;
  /** The error of the previous attempt (the failure itself on the first attempt). */
  readonly lastError: unknown;
  /** The link that failed (already closed); `undefined` when the first open failed. */
  readonly previousLink: Link<In, Out> | undefined;
  /** The user's handle given to `attach` (libha's `rhdl`). */
  readonly handle: H;
  /** Opens a new link with the same parameters (libha's `ha_reopen`). */
  reopen(): Promise<Link<In, Out>>;
  /** Aborted when the connection is closed mid-attempt. */
  readonly signal: AbortSignal;
}

/**
 * A recovery function: returns the recovered link (renegotiated as the application needs: auth,
 * subscriptions), or `undefined` to give up, in which case the original error reaches the caller.
 * A thrown error fails this attempt; it is classified like any failure.
 */
export type RecoverFunction<In, Out, H> = (
  context: RecoveryContext<In, Out, H>,
) => Promise<Link<In, Out> | undefined | null> | Link<In, Out> | undefined | null;

/** Options of {@link attach}. Every {@link RecoveryOptions} field applies too. */
export interface AttachOptions<In = LinkData, Out = LinkData, H = undefined>
  extends ConnectionOptions<In, Out, H> {
  /** Passed to `recover` as `ctx.handle`. @default undefined */
  handle?: H;
}

/** The options of {@link attach} but `handle`: what the drop-ins (`HAWebSocket`) take. */
export interface ConnectionOptions<In = LinkData, Out = LinkData, H = undefined>
  extends RecoveryOptions,
    DiagnosticsOptions {
  /**
   * Restores a failed connection. The default reopens with the same parameters.
   * @default (ctx) => ctx.reopen()
   */
  recover?: RecoverFunction<In, Out, H>;
  /**
   * Limits of the outgoing queue: every send not yet confirmed, waiting for a link or written and
   * awaiting confirmation. A send that does not fit is refused (never dropped silently).
   * @default { maxBytes: 16_777_216, maxMessages: Infinity, overflow: 'reject' } (see {@link QueueOptions})
   */
  queue?: QueueOptions;
  /**
   * Half-open detection: silence from the peer becomes a recoverable `HeartbeatTimeoutError`.
   * Pings use the link's `ping()` where it has one (ws ping frames, TCP ping frames, resume
   * protocol PINGs); where it has none (a browser WebSocket), pass `ping` to send an
   * application-level ping the server answers. `false` turns it off.
   * @default false
   * @example
   * ```ts
   * attach(transport, { heartbeat: { intervalMs: 5_000, timeoutMs: 15_000, ping: (link) => link.send('ping') } })
   * ```
   */
  heartbeat?: false | AttachHeartbeatOptions<In, Out>;
}

/** The `heartbeat` option of {@link attach}: its timing, and how to ping where the link cannot. */
export interface AttachHeartbeatOptions<In = LinkData, Out = LinkData> extends HeartbeatTimingOptions {
  /** Sends an application-level ping on links without a protocol-level `ping()`. @default none */
  ping?: (link: Link<In, Out>) => void;
  /**
   * Run only on links that can ping at the protocol level (`link.ping`: WebSocket ping
   * frames in Node, TCP ping frames, the resume protocol's PINGs), and not at all on others
   * (a browser's plain WebSocket), where silence proves nothing. `HAWebSocket`'s default.
   * @default false
   */
  ifSupported?: boolean;
}

/**
 * How long a recovered link must have been up before the traffic it carries ends the failure, in
 * ms. A server that greets and dies at once (overload shedding, a poison message replayed to a
 * resume server) is then still one more attempt of the same failure, with the growing backoff,
 * instead of an endless loop at the first backoff step; a server that lives even a second is
 * followed through every life.
 */
export const MIN_PROGRESS_UPTIME_MS = 500;

/** Something the connection reports beside its state. */
export type ConnectionEvent<In, Out> =
  | { readonly type: 'link-open'; readonly link: Link<In, Out>; readonly recovered: boolean }
  | { readonly type: 'link-down'; readonly error: unknown }
  | { readonly type: 'dropped'; readonly data: Out; readonly error: QueueOverflowError }
  /** The heartbeat's `ping` function threw; the heartbeat goes on. */
  | { readonly type: 'ping-failed'; readonly error: unknown }
  | RecoveryEvent;

/** Options of one send. */
export interface SendOptions {
  /**
   * Withdraws the send when aborted while it still waits in the queue (while connecting or
   * recovering): its promise rejects with `signal.reason` and it is never written. Once written
   * on a link it can no longer be withdrawn (the peer may have it); aborting then changes nothing.
   * A signal already aborted refuses the send at once. A transport that takes sends while no link
   * is up (`Transport.hold`: a resumable connection with a client store) owns them at once:
   * those can no longer be withdrawn either.
   * @default none
   */
  signal?: AbortSignal;
}

/** A connection made highly available by {@link attach}. */
export interface HAConnection<In = LinkData, Out = LinkData> {
  /**
   * Messages from every link in turn, across recoveries. Completes when the connection closes,
   * whatever the reason; the error that closed it is on `state$` and `closed`.
   */
  readonly messages$: Observable<In>;
  /** The current state; as from a BehaviorSubject, subscribers get the current state at once. */
  readonly state$: Observable<ConnectionState> & { readonly value: ConnectionState };
  /** Recovery steps, link changes and dropped messages. */
  readonly events$: Observable<ConnectionEvent<In, Out>>;
  /** The link currently open, if one is. */
  readonly link: Link<In, Out> | undefined;
  /** Settles once the connection is closed, with the final state. Never rejects. */
  readonly closed: Promise<ClosedState>;
  /**
   * Messages waiting or in flight, and their bytes as the queue's `maxBytes` counts them (strings
   * at 2 bytes per UTF-16 unit: the memory they hold). `HAWebSocket.bufferedAmount` counts the
   * same sends as WebSocket does instead (text in UTF-8).
   */
  readonly pending: { readonly messages: number; readonly bytes: number };
  /**
   * Sends a message. Resolves once it was written on a link; a send in flight when the link broke
   * is written again on the recovered link. Binary data is copied: the caller may reuse its buffer.
   * Rejects with the original error if recovery gives up, with a {@link QueueOverflowError} if the
   * queue is full, with {@link ClosedByUserError} after `close()`, with `options.signal`'s reason
   * if withdrawn.
   */
  send(data: Out, options?: SendOptions): Promise<void>;
  /**
   * {@link HAConnection.send}, except that a send the connection cannot take (queue full, closed,
   * signal already aborted) THROWS that error synchronously instead of returning a rejected
   * promise: for callers whose own `send` returns nothing (a WebSocket's), so the caller learns
   * which message was refused at the moment it was refused. Later failures reject the promise.
   * @throws {QueueOverflowError} the queue is full
   * @throws {ClosedByUserError} (or the error that ended the connection) after it closed
   */
  enqueue(data: Out, options?: SendOptions): Promise<void>;
  /**
   * Withdraws every send still waiting for a link (written ones stay: they may have arrived; so do
   * ones a transport took while no link was up, see `Transport.hold`).
   * Each withdrawn send rejects with `reason`, by default a {@link SendWithdrawnError}.
   * Returns how many were withdrawn.
   */
  clearQueue(reason?: unknown): number;
  /** libha `HA_RECOVERY_SUSPEND`: failures now propagate as on a plain connection. */
  suspend(): void;
  /** libha `HA_RECOVERY_ENABLE`. */
  enable(): void;
  /** libha `HA_RECOVERY_RESET_ICOUNT | HA_RECOVERY_RESET_ACOUNT`. */
  resetCounts(): void;
  /** libha `ha_detach`: stops recovery and hands back the open link (if any) as a plain one. */
  detach(): Link<In, Out> | undefined;
  /**
   * libha `ha_close`: closes the link without recovering. Pending sends reject with
   * {@link ClosedByUserError}. With no link up, the transport's `close` (if it has one) ends what it
   * keeps across links: a resumable session and its client store.
   */
  close(code?: number, reason?: string): void;
}

/**
 * The `resolve` of every send nobody awaits ({@link PostingConnection.post}: `HAWebSocket.send()`),
 * and nothing else's: a replaying link reads it from the entry `sendWith` is given, to flag such a
 * send "the ack may wait" (resume protocol version 3). A token of another caller never matches,
 * so its sends are taken as awaited.
 * @internal
 */
export const unawaited = (): void => {};

/**
 * Where the connection reports, without an observable, what a drop-in socket turns into events:
 * a {@link HAConnectionImpl.post} send taken and then not delivered, and every `dropped` message.
 * @internal
 */
export interface PostSink<Out, In = unknown> {
  sendFailed_(data: Out, error: unknown): void;
  dropped_(data: Out, error: QueueOverflowError): void;
  /** Every message, before `messages$`'s subscribers: what a subscription would get, without one. */
  received_(data: In): void;
  /** Every state, before `state$`'s subscribers (the first one, `connecting`, excepted). */
  stateChanged_(state: ConnectionState): void;
  /**
   * `close(code, reason)` or `detach()` was called on a connection not yet closed, before it ends
   * anything: the drop-in socket takes it as its own `close()`, however it was called
   * (`socket.connection.close()`).
   */
  closing_(code?: number, reason?: string): void;
}

/** The connection {@link attach} returns, with its internal promise-less send. @internal */
export interface PostingConnection<In, Out> extends HAConnection<In, Out> {
  /** Set once, by the drop-in socket that owns the connection, before any message or state. */
  sink_: PostSink<Out, In> | undefined;
  post(data: Out): void;
  /** The outbox: every send not yet confirmed (`HAWebSocket.bufferedAmount` counts its bytes). */
  readonly outbox_: OutgoingQueue<Out>;
  /**
   * Nonzero while sends are being written on the open link: a link just opened and the sends that
   * waited for it are not all written on it yet, or a send is being written and others may wait behind it.
   */
  readonly flushing_: 0 | 1 | 2;
}

const defaultRecover = <In, Out, H>(ctx: RecoveryContext<In, Out, H>) => ctx.reopen();

/**
 * The outgoing queue of every connection that has not sent yet (an idle connection's queue and its
 * list were 120 B each): always empty, since only `take_` adds entries, to a queue of the
 * connection's own that it makes first. What the connection asks of it (size, waiting entries,
 * requeue, drain) reads or leaves it empty.
 */
const NO_SENDS = /* @__PURE__ */ new OutgoingQueue<never>();

/**
 * Makes a connection highly available (libha `ha_attach`). Opens a link at once; when the link
 * fails with a recoverable error, it is restored by `options.recover` under the budgets and the
 * backoff, and sends that were in flight are written again in order. Irrecoverable errors, and
 * any error while recovery is suspended, close the connection with that error unchanged.
 *
 * @example
 * ```ts
 * const conn = attach(webSocketTransport({ url, WebSocket }), { maxAttemptsPerFailure: 5 });
 * conn.messages$.subscribe(console.log);
 * await conn.send('hello');
 * ```
 */
export function attach<In = LinkData, Out = LinkData, H = undefined>(
  transport: Transport<In, Out>,
  options: AttachOptions<In, Out, H> = {},
): HAConnection<In, Out> {
  return new HAConnectionImpl(transport, options);
}

class HAConnectionImpl<In, Out, H>
  implements HAConnection<In, Out>, LinkReader<In>, HeartbeatOwner, RecoveryListener
{
  /**
   * The state. `state$` is a fanout that keeps the current value (a `BehaviorSubject` without
   * rxjs), made with its view on first read; the connection's sink (a drop-in socket) is told of
   * each state before its subscribers, as their first would be told: the value is stored first (a
   * subscriber that joins from the sink's handler gets it at once) and the delivery snapshot is
   * taken before (it does not get it twice).
   */
  private state_: ConnectionState = { status: 'connecting' };
  // `declare`d fields have no declaration in the build: each is assigned by the constructor, or
  // only when it is first needed, so an idle connection keeps no field for it (8 B each).
  declare private stateView_: StateView | undefined;
  /**
   * `messages$`'s and `events$`'s fanouts, made on first read: a connection read through its sink
   * (an `HAWebSocket`) has no subscriber to either.
   */
  declare private incoming_: MessageFanout<In> | undefined;
  declare private events_: MessageFanout<ConnectionEvent<In, Out>> | undefined;
  /** Set once, by the drop-in socket that owns the connection: see {@link PostingConnection}. @internal */
  sink_: PostSink<Out, In> | undefined;
  declare private readonly core_: RecoveryCore;
  declare private readonly diagnostics_: ConnectionDiagnosticsPort;
  declare private readonly transport: Transport<In, Out>;
  declare private readonly options: AttachOptions<In, Out, H>;
  /**
   * {@link NO_SENDS} until the first send: a connection that never sends keeps no queue of its own.
   * @internal Read by the drop-in socket that owns the connection (see {@link PostingConnection}).
   */
  outbox_: OutgoingQueue<Out> = NO_SENDS;
  private currentLink_: Link<In, Out> | undefined;
  private lastLink_: Link<In, Out> | undefined;
  private generation_ = 0;
  private attemptAbort_: AbortController | undefined;
  private linkSubscription_: Subscription | undefined;
  private waitSubscription_: Subscription | undefined;
  private finished_ = false;
  /**
   * `closed`, made on first read (most connections are never asked): a promise and its resolve
   * function are idle memory every connection would otherwise keep.
   */
  declare private closed_: Promise<ClosedState> | undefined;
  declare private resolveClosed_: ((state: ClosedState) => void) | undefined;

  constructor(transport: Transport<In, Out>, options: AttachOptions<In, Out, H>) {
    this.transport = transport;
    this.options = options;
    checkConnectionOptions(options);
    this.diagnostics_ = connectionDiagnosticsFor(options);
    this.core_ = new RecoveryCore(options, this);
    this.connect_();
  }

  get messages$(): Observable<In> {
    this.incoming_ ??= lateFanout(this.finished_, new MessageFanout<In>());
    return this.incoming_.observable;
  }

  get events$(): Observable<ConnectionEvent<In, Out>> {
    this.events_ ??= lateFanout(this.finished_, new MessageFanout<ConnectionEvent<In, Out>>());
    return this.events_.observable;
  }

  /** A subscriber after the close gets the final state (and the error in it), then completion. */
  get state$(): Observable<ConnectionState> & { readonly value: ConnectionState } {
    this.stateView_ ??= new StateView(lateFanout(this.finished_, new ValueFanout(this.state_)));
    return this.stateView_;
  }

  get closed(): Promise<ClosedState> {
    if (this.closed_ === undefined) {
      const state = this.state_;
      this.closed_ =
        state.status === 'closed'
          ? Promise.resolve(state)
          : new Promise((resolve) => {
              this.resolveClosed_ = resolve;
            });
    }
    return this.closed_;
  }

  get link(): Link<In, Out> | undefined {
    return this.currentLink_;
  }

  get pending() {
    return { messages: this.outbox_.size, bytes: this.outbox_.bytes };
  }

  send(data: Out, options?: SendOptions): Promise<void> {
    try {
      return this.enqueue(data, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  enqueue(data: Out, options?: SendOptions): Promise<void> {
    if (this.finished_) throw this.finalError_ ?? new ClosedByUserError();
    this.transport.check?.(data);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    // One executor for every send of every connection: the send waits in module variables for
    // the synchronous executor call, instead of in a closure per send (or fields per connection).
    // A send made re-entrantly (from inside a link's send) sets them again only after the
    // executor has read them.
    taking = this;
    takingData = data;
    takingSignal = signal;
    const promise = new Promise<void>(takeSend);
    // The executor left a refused send's promise pending for good (nothing references it): the
    // refusal is thrown here instead, where the caller is, rather than as a rejection nobody may watch.
    throwRefused();
    return promise;
  }

  /**
   * {@link enqueue} without a promise, for a drop-in `send()` that returns nothing: a send the
   * connection cannot take throws, as from `enqueue`; one taken and later not delivered is handed
   * to `sink.sendFailed_` (with the queued copy of its data). Saves a promise and its reactions
   * per send.
   * @internal
   */
  post(data: Out): void {
    if (this.finished_) throw this.finalError_ ?? new ClosedByUserError();
    this.transport.check?.(data);
    this.postReject_ ??= postRejectFor(this);
    this.take_(data, unawaited, this.postReject_, undefined);
    throwRefused();
  }

  /**
   * Writes a new entry at once if a link is up; one left waiting keeps a copy of its data. A
   * {@link Link.sendWith} link is handed the caller's own `data` (it is done with it when the
   * call returns), so `ws` frames the Buffer it was given instead of wrapping the copy in one.
   */
  private writeNew_(entry: OutgoingEntry<Out>, direct: boolean, data: Out): void {
    const link = this.currentLink_;
    if (link && !this.flushing_) {
      // A send made from inside this write (a link wrapper's own `send` that sends, or a handler
      // it runs) waits behind it, as during a flush, and is written after it: written at once,
      // it would reach the wire before the message whose write it came from.
      this.flushing_ = 1;
      try {
        // The caller's own bytes: a `sendWith` link is done with them when it returns, and a link
        // without one is handed the entry's copy by write_ itself.
        this.write_(link, entry, data);
      } finally {
        // Also when the write threw (a wrapper's own send): later sends must not wait for good.
        this.flush_(link);
      }
      return;
    }
    // Not written now: the entry keeps its own copy of the caller's bytes (the caller may reuse them).
    if (direct) (entry as { data: Out }).data = copyBytes(entry.data);
    if (link) this.flushing_ = 2;
    else if (this.holding_ && !this.hold_(entry)) this.holding_ = false;
  }

  /** @internal A message 'drop-oldest' dropped (see {@link DropListener}). */
  queueDropped_(entry: { data: Out }, error: QueueOverflowError): void {
    this.emit_({ type: 'dropped', data: entry.data, error });
    this.sink_?.dropped_(entry.data, error);
  }

  /** Every posted entry's `reject` (see {@link postRejectFor}), made on the first post. */
  declare private postReject_: ((error: unknown) => void) | undefined;

  clearQueue(reason?: unknown): number {
    const withdrawn = this.outbox_.withdrawWaiting();
    const error = reason ?? new SendWithdrawnError();
    for (const entry of withdrawn) entry.reject(error);
    return withdrawn.length;
  }

  /** Queues a send (a refusal goes to `refused`) and writes it at once if a link is up. */
  /** @internal */
  take_(
    data: Out,
    resolve: () => void,
    reject: (error: unknown) => void,
    signal: AbortSignal | undefined,
  ): void {
    // Written at once on a replaying link, which copies it into its own frame synchronously and
    // replays that frame itself: the outbox need not copy it first.
    const direct = this.currentLink_?.replaysSends === true && !this.flushing_;
    if (this.outbox_ === NO_SENDS) this.outbox_ = new OutgoingQueue(this.options.queue);
    const entry = this.outbox_.enqueue(data, resolve, reject, this, !direct);
    if (!('settled' in entry)) {
      refused = entry;
      return;
    }
    if (this.finished_) {
      // A `dropped` listener closed the connection while this send made room: nothing will
      // ever write it. The close already rejected it if it drained it; otherwise do it here.
      if (!entry.settled) {
        this.outbox_.settle(entry);
        entry.reject(this.finalError_ ?? new ClosedByUserError());
      }
      return;
    }
    if (signal) {
      const onAbort = () => {
        if (this.outbox_.withdraw(entry)) reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.release = () => signal.removeEventListener('abort', onAbort);
    }
    this.writeNew_(entry, direct, data);
  }

  /**
   * No link is up and no send waits in the queue: every send made meanwhile was handed to the
   * transport's `hold`, so the next one may be too (after a refusal, sends wait in the queue, in
   * order, until a link takes them; the next link-down tries again).
   */
  private holding_ = true;

  /** Hands a send to the transport's `hold` (see {@link Transport.hold}); false if it does not take it. */
  private hold_(entry: OutgoingEntry<Out>): boolean {
    const held = this.transport.hold?.(entry.data);
    if (held === undefined) return false;
    // Like a send written on a replaying link: the session owns it now (it cannot be withdrawn or
    // dropped), it is not written again by attach, and the session's answer is final.
    // Its generation stays this one (no link rewrites it), so it settles as a replaying link's does.
    const generation = this.generation_;
    entry.generation = generation;
    entry.written_ = true;
    held.then(
      () => this.onConfirm_(generation, true, undefined, entry),
      (error) => this.onReplayingRejection_(entry, generation, error),
    );
    return true;
  }

  suspend(): void {
    if (this.finished_) return;
    this.core_.suspend();
    const state = this.state_;
    if (state.status === 'open') this.setState_({ ...state, status: 'suspended' });
  }

  enable(): void {
    if (this.finished_) return;
    this.core_.enable();
    const state = this.state_;
    if (state.status === 'suspended') this.setState_({ ...state, status: 'open' });
  }

  resetCounts(): void {
    if (this.finished_) return;
    this.core_.resetCounts();
    const state = this.state_;
    // Open, suspended or recovering (a connecting state has no budgets to show).
    if (state.status !== 'connecting') {
      this.setState_({
        ...state,
        ...(state.status === 'recovering' && { attempt: this.core_.attempt }),
        recoveriesLeft: this.core_.recoveriesLeft,
      } as ConnectionState);
    }
  }

  detach(): Link<In, Out> | undefined {
    const link = this.currentLink_;
    // To the drop-in socket, an end of its own too: reported with 1005, since no close frame was
    // exchanged (the link is handed back open).
    if (!this.finished_) this.sink_?.closing_(CloseCode.NoStatusReceived);
    this.shutdown_('detached', undefined, new DetachedError(), false);
    return link;
  }

  close(code?: number, reason?: string): void {
    if (this.finished_) return;
    this.sink_?.closing_(code, reason);
    const link = this.currentLink_;
    this.shutdown_('user', undefined, new ClosedByUserError(), false);
    if (link) link.close(code, reason);
    // No link to close: the transport ends what it keeps across links (a resumable session,
    // with the sends it took while no link was up and its client store) as the link would have.
    else this.transport.close?.(code, reason);
  }

  declare private finalError_: unknown;
  /** The generation whose sends were left to their link's confirmation by close()/detach(). */
  declare private keptGeneration_: number | undefined;
  declare private lastGiveUp_: CloseReason | undefined;

  /**
   * One attempt: open (or recover) a link, then read it until it fails. The loop is written out
   * by hand rather than as an rxjs pipeline because it lives as long as the connection: an idle
   * connection then costs a few objects, not a chain of operator subscribers. The decisions
   * (budgets, backoff, give-up) are the shared {@link RecoveryCore}'s.
   */
  private connect_(): void {
    const abort = new AbortController();
    this.attemptAbort_ = abort;
    this.openLink_(abort.signal).then(
      (link) => {
        if (this.attemptAbort_ === abort) this.attemptAbort_ = undefined;
        if (this.finished_) {
          // The connection was closed while the open was under way: nobody owns this link.
          link?.close();
          return;
        }
        if (link === undefined || link === null) this.onFailure_(new RecoveryDeclined());
        else this.onLinkOpen_(link);
      },
      (error) => {
        if (this.attemptAbort_ === abort) this.attemptAbort_ = undefined;
        if (!this.finished_) this.onFailure_(error);
      },
    );
  }

  private onFailure_(error: unknown): void {
    const wait = this.core_.fail(error).subscribe({
      next: () => {
        this.waitSubscription_ = undefined;
        this.connect_();
      },
      error: (finalError) => this.finish_(this.lastGiveUp_ ?? 'irrecoverable', finalError),
    });
    // The wait may already be over (a give-up, a trigger that replays), or a listener of the
    // recovery events may have closed the connection while we subscribed.
    if (this.finished_) wait.unsubscribe();
    else if (!wait.closed) this.waitSubscription_ = wait;
  }

  /**
   * Reads the link until it ends: directly where it has the read seam ({@link Link.read_}: the
   * connection is its reader, no subscription), through `messages$` (and `pongs$`) otherwise.
   * The heartbeat is a timer fed by the reader, not an operator on the stream.
   */
  private readLink_(link: Link<In, Out>): void {
    const beat = this.options.heartbeat;
    if (beat && (!beat.ifSupported || beat.ping || link.ping)) {
      this.heartbeat_ = new HeartbeatTimer(beat, this.options.scheduler, this);
    }
    this.reading_ = link;
    if (link.read_) {
      link.read_(this);
      return;
    }
    const subscription = link.messages$.subscribe({
      next: (value) => this.linkMessage_(value),
      error: (error) => this.linkFailed_(error),
      complete: () => this.linkEnded_(),
    });
    // The link may have ended while we subscribed.
    if (this.reading_ !== link) return;
    this.linkSubscription_ = subscription;
    if (link.pongs$) subscription.add(link.pongs$.subscribe(() => this.linkPong_()));
  }
  private reading_: Link<In, Out> | undefined;
  private heartbeat_: HeartbeatTimer | undefined;

  /** Stops reading the link (it ended, failed, or the connection let it go). */
  private stopReading_(): void {
    this.heartbeat_?.stop_();
    this.heartbeat_ = undefined;
    this.linkSubscription_?.unsubscribe();
    this.linkSubscription_ = undefined;
    this.reading_?.read_?.(undefined);
    this.reading_ = undefined;
  }

  /** @internal A message from the link being read (see {@link LinkReader}). */
  linkMessage_(value: In): void {
    this.heartbeat_?.seen_();
    // Traffic from the peer ends a failure being recovered from (RecoveryCore.markProgress).
    // Sends that were merely written are no proof: the kernel takes bytes even from a server
    // that accepts and then drops every connection, which must keep spending the budget.
    this.onProgress_(this.reading_!);
    const sink = this.sink_;
    fanOut(this.incoming_, value, sink?.received_, sink);
  }

  /** @internal The peer answered a ping: a sign of life for the heartbeat, and progress on a recovered link. */
  linkPong_(): void {
    this.heartbeat_?.seen_();
    this.onProgress_(this.reading_!);
  }

  /** @internal The link failed (or the heartbeat found it silent, see {@link HeartbeatOwner}): recover. */
  linkFailed_(error: unknown): void {
    const link = this.reading_!;
    this.stopReading_();
    this.onLinkDown_(link, error);
    if (!this.finished_) this.onFailure_(error);
  }

  /** @internal Links end only after our own close(); one that ends by itself was closed by the peer. */
  linkEnded_(): void {
    const link = this.reading_;
    this.stopReading_();
    if (this.currentLink_ === link) {
      this.shutdown_(
        'peer',
        undefined,
        new NotOpenError('the link closed before the send was confirmed'),
        true,
      );
    }
  }

  /** @internal The heartbeat's ping (see {@link HeartbeatOwner}). */
  beatPing_(): void {
    const link = this.reading_!;
    if ((this.options.heartbeat as AttachHeartbeatOptions<In, Out>).ping) this.sendPing_(link);
    else link.ping?.();
  }

  private openLink_(signal: AbortSignal): Promise<Link<In, Out> | undefined | null> {
    if (!this.core_.recovering) return this.transport.open(signal);
    const state = this.state_;
    const lastError = state.status === 'recovering' ? state.lastError : this.core_.failure;
    const context: RecoveryContext<In, Out, H> = {
      attempt: this.core_.attempt,
      maxAttempts: this.core_.maxAttemptsPerFailure,
      error: this.core_.failure,
      lastError,
      previousLink: this.lastLink_,
      handle: this.options.handle as H,
      reopen: () => this.transport.open(signal),
      signal,
    };
    try {
      // The recover function is read when used, not kept in a field per connection.
      return Promise.resolve((this.options.recover ?? defaultRecover)(context));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private onLinkOpen_(link: Link<In, Out>): void {
    this.generation_++;
    // This link's confirmation function is made at its first write: an idle link has none.
    this.confirm_ = undefined;
    const recovered = this.core_.recovering;
    this.currentLink_ = link;
    this.lastLink_ = link;
    this.linkUpAt_ = this.scheduler_.now();
    // Until the waiting sends are flushed below, a send made from a listener of the events that
    // follow waits behind them instead of jumping the queue.
    this.flushing_ = 2;
    this.setState_({
      status: this.core_.suspended ? 'suspended' : 'open',
      recoveries: this.core_.recoveries,
      recoveriesLeft: this.core_.recoveriesLeft,
    });
    this.emit_({ type: 'link-open', link, recovered });
    // A listener of the state or of that event may have closed or detached the connection.
    if (this.finished_) return;
    this.core_.markUp();
    // A replaying link is open only once its session was welcomed by the server (created or
    // resumed): the server answered.
    if (link.replaysSends) this.onProgress_(link);
    this.readLink_(link);
    // Unless the link died while we subscribed to it (then there is nothing to flush to), ask for
    // a pong at once (read as progress by linkPong_), so that a client that only sends still
    // learns the server is alive (written sends prove nothing).
    if (this.currentLink_ === link && this.core_.recovering && !link.replaysSends && link.ping) {
      try {
        link.ping();
      } catch {
        // A ping that cannot be written means the link is going: its messages$ reports it.
      }
    }
    // Re-run what the broken link did not confirm, in the original order, before anything new.
    this.flush_(link);
  }

  /**
   * Ends a flush or a write on `link` (see {@link flushing_}): writes every send waiting for it,
   * if one may be, in order, in one loop that does not nest. The queue is asked for the oldest
   * waiting send afresh after each write, so sends queued by the writes themselves wait behind
   * the message being written, then follow it, in order. Does nothing on a link that is gone.
   */
  private flush_(link: Link<In, Out>): void {
    if (this.flushing_ > 1) {
      // (A write leaves its entry waiting only if its link went down meanwhile: the loop ends then.)
      for (
        let entry = this.outbox_.firstWaiting_();
        entry && this.currentLink_ === link;
        entry = this.outbox_.firstWaiting_()
      ) {
        this.write_(link, entry);
      }
    }
    if (this.currentLink_ === link) this.flushing_ = 0;
  }

  /**
   * Traffic from the peer on a recovered link (a message, a pong, a welcomed session): the
   * failure is over once the link has been up {@link MIN_PROGRESS_UPTIME_MS}, now or when it has.
   */
  private onProgress_(link: Link<In, Out>): void {
    if (!this.core_.recovering || this.progressTimer_ !== undefined) return;
    const wait = MIN_PROGRESS_UPTIME_MS - (this.scheduler_.now() - this.linkUpAt_);
    if (wait <= 0) {
      this.core_.markProgress();
      return;
    }
    this.progressTimer_ = this.scheduler_.schedule(() => {
      this.progressTimer_ = undefined;
      if (this.currentLink_ === link) this.core_.markProgress();
    }, wait);
  }
  private progressTimer_: Subscription | undefined;
  private linkUpAt_ = 0;
  /**
   * Sends are being written on the open link, so a send made meanwhile waits behind them instead
   * of overtaking them (0: none): 1 while one send is written ({@link writeNew_}), 2 once sends
   * may wait behind it, and from a link's open until the sends waiting for it are written.
   * @internal Read by the drop-in socket that owns the connection (see {@link PostingConnection}).
   */
  flushing_: 0 | 1 | 2 = 0;
  private get scheduler_() {
    return this.options.scheduler ?? monotonicScheduler;
  }

  private write_(link: Link<In, Out>, entry: OutgoingEntry<Out>, payload: Out = entry.data): void {
    const generation = this.generation_;
    entry.generation = generation;
    entry.written_ = true;
    // Read once: on a WebSocket link it is a getter.
    const sendWith = link.sendWith;
    try {
      if (sendWith) {
        // No promise per send: the link calls back (in write order, possibly once per batch).
        sendWith.call(link, payload, this.confirm_ ?? this.confirmFor_(link), entry);
        return;
      }
      const replays = link.replaysSends;
      link.send(entry.data).then(
        // (A confirmation from a link that has since broken is stale: see onConfirm_.)
        () => this.onConfirm_(generation, replays, undefined, entry),
        // Each rejection knows its send: a refusal after close() is for that one alone (see
        // onPlainRejection_), whatever order a wrapper that writes after an await wrote them in.
        (error) =>
          replays
            ? this.onReplayingRejection_(entry, generation, error)
            : this.onPlainRejection_(generation, error, entry),
      );
    } catch (error) {
      // Our links never throw here (a failed write rejects, or errors `messages$`); a wrapper's
      // own `send` may: it refused this message (Link.send). Rejected with that error, and not
      // written again; the link stays up and the sends behind it go on (a throw out of a flush
      // would leave them waiting until the link dropped). Final, as a replaying link's rejection.
      this.onReplayingRejection_(entry, generation, error);
    }
  }

  /**
   * A replaying link's session has the last word on its sends: its rejection (a lost session) is
   * final. So is a link's refusal by a throw (see write_).
   */
  private onReplayingRejection_(entry: OutgoingEntry<Out>, generation: number, error: unknown): void {
    if (entry.generation !== generation || entry.settled) return;
    this.outbox_.settle(entry);
    entry.reject(error);
  }

  /** A link's {@link Link.sendWith} confirmation for the current link, made once per link. */
  private confirm_: ((error: unknown, entry: object) => void) | undefined;

  /** {@link confirm_} for the current link (of the current generation), at its first write. */
  private confirmFor_(link: Link<In, Out>): (error: unknown, entry: object) => void {
    const generation = this.generation_;
    const replays = link.replaysSends;
    this.confirm_ = (error, entry) =>
      this.onConfirm_(generation, replays, error, entry as OutgoingEntry<Out>);
    return this.confirm_;
  }

  /** A send written with {@link Link.sendWith} on the link of `generation` was confirmed or failed. */
  private onConfirm_(
    generation: number,
    replays: boolean | undefined,
    error: unknown,
    entry: OutgoingEntry<Out>,
  ): void {
    if (error === undefined) {
      // A confirmation from a link that has since broken is stale: the entry was requeued and
      // will be confirmed (or rejected) by the link it is rewritten on.
      if (entry.generation !== generation || entry.settled) return;
      this.outbox_.settle(entry);
      entry.resolve();
    } else if (replays) this.onReplayingRejection_(entry, generation, error);
    else this.onPlainRejection_(generation, error, entry);
  }

  /**
   * A plain link's send rejected. A failed write on a plain link means the link is failing: its
   * messages$ reports the error and the entries are rewritten after recovery. Only after
   * close()/detach() is a rejection final, since nothing will write the entries again; the link
   * that kept them has broken, so every send still waiting on it fails.
   * But a link refuses with a {@link NotOpenError} only a write asked of it once closed: `entry`,
   * a send that close() cut off before it reached the link (close() called from inside its own
   * write, a wrapper's `send` or `sendWith`; or a wrapper that writes after an await). That one
   * alone was never written, and rejects as close() rejects those; the others keep their own
   * confirmations (they were on the wire: a false rejection would have a caller that retries send
   * them twice).
   */
  private onPlainRejection_(generation: number, error: unknown, entry: OutgoingEntry<Out>): void {
    if (!this.finished_ || generation !== this.keptGeneration_) return;
    if (error instanceof NotOpenError) {
      this.onReplayingRejection_(entry, generation, this.finalError_);
      return;
    }
    for (const failed of this.outbox_.writtenOn(generation)) {
      this.outbox_.settle(failed);
      failed.reject(error);
    }
  }

  private sendPing_(link: Link<In, Out>): void {
    try {
      const ping = (this.options.heartbeat as { ping: (link: Link<In, Out>) => unknown }).ping(link);
      // A ping that fails to write means the link is going; the heartbeat or the link reports it.
      if (ping instanceof Promise) ping.catch(() => {});
    } catch (error) {
      // The user's ping function threw: its own bug, not the link's. Reported, and the heartbeat
      // goes on (a link that really is silent still times out).
      this.emit_({ type: 'ping-failed', error });
    }
  }

  private onLinkDown_(link: Link<In, Out>, error: unknown): void {
    if (this.currentLink_ === link) this.currentLink_ = undefined;
    this.flushing_ = 0;
    this.progressTimer_?.unsubscribe();
    this.progressTimer_ = undefined;
    if (!link.replaysSends) this.outbox_.requeueAll_();
    // A heartbeat timeout lands here with the link still up: closing a resumable link would end
    // its session, so it is abandoned instead and the session resumes on the recovered link.
    if (link.abandon) link.abandon();
    else link.close();
    // Not before the sends waiting now: a send from a listener of the event waits behind them.
    this.holding_ = false;
    this.emit_({ type: 'link-down', error });
    // What waits for the next link goes to the transport if it takes it (durable with a store).
    if (!this.finished_) {
      this.holding_ = true;
      // (Each send the transport holds stops waiting: the next one is then the oldest.)
      for (let entry = this.outbox_.firstWaiting_(); entry; entry = this.outbox_.firstWaiting_()) {
        if (!this.hold_(entry)) {
          this.holding_ = false;
          break;
        }
      }
    }
  }

  /** @internal What the recovery core tells (see {@link RecoveryListener}). */
  recoveryEvent_(event: RecoveryEvent): void {
    switch (event.type) {
      case 'recovering':
        this.setState_({
          status: 'recovering',
          attempt: event.attempt,
          maxAttempts: event.maxAttempts,
          delayMs: event.delayMs,
          recoveriesLeft: event.recoveriesLeft,
          error: event.error,
          lastError: event.lastError,
        });
        break;
      case 'recovered': {
        const state = this.state_;
        if (state.status === 'open' || state.status === 'suspended') {
          this.setState_({
            ...state,
            recoveries: event.recoveries,
            recoveriesLeft: this.core_.recoveriesLeft,
          });
        }
        break;
      }
      case 'gave-up':
        this.lastGiveUp_ = event.reason;
        break;
    }
    this.emit_(event);
  }

  /** A new state, to the sink first, then `state$`'s subscribers (the first state excepted). */
  private tellState_(state: ConnectionState): void {
    this.state_ = state;
    const sink = this.sink_;
    const fanout = this.stateView_?.fanout_;
    // Stored before the sink is told: a subscriber that joins from its handler gets it at once.
    if (fanout) fanout.value = state;
    fanOut(fanout, state, sink?.stateChanged_, sink);
  }

  private emit_(event: ConnectionEvent<In, Out>): void {
    this.events_?.next(event);
    this.diagnostics_.event(event);
  }

  private setState_(state: ConnectionState): void {
    if (this.finished_) return;
    this.tellState_(state);
    this.diagnostics_.state(state, this.outbox_.size);
  }

  /** The pipeline ended by itself: recovery gave up, an irrecoverable error, or the link completed. */
  private finish_(reason: CloseReason, error?: unknown): void {
    this.shutdown_(reason, error, error, true);
  }

  private shutdown_(reason: CloseReason, error: unknown, pendingError: unknown, fromPipeline: boolean): void {
    if (this.finished_) return;
    this.finished_ = true;
    this.finalError_ = error ?? pendingError;
    this.waitSubscription_?.unsubscribe();
    this.waitSubscription_ = undefined;
    this.stopReading_();
    this.progressTimer_?.unsubscribe();
    this.progressTimer_ = undefined;
    this.core_.close();
    this.attemptAbort_?.abort(pendingError);
    this.attemptAbort_ = undefined;
    // Sends already written on a link that stays open (close/detach) settle through that link's
    // confirmation; only the ones that never reached a link are rejected.
    const keep = this.currentLink_ && !fromPipeline ? this.generation_ : undefined;
    this.keptGeneration_ = keep;
    if (fromPipeline) this.currentLink_?.close();
    this.currentLink_ = undefined;
    for (const entry of this.outbox_.drain(keep)) entry.reject(pendingError);
    const closed: ClosedState =
      error === undefined ? { status: 'closed', reason } : { status: 'closed', reason, error };
    this.tellState_(closed);
    this.diagnostics_.state(closed, this.outbox_.size);
    this.stateView_?.fanout_.complete();
    this.events_?.complete();
    // messages$ completes rather than errors: a subscriber without an error handler must not
    // crash the process when a server goes away. The error is on `state$` and `closed`.
    this.incoming_?.complete();
    this.resolveClosed_?.(closed);
    // Ended by itself (not close()/detach()): the transport keeps what it stored but lets it go,
    // so a new connection in this process can take it (a client store's lock is released).
    if (fromPipeline) this.transport.release?.();
  }
}

/** The send `enqueue` is taking, for {@link takeSend}; cleared by it. */
let taking: { take_: HAConnectionImpl<unknown, unknown, unknown>['take_'] } | undefined;
let takingData: unknown;
let takingSignal: AbortSignal | undefined;
/**
 * What `take_` refused (a `QueueOverflowError`), read and cleared by its caller as soon as it
 * returns: a module variable rather than a field of every connection.
 */
let refused: unknown;

/** Throws what `take_` just refused, if it refused the send (see {@link refused}), and clears it. */
function throwRefused(): void {
  const error = refused;
  if (error !== undefined) {
    refused = undefined;
    throw error;
  }
}

/** The executor of every `enqueue`'s promise (called synchronously by `new Promise`). */
function takeSend(resolve: () => void, reject: (error: unknown) => void): void {
  const connection = taking!;
  const data = takingData;
  const signal = takingSignal;
  taking = takingData = takingSignal = undefined;
  connection.take_(data, resolve, reject, signal);
}

/**
 * Every posted entry's `reject`, one per connection: called as `entry.reject(error)`, so `this`
 * is the entry.
 */
function postRejectFor<Out>(connection: { sink_: PostSink<Out, never> | undefined }) {
  return function (this: OutgoingEntry<Out>, error: unknown) {
    connection.sink_?.sendFailed_(this.data, error);
  };
}

/**
 * `state$`: the state fanout's values (the current one first, as from a `BehaviorSubject`), and
 * `value`, without `next` (the fanout stays ours).
 */
class StateView extends FanoutObservable<ConnectionState, ValueFanout<ConnectionState>> {
  get value(): ConnectionState {
    return this.fanout_.value;
  }
}
