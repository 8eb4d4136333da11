import { noop, Subscription } from 'rxjs';
import { HttpStatusError, InvalidOptionError } from '../engine/errors.js';
import { checkRecoveryOptions, count, fn, oneOf } from '../engine/options.js';
import { RecoveryCore, type RecoveryEvent, type RecoveryOptions } from '../engine/recovery-core.js';
import { markFetchFailure } from '../policy/classify.js';
import { discardBody } from './discard-body.js';
import { EventStreamResume } from './event-stream-resume.js';
import { type NdjsonCursor, NdjsonResume } from './ndjson-resume.js';
import { RangeResume } from './range-resume.js';
import {
  type BodyReader,
  type BodyResume,
  DEFAULT_MAX_HELD_BYTES,
  type ResumableBodyStats,
  resumableBody,
} from './resumable-body.js';
import { httpStatusError } from './retry-after.js';

/** How a broken body is continued. */
export type ResumeMode = 'bytes' | 'event-stream' | 'ndjson' | 'none';

/** A fetch function: the platform's, undici's, or any wrapper with fetch's signature. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Methods sent again after a failure without `retryNonIdempotent` (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'PUT',
  'DELETE',
  'TRACE',
]);

/** Media types resumed as NDJSON in `'auto'` mode (when a cursor is given). */
export const NDJSON_MEDIA_TYPES: ReadonlySet<string> = new Set(['application/x-ndjson', 'application/jsonl']);

/** Named default of {@link HAFetchRequestOptions.resume}. */
export const DEFAULT_RESUME_MODE = 'auto';

/** What `haFetch` reports beside the recovery steps of {@link RecoveryEvent}. */
export type HAFetchEvent =
  | RecoveryEvent
  | {
      /** The response body failed mid-stream. */
      readonly type: 'break';
      readonly error: unknown;
      readonly bytesDelivered: number;
      /** Bytes received but held back (part of an event or line), dropped and requested again. */
      readonly bytesDiscarded: number;
    }
  | { readonly type: 'resumed'; readonly resumes: number; readonly bytesDelivered: number };

/** Options that may be set per request, in `init.lifeline`, over those given to {@link createHAFetch}. */
export interface HAFetchRequestOptions extends RecoveryOptions {
  /**
   * How a broken body is resumed. `'auto'` picks from the response: `text/event-stream` →
   * `'event-stream'`; `application/x-ndjson` or `application/jsonl` → `'ndjson'` when a `cursor`
   * is given, else `'none'`; any other response to a GET → `'bytes'`; anything else → `'none'`.
   * `'none'` returns the response untouched: a break reaches the reader as with plain fetch.
   * @default 'auto'
   */
  resume?: 'auto' | ResumeMode;
  /**
   * Event streams: when the server ends the response cleanly, re-request it with `Last-Event-ID`
   * (after the stream's `retry:` time and the backoff) and carry on in the same body, as
   * `EventSource` does; a `204 No Content` answer ends the body. Each re-request is one attempt
   * under the recovery budgets; one that delivers events ends the failure.
   * @default false
   * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#sse-processing-model
   */
  reconnectOnEnd?: boolean;
  /** Where an NDJSON stream is and how to ask for the lines after it. Required by `resume: 'ndjson'`. @default undefined */
  cursor?: NdjsonCursor;
  /**
   * Send non-idempotent requests (POST, PATCH...) again too. Only for endpoints that tolerate a
   * request arriving twice. A request whose body is a stream is never sent again.
   * @default false
   */
  retryNonIdempotent?: boolean;
  /**
   * Event-stream and NDJSON modes hold back the bytes of an unfinished event or line; more than
   * this errors the body with a `FrameTooLargeError`. An integer ≥ 1.
   * @default {@link DEFAULT_MAX_HELD_BYTES} (8 MiB)
   */
  maxHeldBytes?: number;
  /** Told of every retry, break and resume. @default undefined */
  onEvent?: (event: HAFetchEvent) => void;
}

/** Options of {@link createHAFetch}. */
export interface HAFetchOptions extends HAFetchBaseOptions {
  /** The fetch to make highly available (`globalThis.fetch`, undici's `fetch`...). Required. */
  fetch: FetchFunction;
}

