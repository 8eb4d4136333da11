import { Subscription } from 'rxjs';
import type { RecoveryCore } from '../engine/recovery-core.js';
import { isFetchFailure, markFetchFailure } from '../policy/classify.js';
import type { RetryHint } from '../policy/retry-hint.js';
import { discardBody, discardReader } from './discard-body.js';

/** The most bytes held back while waiting for the end of an event or line (8 MiB). */
export const DEFAULT_MAX_HELD_BYTES = 8 * 1024 * 1024;

/**
 * One way of resuming a response body (byte ranges, event streams, NDJSON): it decides which
 * received bytes are safe to hand on, how to ask for the rest after a break, and whether a
 * response really continues the body.
 *
 * @example
 * ```ts
 * const resume: BodyResume = new RangeResume(response);
 * ```
 * @see RangeResume, EventStreamResume, NdjsonResume
 */
export interface BodyResume {
  /** Takes a chunk from the wire and hands on, through `deliver`, the bytes safe to deliver now. */
  push(chunk: Uint8Array, deliver: (bytes: Uint8Array) => void): void;
  /** The body ended cleanly: hands on what is held. Throws a recoverable error when the body is known to be short. */
  end(deliver: (bytes: Uint8Array) => void): void;
  /** A break: forgets the bytes held back (they will be received again); returns how many there were. */
  discard(): number;
  /** True when nothing is missing even though the body broke (it broke after its last byte). */
  readonly complete: boolean;
  /**
   * The least wait before any re-request, in ms, that the body itself asked for (an event
   * stream's `retry:` field); `undefined` for none. Handed to the recovery core as a retry hint.
   */
  readonly retryDelayMs?: number | undefined;
  /** The error to raise instead of resuming, when this body cannot be resumed; `cause` is the break. */
  refusal(cause: unknown): unknown;
  /** Turns a fresh copy of the original request into the request for the rest of the body. */
  resumeRequest(request: Request): Request;
  /**
   * Checks that `response` continues the body. Throws a typed error when it does not, an
   * `HttpStatusError` for a status that is not a continuation; returns false when the server
   * says there is nothing more (the body then ends cleanly).
   */
  accept(response: Response): boolean;
}

/** What the resumable body counts; read live through `response.lifeline`. */
export interface ResumableBodyStats {
  breaks: number;
  resumes: number;
  bytesDelivered: number;
  bytesDiscarded: number;
}

/**
 * How the resumable body reads the bytes of one response: the reader of its body stream, or a
 * platform's cheaper source of the same bytes (Node hands over undici's chunks without the body
 * stream in between). `read()` answers as `ReadableStreamDefaultReader.read()` does, rejecting
 * with the error the body stream would have errored with; `cancel()` gives the response up and
 * frees its connection.
 */
export interface BodyReader {
  /** The next chunk, or `done` at the body's end; rejects when the response fails. */
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  /** Gives the response up: no more chunks, its connection freed. */
  cancel(reason?: unknown): Promise<void>;
}

/** Options of {@link resumableBody}. */
export interface ResumableBodyOptions {
  /** The body of the first response. */
  readonly body: ReadableStream<Uint8Array>;
  /**
   * Reads a response's body instead of `body` and the continuations' `getReader()`: called with
   * the first response (when given) and with each continuation whose body is not null.
   * @default undefined (the body streams' own readers)
   */
  readonly readerOf?: ((response: Response) => BodyReader) | undefined;
  /** The first response, handed to `readerOf`. @default undefined */
  readonly response?: Response | undefined;
  readonly resume: BodyResume;
  /** The recovery core of this request: it decides whether and when to re-request. */
  readonly core: RecoveryCore;
  /** Sends the re-request built by `resume.resumeRequest`; `signal` aborts it. */
  readonly reopen: (signal: AbortSignal) => Promise<Response>;
  readonly stats: ResumableBodyStats;
  /** The caller's signal: aborting it errors the body with its reason and stops everything. @default undefined */
  readonly signal?: AbortSignal | undefined;
  /** Told of each break, before recovery is asked. @default undefined */
  readonly onBreak?: (error: unknown) => void;
  /** Told of each continuation that passed `resume.accept`. @default undefined */
  readonly onResumed?: () => void;
}

const FINISHED = Symbol('finished');

