import type { BodyReader } from '@lifeline/core/internal';

// undici's dispatch handler (the callback form that its fetch passes to a dispatcher) and the
// parts of a dispatcher that fetch uses. Typed here, loosely: undici's own types describe both
// handler forms at once.
type RawHeaders = ReadonlyArray<Uint8Array | string | ReadonlyArray<Uint8Array | string>>;

export interface DispatchHandler {
  onConnect?(abort: (reason?: unknown) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onUpgrade?(statusCode: number, headers: RawHeaders, socket: unknown): void;
  onHeaders?(statusCode: number, headers: RawHeaders, resume: () => void, statusText: string): boolean;
  onData?(chunk: Uint8Array): boolean;
  onComplete?(trailers: unknown): void;
  onError?(error: unknown): void;
}

interface DispatchOptions {
  readonly method?: string;
}

/** What undici's fetch needs of a dispatcher: `dispatch`, and `isMockActive` (read by its MockAgent support). */
export interface TapDispatcher {
  dispatch(options: DispatchOptions, handler: DispatchHandler): boolean;
  readonly isMockActive?: boolean;
}

/**
 * Whether `handler` is in the callback form the tap wraps (`onHeaders` and `onData`, as undici 7's
 * fetch hands its dispatcher). Any other form (undici's newer `onResponseStart`/`onResponseData`
 * one, say) is dispatched untapped.
 */
export function isCallbackHandler(handler: unknown): handler is DispatchHandler {
  const h = handler as DispatchHandler | null;
  return typeof h?.onHeaders === 'function' && typeof h.onData === 'function';
}

const UNDECIDED = 0;
const CLAIMED = 1;
const RELEASED = 2;

/**
 * The body bytes of one undici response, taken from the dispatcher's `onData` before undici's
 * fetch builds its body stream from them (a Node stream, then a web stream), so that haFetch's
 * resumable body is the one web stream a chunk passes through.
 *
 * Until haFetch decides, chunks wait here, at most one beyond what was asked for (the parser is
 * paused while one waits; a dispatcher that ignores the pause, as undici's MockAgent does with
 * the reply it already holds, queues what it delivers). `claim()` makes this the body's reader; `release()` hands everything
 * to fetch's own handler, in order, and from then on gets out of the way, so a response haFetch
 * returns untouched is fetch's, byte for byte. Only a 2xx with a body and no `Content-Encoding`
 * is tapped: fetch decodes encoded bodies, and a tapped one would skip its decoders.
 */
export class BodyTap implements BodyReader {
  readonly handler: DispatchHandler;
  /** True when this response's body bytes come here rather than to fetch's handler. */
  tapping = false;
  private state = UNDECIDED;
  private resumeParser: (() => void) | undefined;
  private paused = false;
  private queue: Uint8Array[] = [];
  private waiter:
    | { resolve(result: ReadableStreamReadResult<Uint8Array>): void; reject(error: unknown): void }
    | undefined;
  private ended = false;
  private trailers: unknown;
  private failed = false;
  private failure: unknown;
  /** The reader of fetch's own (empty) body, held from the claim on: see claim(). */
  private fetchBody: ReadableStreamDefaultReader<Uint8Array> | undefined;

  constructor(
    private readonly target: DispatchHandler,
    method: string | undefined,
  ) {
    const mayTap = method !== 'HEAD' && method !== 'CONNECT';
    this.handler = {
      onConnect: (abort, context) => target.onConnect?.(abort, context),
      onResponseStarted: () => target.onResponseStarted?.(),
      onUpgrade: (statusCode, headers, socket) => target.onUpgrade?.(statusCode, headers, socket),
      onHeaders: (statusCode, headers, resume, statusText) => {
        if (mayTap && statusCode >= 200 && statusCode < 300 && statusCode !== 204 && statusCode !== 205) {
          this.tapping = !hasContentEncoding(headers);
          this.resumeParser = resume;
        }
        return target.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
      },
      onData: (chunk) =>
        this.tapping && this.state !== RELEASED ? this.take(chunk) : (target.onData?.(chunk) ?? true),
      onComplete: (trailers) => {
        if (!this.tapping || this.state === RELEASED) return target.onComplete?.(trailers);
        this.ended = true;
        this.trailers = trailers;
        if (this.queue.length === 0) this.settleWaiter();
        // Claimed: fetch's own body ends, empty. Undecided: told at the release or the claim.
        if (this.state === CLAIMED) target.onComplete?.(trailers);
      },
      onError: (error) => {
        if (!this.tapping || this.state === RELEASED) return target.onError?.(error);
        this.failed = true;
        this.failure = error;
        if (this.queue.length === 0) this.settleWaiter();
        if (this.state === CLAIMED) target.onError?.(error);
      },
    };
  }