/** The options of {@link createHAFetch} but `fetch`, which a platform package may supply. */
export interface HAFetchBaseOptions extends HAFetchRequestOptions {
  /** Builds the re-requests; must be the class `fetch` accepts. @default globalThis.Request */
  Request?: typeof Request;
  /** Wraps resumable bodies; best the class `fetch` returns. @default globalThis.Response */
  Response?: typeof Response;
}

/** What a platform package may plug into {@link createHAFetch} beside the options. */
export interface HAFetchPlatform {
  /**
   * Reads the body of each response of `fetch` that haFetch resumes (the first and every
   * continuation) instead of `response.body.getReader()`: Node's reads undici's chunks without
   * the body stream in between, so the caller's body is the only web stream per chunk.
   * @default undefined (the body stream's reader)
   */
  readonly readerOf?: ((response: Response) => BodyReader) | undefined;
}

/** fetch's `init`, plus per-request Lifeline options. */
export interface HAFetchInit extends RequestInit {
  /** Overrides the options given to {@link createHAFetch} for this request. */
  lifeline?: HAFetchRequestOptions;
}

/** What happened to one `haFetch` call; the counts are live while the body streams. */
export interface HAFetchInfo {
  /** How the body resumes; `'none'` when it is passed through untouched. */
  readonly mode: ResumeMode;
  /** Times the request was sent again before a usable response arrived. */
  readonly retries: number;
  /** Times the body failed mid-stream. */
  readonly breaks: number;
  /** Times the body was continued by a new response. */
  readonly resumes: number;
  /** Bytes handed to the reader (counted when `mode` is not `'none'`). */
  readonly bytesDelivered: number;
  /** Bytes received, dropped at a break (part of an event or line), and requested again. */
  readonly bytesDiscarded: number;
}

/** A response from `haFetch`. */
export type HAResponse = Response & { readonly lifeline: HAFetchInfo };

/** fetch's signature; the response body survives breaks. */
export type HAFetch = (input: string | URL | Request, init?: HAFetchInit) => Promise<HAResponse>;

const MODES: ReadonlySet<string> = new Set(['auto', 'bytes', 'event-stream', 'ndjson', 'none']);

/**
 * Makes a fetch highly available. The returned `haFetch` has fetch's signature; the body of its
 * response survives mid-stream failures: byte streams resume with `Range` under a strong `ETag`,
 * event streams with `Last-Event-ID`, NDJSON with the user's cursor, all under the one recovery
 * policy (budgets, backoff). An idempotent request that fails before its response (refused,
 * reset, 502/503/504/429) is sent again. Everything else, a 401 or 404 included, comes back
 * exactly as fetch returns it.
 *
 * @example
 * ```ts
 * const haFetch = createHAFetch({ fetch: globalThis.fetch, maxAttemptsPerFailure: 5 });
 * const response = await haFetch('https://example.com/big.iso');
 * for await (const chunk of response.body!) write(chunk); // one unbroken body
 * console.log(response.lifeline.resumes);
 * ```
 * @param platform How a platform package reads the bodies it resumes. @default undefined
 * @see docs/fetch.md
 */