/**
 * A response body that survives breaks: when the body in hand fails, it asks the recovery core
 * whether and when to try again, re-requests the rest, checks the new response continues the
 * body, and carries on, so the reader sees one uninterrupted body or one typed error.
 *
 * @example
 * ```ts
 * const body = resumableBody({ body: response.body, resume, core, reopen, stats });
 * ```
 * @see createHAFetch, which builds the `resume` and `reopen` for each request.
 */
export function resumableBody(options: ResumableBodyOptions): ReadableStream<Uint8Array> {
  const { resume, core, stats, signal } = options;
  const readerOf = options.readerOf;
  // The reader of the response being read, in a holder of its own: see `dropped`.
  const held: HeldReader = {
    reader:
      readerOf !== undefined && options.response !== undefined
        ? readerOf(options.response)
        : options.body.getReader(),
  };
  let finished = false;
  let controller!: ReadableByteStreamController;
  let delivered = 0;
  // Aborts the re-request in flight when the consumer cancels or the caller aborts.
  const abort = new AbortController();
  let waiting: { subscription: Subscription; reject: (error: unknown) => void } | undefined;
  // Set by a continuation, cleared by its first delivered byte: the link carried traffic.
  let progressPending = false;

  const deliver = (bytes: Uint8Array): void => {
    const length = bytes.byteLength;
    if (length === 0) return;
    delivered++;
    stats.bytesDelivered += length;
    if (progressPending) {
      progressPending = false;
      // New bytes delivered: this failure is over, however soon the next break comes.
      core.markProgress();
    }
    // A byte stream takes over the chunk's buffer. A chunk from a body reader owns its buffer
    // (fetch bodies hand out fresh ones), but a view into a larger or shared buffer, as a pooled
    // Buffer is, must not take its neighbours along: those are copied, by the constructor (a Node
    // Buffer's own `slice` is a view: the stream would detach Node's shared pool).
    controller.enqueue(ownsItsBuffer(bytes) ? bytes : new Uint8Array(bytes));
  };

  const finish = (): boolean => {
    if (finished) return false;
    finished = true;
    signal?.removeEventListener('abort', onAbort);
    const wait = waiting;
    waiting = undefined;
    wait?.subscription.unsubscribe();
    // Settles a pull() parked in a backoff wait; the body is already over, so nothing more happens.
    wait?.reject(FINISHED);
    core.close();
    return true;
  };

  const fail = (error: unknown): void => {
    if (!finish()) return;
    const current = held.reader;
    held.reader = undefined;
    discardReader(current, error);
    abort.abort(error);
    controller.error(error);
  };

  const closeBody = (): void => {
    controller.close();
    // A BYOB read still pending is only answered (done) once its view is handed back empty.
    controller.byobRequest?.respond(0);
  };

  function onAbort(): void {
    fail(signal?.reason);
  }

  /** Resolves when the core says to try again; rejects with the error to propagate. */
  const retryAfter = (error: unknown): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      // Created first: the core reports 'recovering' while subscribing, and a listener that
      // aborts right then must find a subscription to close.
      const subscription = new Subscription();
      waiting = { subscription, reject };
      subscription.add(
        core.fail(withRetryDelay(error, resume.retryDelayMs)).subscribe({
          next: () => {
            waiting = undefined;
            resolve();
          },
          error: (propagated) => {
            waiting = undefined;
            reject(originalOf(propagated));
          },
        }),
      );
    });

  /** Replaces the broken body with a continuation. Returns false when the body ended instead. */
  const recover = async (error: unknown): Promise<boolean> => {
    stats.breaks++;
    stats.bytesDiscarded += resume.discard();
    held.reader = undefined;
    options.onBreak?.(error);
    if (resume.complete) return false;
    const refusal = resume.refusal(error);
    if (refusal !== undefined) throw refusal;
    let lastError = error;
    for (;;) {
      await retryAfter(lastError);
      if (finished) return true;
      let response: Response;
      try {
        response = await options.reopen(abort.signal);
      } catch (reopenError) {
        if (finished) return true;
        lastError = markFetchFailure(reopenError);
        continue;
      }
      if (finished) {
        discardBody(response);
        return true;
      }
      let more: boolean;
      try {
        more = resume.accept(response);
      } catch (rejection) {
        discardBody(response);
        lastError = rejection;
        continue;
      }
      if (!more || response.body === null) {
        discardBody(response);
        return false;
      }
      held.reader = readerOf === undefined ? response.body.getReader() : readerOf(response);
      stats.resumes++;
      core.markUp();
      progressPending = true;
      options.onResumed?.();
      return true;
    }
  };

  if (signal?.aborted) {
    // The caller aborted between the response and the wrapping: honour it at the first read.
    queueMicrotask(onAbort);
  } else {
    signal?.addEventListener('abort', onAbort, { once: true });
  }

  /** A break: resume, or end the body when nothing is missing, or fail with what must propagate. */
  const onBreak = async (error: unknown): Promise<void> => {
    try {
      if (await recover(error)) return;
      resume.end(deliver);
      if (finish()) closeBody();
    } catch (propagated) {
      fail(propagated);
    }
  };

  const stream = new ReadableStream({
    start(c: ReadableByteStreamController) {
      controller = c;
    },
    async pull() {
      const before = delivered;
      // Read until something was delivered: a chunk may hold only part of an event or line.
      while (!finished && delivered === before) {
        const current = held.reader;
        if (current === undefined) return;
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await current.read();
        } catch (error) {
          if (!finished) await onBreak(markFetchFailure(error));
          continue;
        }
        if (finished) return;
        if (result.done) {
          try {
            resume.end(deliver);
          } catch (short) {
            // Ended short of its known length: a break like any other.
            await onBreak(short);
            continue;
          }
          if (finish()) closeBody();
          return;
        }
        try {
          resume.push(result.value, deliver);
        } catch (error) {
          fail(error);
        }
      }
    },
    cancel(reason) {
      const current = held.reader;
      held.reader = undefined;
      if (!finish()) return;
      abort.abort(reason);
      return current?.cancel(reason).catch(ignoreCancelled);
    },
    // A byte stream, as fetch bodies are: BYOB readers work, and a chunk passes to the reader
    // without a copy. No read-ahead (high-water mark 0): the body below buffers already.
    type: 'bytes',
  });
  // A body its consumer drops unread (or stops reading and drops) would hold its response's
  // connection for good: the response below is locked by our read, so fetch's own clean-up of a
  // collected, unread body skips it. When the stream is collected, its reader is cancelled.
  dropped?.register(stream, held);
  return stream;
}