  /** Makes this the reader of the response's body. `response` is the one fetch resolved with. */
  claim(response: Response): BodyReader {
    this.state = CLAIMED;
    // Locked, fetch's body stream is never cancelled by undici's "Response object has been
    // garbage collected" finalizer, which would abort the request under our reads; cancelling
    // this reader is how the request is aborted (fetch's own path: terminate, free the socket).
    this.fetchBody = response.body?.getReader();
    this.forwardEnd();
    return this;
  }

  /** Hands every waiting chunk, then the end or the error, to fetch's handler, and steps aside. */
  release(): void {
    if (this.state !== UNDECIDED) return;
    this.state = RELEASED;
    const queue = this.queue;
    this.queue = [];
    let wantsMore = true;
    for (const chunk of queue) wantsMore = this.target.onData?.(chunk) ?? true;
    // fetch's body resumes the parser itself when it wants more than it was given.
    if (!this.forwardEnd() && this.paused && wantsMore) this.resume();
  }

  /** Tells fetch's handler the end or the error the response already had; false if it had neither. */
  private forwardEnd(): boolean {
    if (this.ended) this.target.onComplete?.(this.trailers);
    else if (this.failed) this.target.onError?.(this.failure);
    else return false;
    return true;
  }

  read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    const value = this.queue.shift();
    if (value !== undefined) {
      if (this.queue.length === 0) this.resume();
      return Promise.resolve({ done: false, value });
    }
    if (this.failed) return Promise.reject(terminated(this.failure));
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    const read = new Promise<ReadableStreamReadResult<Uint8Array>>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    this.resume();
    return read;
  }

  cancel(reason?: unknown): Promise<void> {
    this.queue = [];
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve({ done: true, value: undefined });
    return this.fetchBody?.cancel(reason) ?? Promise.resolve();
  }

  private take(chunk: Uint8Array): boolean {
    if (chunk.byteLength === 0) return true;
    // A copy, as fetch makes: the chunk is a view into the socket's read buffer, which a byte
    // stream would take over (detach) whole.
    const copy = new Uint8Array(chunk);
    const waiter = this.waiter;
    if (waiter !== undefined && this.queue.length === 0) {
      this.waiter = undefined;
      waiter.resolve({ done: false, value: copy });
      return true;
    }
    this.queue.push(copy);
    // One chunk waits at most: the parser stops until it is read (or released).
    this.paused = true;
    return false;
  }

  private resume(): void {
    // Ended or failed, the parser has moved on (or is gone): nothing of this response to resume.
    if (!this.paused || this.ended || this.failed) return;
    this.paused = false;
    this.resumeParser?.();
  }

  private settleWaiter(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    this.waiter = undefined;
    if (this.failed) waiter.reject(terminated(this.failure));
    else waiter.resolve({ done: true, value: undefined });
  }
}

/** The error fetch's body stream errors with when the response fails: `TypeError: terminated`, the cause attached. */
function terminated(error: unknown): TypeError {
  return new TypeError('terminated', { cause: error instanceof Error ? error : undefined });
}

function hasContentEncoding(headers: RawHeaders): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name === undefined || Array.isArray(name) || name.length !== 16) continue;
    const text = typeof name === 'string' ? name : Buffer.from(name as Uint8Array).toString('latin1');
    if (text.toLowerCase() === 'content-encoding') return true;
  }
  return false;
}