export function createHAFetch(options: HAFetchOptions, platform?: HAFetchPlatform): HAFetch {
  if (typeof options?.fetch !== 'function') {
    throw new InvalidOptionError('createHAFetch needs a `fetch` function');
  }
  checkOptions(options);
  const { fetch: fetchFn, Request: RequestClass, Response: ResponseClass, ...defaults } = options;
  return async function haFetch(input, init) {
    const lifeline = init?.lifeline;
    let plainInit: RequestInit | undefined = init;
    if (lifeline !== undefined) {
      const { lifeline: _, ...rest } = init as HAFetchInit;
      plainInit = rest;
    }
    const policy: HAFetchRequestOptions = lifeline === undefined ? defaults : { ...defaults, ...lifeline };
    if (lifeline !== undefined) checkOptions(lifeline);
    if (policy.resume === 'ndjson' && policy.cursor === undefined) {
      throw new InvalidOptionError("resume: 'ndjson' needs a `cursor`");
    }
    const request = isRequest(input) ? input : undefined;
    const signal = plainInit?.signal ?? request?.signal ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const method = (plainInit?.method ?? request?.method ?? 'GET').toUpperCase();
    const replayable =
      (IDEMPOTENT_METHODS.has(method) || policy.retryNonIdempotent === true) &&
      hasReplayableBody(request, plainInit);
    const stats: ResumableBodyStats & { mode: ResumeMode; retries: number } = {
      mode: 'none',
      retries: 0,
      breaks: 0,
      resumes: 0,
      bytesDelivered: 0,
      bytesDiscarded: 0,
    };
    const onEvent = policy.onEvent;
    const core = new RecoveryCore(policy, { recoveryEvent_: onEvent ?? noop });
    const RequestCtor = RequestClass ?? globalThis.Request;
    // fetch reports a bad URL or init with the same TypeError as a network error; one found now
    // is thrown at once, where fetch would have thrown it, instead of being retried.
    if (replayable) new RequestCtor(input, plainInit);

    let response: Response;
    try {
      response = await firstResponse(() => fetchFn(input, plainInit), core, replayable, signal, stats);
    } catch (error) {
      core.close();
      throw error;
    }
    const requested = policy.resume ?? DEFAULT_RESUME_MODE;
    const mode = requested === 'auto' ? autoMode(response, method, policy.cursor !== undefined) : requested;
    const resume =
      replayable && response.ok && response.body !== null ? resumeFor(mode, response, policy) : undefined;
    if (resume === undefined || response.body === null) {
      core.close();
      return withInfo(response, stats);
    }
    stats.mode = mode;
    core.markUp();
    const extras = runtimeExtras(plainInit);
    const ResponseCtor = ResponseClass ?? globalThis.Response;
    const body = resumableBody({
      body: response.body,
      response,
      readerOf: platform?.readerOf,
      resume,
      core,
      stats,
      signal,
      reopen: (abortSignal) =>
        fetchFn(resume.resumeRequest(new RequestCtor(input, { ...plainInit, signal: abortSignal })), extras),
      onBreak: (error) =>
        onEvent?.({
          type: 'break',
          error,
          bytesDelivered: stats.bytesDelivered,
          bytesDiscarded: stats.bytesDiscarded,
        }),
      onResumed: () =>
        onEvent?.({ type: 'resumed', resumes: stats.resumes, bytesDelivered: stats.bytesDelivered }),
    });
    const wrapped = new ResponseCtor(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
    // A constructed Response has no URL and type 'default': keep what the real one said.
    Object.defineProperties(wrapped, {
      url: { value: response.url },
      redirected: { value: response.redirected },
      type: { value: response.type },
    });
    return withInfo(wrapped, stats);
  };
}

/**
 * Sends the request until a response worth returning arrives: a failure before the response, or
 * a status the policy calls recoverable (502, 503, 504, 429...), is tried again while the budget
 * lasts and the request can be replayed. When the budget runs out on a status, that last
 * response is returned, as fetch would return it.
 */
async function firstResponse(
  send: () => Promise<Response>,
  core: RecoveryCore,
  replayable: boolean,
  signal: AbortSignal | undefined,
  stats: { retries: number },
): Promise<Response> {
  for (;;) {
    let response: Response | undefined;
    let failure: unknown;
    try {
      response = await send();
    } catch (error) {
      failure = markFetchFailure(error);
    }
    if (signal?.aborted) {
      discardBody(response);
      throw signal.reason;
    }
    if (response !== undefined) {
      if (response.status < 400 || !replayable) return response;
      failure = httpStatusError(response);
    } else if (!replayable) {
      throw failure;
    }
    const verdict = retryVerdict(core, failure, signal);
    if ('gaveUp' in verdict) {
      if (response !== undefined) return response;
      // The core hands back the error that started the failure; when that was a status whose
      // response is gone, the error of this last attempt is the truest thing left to throw.
      throw verdict.gaveUp instanceof HttpStatusError ? failure : verdict.gaveUp;
    }
    // Free the connection during the wait: this response will not be returned.
    discardBody(response);
    await verdict.ready;
    stats.retries++;
  }
}

/** Asks the core about `error`: give up now (known synchronously), or a promise for the wait. */
function retryVerdict(
  core: RecoveryCore,
  error: unknown,
  signal: AbortSignal | undefined,
): { readonly gaveUp: unknown } | { readonly ready: Promise<void> } {
  let early: { readonly gaveUp: unknown } | { readonly ready: Promise<void> } | undefined;
  let settle: { resolve(): void; reject(error: unknown): void } | undefined;
  const subscription = new Subscription();
  const onAbort = () => {
    subscription.unsubscribe();
    settle?.reject(signal?.reason);
  };
  subscription.add(
    core.fail(error).subscribe({
      next: () => {
        signal?.removeEventListener('abort', onAbort);
        if (settle) settle.resolve();
        else early = { ready: Promise.resolve() };
      },
      error: (propagated) => {
        signal?.removeEventListener('abort', onAbort);
        if (settle) settle.reject(propagated);
        else early = { gaveUp: propagated };
      },
    }),
  );
  if (early !== undefined) return early;
  // The core reports 'recovering' while subscribing: a listener may have aborted right then.
  if (signal?.aborted) {
    subscription.unsubscribe();
    return { ready: Promise.reject(signal.reason) };
  }
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  return { ready };
}

function autoMode(response: Response, method: string, hasCursor: boolean): ResumeMode {
  const type = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'text/event-stream') return 'event-stream';
  if (NDJSON_MEDIA_TYPES.has(type)) return hasCursor ? 'ndjson' : 'none';
  return method === 'GET' ? 'bytes' : 'none';
}