/** The reader of a resumable body's current response: what {@link dropped} cancels. */
interface HeldReader {
  reader: BodyReader | undefined;
}

/**
 * Cancels the reader of each resumable body that was garbage collected, freeing its connection
 * (as undici's fetch does for a collected Response whose body was never read). Holds the
 * {@link HeldReader} only, never the stream or its closures. `undefined` where the runtime has no
 * `FinalizationRegistry`.
 */
const dropped: FinalizationRegistry<HeldReader> | undefined =
  typeof FinalizationRegistry === 'function'
    ? /* @__PURE__ */ new FinalizationRegistry<HeldReader>((held) => {
        const reader = held.reader;
        held.reader = undefined;
        discardReader(reader, undefined);
      })
    : undefined;

function ownsItsBuffer(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  const buffer = bytes.buffer;
  return (
    bytes.byteOffset === 0 &&
    bytes.byteLength === buffer.byteLength &&
    (typeof SharedArrayBuffer === 'undefined' || !(buffer instanceof SharedArrayBuffer))
  );
}

/** Hinted views handed to the recovery core → the error each stands for. */
const hintedViews = new WeakMap<object, unknown>();

/**
 * `error` carrying at least `delayMs` as its retry hint. The break is the runtime's own error,
 * which is neither ours to mutate nor to wrap (a wrapper would change its classification and what
 * the caller finally sees), so the core gets a view: an object whose prototype is the error, so
 * `instanceof`, `code`, `cause` and `message` read through, with its own `retryAfterMs`. The view
 * is swapped back for the error itself before anything reaches the caller.
 */
function withRetryDelay(error: unknown, delayMs: number | undefined): unknown {
  if (delayMs === undefined || !(delayMs > 0) || typeof error !== 'object' || error === null) return error;
  const own = (error as RetryHint).retryAfterMs;
  if (typeof own === 'number' && own >= delayMs) return error;
  const view: object = Object.create(error, { retryAfterMs: { value: delayMs, enumerable: true } });
  if (isFetchFailure(error)) markFetchFailure(view);
  hintedViews.set(view, error);
  return view;
}

function originalOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && hintedViews.has(error)
    ? hintedViews.get(error)
    : error;
}

/**
 * A consumer's `cancel()` of the body: the reader being cancelled may already have failed (that
 * is why the body is being given up); the consumer asked for the end, which it gets either way.
 */
function ignoreCancelled(): void {}