function resumeFor(
  mode: ResumeMode,
  response: Response,
  policy: HAFetchRequestOptions,
): BodyResume | undefined {
  const maxHeld = policy.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
  switch (mode) {
    case 'bytes':
      return new RangeResume(response);
    case 'event-stream':
      return new EventStreamResume(maxHeld, { reconnect: policy.reconnectOnEnd === true });
    case 'ndjson':
      return policy.cursor === undefined ? undefined : new NdjsonResume(policy.cursor, maxHeld);
    case 'none':
      return undefined;
  }
}

function withInfo(response: Response, stats: HAFetchInfo): HAResponse {
  const info: HAFetchInfo = {
    get mode() {
      return stats.mode;
    },
    get retries() {
      return stats.retries;
    },
    get breaks() {
      return stats.breaks;
    },
    get resumes() {
      return stats.resumes;
    },
    get bytesDelivered() {
      return stats.bytesDelivered;
    },
    get bytesDiscarded() {
      return stats.bytesDiscarded;
    },
  };
  Object.defineProperty(response, 'lifeline', { value: info });
  return response as HAResponse;
}

function isRequest(input: unknown): input is Request {
  // Duck-typed: the Request class of another realm (or of undici) fails instanceof.
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as Request).method === 'string' &&
    typeof (input as Request).url === 'string'
  );
}

/** True when the request's body can be sent again: absent, or held in memory (never a stream). */
function hasReplayableBody(request: Request | undefined, init: RequestInit | undefined): boolean {
  const body = init?.body;
  if (body === undefined) return request === undefined || request.body === null;
  if (body === null || typeof body === 'string') return true;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  const tag = Object.prototype.toString.call(body);
  return (
    tag === '[object Blob]' ||
    tag === '[object File]' ||
    tag === '[object URLSearchParams]' ||
    tag === '[object FormData]'
  );
}

/** RequestInit members of the standard; anything else is a runtime's own (undici's `dispatcher`, Deno's `client`). */
const STANDARD_INIT: ReadonlySet<string> = new Set([
  'body',
  'cache',
  'credentials',
  'duplex',
  'headers',
  'integrity',
  'keepalive',
  'method',
  'mode',
  'priority',
  'redirect',
  'referrer',
  'referrerPolicy',
  'signal',
  'window',
]);

/**
 * The runtime's own init members, which a Request does not carry: passed again beside each
 * re-request so it goes through the same dispatcher or client as the first.
 */
function runtimeExtras(init: RequestInit | undefined): RequestInit | undefined {
  if (init === undefined) return undefined;
  let extras: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(init)) {
    if (STANDARD_INIT.has(key)) continue;
    extras ??= {};
    extras[key] = value;
  }
  return extras as RequestInit | undefined;
}

function checkOptions(options: HAFetchRequestOptions): void {
  if (options.resume !== undefined && !MODES.has(options.resume)) {
    throw new InvalidOptionError(`unknown resume mode ${JSON.stringify(options.resume)}`);
  }
  const cursor = options.cursor;
  if (
    cursor !== undefined &&
    (typeof cursor?.fromLine !== 'function' || typeof cursor.applyToRequest !== 'function')
  ) {
    throw new InvalidOptionError('`cursor` needs fromLine(line) and applyToRequest(request, cursor)');
  }
  count('maxHeldBytes', options.maxHeldBytes, { min: 1 });
  checkRecoveryOptions(options);
  oneOf('retryNonIdempotent', options.retryNonIdempotent, [true, false]);
  fn('onEvent', options.onEvent);
}
