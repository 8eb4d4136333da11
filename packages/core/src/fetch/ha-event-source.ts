import { HttpStatusError, ProtocolError } from '../engine/errors.js';
import { checkRecoveryOptions, count } from '../engine/options.js';
import type { RecoveryOptions } from '../engine/recovery-core.js';
import { reportException } from '../engine/report-exception.js';
import { discardBody } from './discard-body.js';
import { createHAFetch, type FetchFunction, type HAFetch, type HAFetchEvent } from './ha-fetch.js';

/** Headers for each request of an `HAEventSource`: fixed, or asked for before every attempt. */
export type HAEventSourceHeaders = HeadersInit | (() => HeadersInit | Promise<HeadersInit>);

/** The second argument of `new HAEventSource(url, init)`: `EventSourceInit` plus the recovery policy. */
export interface HAEventSourceInit extends RecoveryOptions {
  /** Send cookies and credentials cross-origin (`credentials: 'include'`), as `EventSource` does. @default false */
  withCredentials?: boolean;
  /**
   * Request headers (an `Authorization` header, say). A function is called before every request,
   * the first and each reconnect, so a token can be fresh each time; what it throws is classified
   * like any failure (an error that is not recoverable, a plain `Error` say, closes the source).
   * @default none
   */
  headers?: HAEventSourceHeaders;
  /**
   * The most bytes of one unfinished event held back; more errors the stream (FrameTooLargeError).
   * An integer ≥ 1. Every numeric and enum option is checked by the constructor: a bad value
   * throws an `InvalidOptionError` naming it and its range.
   * @default 8 MiB
   */
  maxHeldBytes?: number;
  /** Told of every retry, break and resume beneath the stream. @default undefined */
  onEvent?: (event: HAFetchEvent) => void;
}

/** The events an `HAEventSource` dispatches; any other name is a named SSE event (`event:` field). */
export interface HAEventSourceEventMap {
  open: Event;
  message: MessageEvent<string>;
  /** A reconnect is under way (readyState CONNECTING) or the stream ended (CLOSED); `error` says why. */
  error: HAEventSourceErrorEvent;
}

/** The `error` event: an `Event` with the failure that caused it (an `HttpStatusError` carries `status`). */
export type HAEventSourceErrorEvent = Event & { readonly error: unknown };

type Listener<E> = ((this: HAEventSourceInstance, event: E) => unknown) | { handleEvent(event: E): unknown };

/** The `EventSource`-shaped drop-in: what {@link defineHAEventSource} returns instances of. */
export interface HAEventSourceInstance extends EventTarget {
  readonly url: string;
  readonly withCredentials: boolean;
  /** 0 CONNECTING, 1 OPEN, 2 CLOSED. */
  readonly readyState: 0 | 1 | 2;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSED: 2;
  onopen: ((this: HAEventSourceInstance, event: Event) => unknown) | null;
  onmessage: ((this: HAEventSourceInstance, event: MessageEvent<string>) => unknown) | null;
  onerror: ((this: HAEventSourceInstance, event: HAEventSourceErrorEvent) => unknown) | null;
  /** Closes the stream for good: no more events, no reconnect. */
  close(): void;
  addEventListener<K extends keyof HAEventSourceEventMap>(
    type: K,
    listener: Listener<HAEventSourceEventMap[K]>,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: Listener<MessageEvent<string>>,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof HAEventSourceEventMap>(
    type: K,
    listener: Listener<HAEventSourceEventMap[K]>,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: Listener<MessageEvent<string>>,
    options?: boolean | EventListenerOptions,
  ): void;
}

export interface HAEventSourceConstructor {
  new (url: string | URL, init?: HAEventSourceInit): HAEventSourceInstance;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSED: 2;
}

/** Platform pieces for {@link defineHAEventSource}. */
export interface HAEventSourcePlatform {
  /** The fetch that carries the stream. */
  fetch: FetchFunction;
  /** The Request class `fetch` accepts. @default globalThis.Request */
  Request?: typeof Request;
  /** The Response class `fetch` returns. @default globalThis.Response */
  Response?: typeof Response;
  /** The platform's recovery defaults (a browser's online and visibility triggers), under the user's init. @default none */
  defaults?: () => RecoveryOptions;
}

const LF = '\n';
const CR = '\r';

/**
 * Builds the `HAEventSource` class for a platform: the `EventSource` interface (WHATWG HTML
 * §9.2) on the same engine and event-stream resume as `haFetch`. Every request after the first
 * carries `Last-Event-ID`; `retry:` is the least wait before a reconnect; a response the server
 * ends is reconnected to (a `204` stops it); breaks, 502/503/504/429 (with `Retry-After`) and
 * refused connections are retried with backoff under the recovery budgets. An irrecoverable
 * status (401, 403, 404...), a response that is not `text/event-stream`, or budgets spent close
 * it: readyState CLOSED and an `error` event whose `error` is the cause (an `HttpStatusError`
 * with the original `status`). Events are `MessageEvent`s with `data`, `lastEventId` and
 * `origin`, as a browser gives them.
 *
 * Called by the platform packages, so core touches no global at its own import.
 *
 * @example
 * ```ts
 * const HAEventSource = defineHAEventSource({ fetch: (input, init) => globalThis.fetch(input, init) });
 * const source = new HAEventSource('https://example.com/feed', { headers: async () => ({ authorization: await token() }) });
 * source.addEventListener('price', (event) => render(JSON.parse(event.data)));
 * ```
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html
 */
export function defineHAEventSource(platform: HAEventSourcePlatform): HAEventSourceConstructor {
  // Not `implements HAEventSourceInstance`: its typed addEventListener overloads narrow EventTarget's.
  class HAEventSource extends EventTarget {
    static readonly CONNECTING = 0 as const;
    static readonly OPEN = 1 as const;
    static readonly CLOSED = 2 as const;
    readonly CONNECTING = 0 as const;
    readonly OPEN = 1 as const;
    readonly CLOSED = 2 as const;
    readonly url: string;
    readonly withCredentials: boolean;
    #state: 0 | 1 | 2 = 0;
    onopen: ((this: HAEventSourceInstance, event: Event) => unknown) | null = null;
    onmessage: ((this: HAEventSourceInstance, event: MessageEvent<string>) => unknown) | null = null;
    onerror: ((this: HAEventSourceInstance, event: HAEventSourceErrorEvent) => unknown) | null = null;
    readonly #abort = new AbortController();
    #origin = '';
    // The parser state of WHATWG HTML §9.2.6 "Interpreting an event stream".
    #data = '';
    #hasData = false;
    #eventType = '';
    #idBuffer = '';
    #lastEventId = '';
    #line = '';
    #crPending = false;

    constructor(url: string | URL, init: HAEventSourceInit = {}) {
      super();
      const base = (globalThis as { location?: { href?: string } }).location?.href;
      let resolved: URL;
      try {
        resolved = new URL(url, base);
      } catch (cause) {
        // EventSource throws a "SyntaxError" DOMException for a URL that does not parse.
        throw typeof DOMException === 'function'
          ? new DOMException(`invalid URL ${String(url)}`, 'SyntaxError')
          : cause;
      }
      this.url = resolved.href;
      this.#origin = resolved.origin;
      this.withCredentials = init.withCredentials === true;
      // Checked here, so a bad value throws from the constructor rather than ending the stream.
      checkRecoveryOptions(init);
      count('maxHeldBytes', init.maxHeldBytes, { min: 1 });
      void this.#run(init);
    }

    get readyState(): 0 | 1 | 2 {
      return this.#state;
    }

    // A method, not a property read: TypeScript would keep a narrowing of the state across awaits.
    #closed(): boolean {
      return this.#state === 2;
    }

    close(): void {
      if (this.#closed()) return;
      this.#state = 2;
      this.#abort.abort();
    }

    async #run(init: HAEventSourceInit): Promise<void> {
      const { withCredentials: _, headers, maxHeldBytes, onEvent, ...policy } = init;
      const haFetch = this.#haFetch(headers, { ...platform.defaults?.(), ...policy }, maxHeldBytes, onEvent);
      let response: Response;
      try {
        response = await haFetch(this.url, {
          headers: typeof headers === 'function' ? undefined : headers,
          cache: 'no-store',
          credentials: this.withCredentials ? 'include' : 'same-origin',
          signal: this.#abort.signal,
        });
      } catch (error) {
        this.#fail(error);
        return;
      }
      if (this.#closed()) {
        discardBody(response);
        return;
      }
      const type = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
      if (response.status !== 200 || response.body === null) {
        discardBody(response);
        // A 204 is the server saying "stop"; any other status ends the stream with that status.
        this.#fail(new HttpStatusError(response.status));
        return;
      }
      if (type !== 'text/event-stream') {
        discardBody(response);
        this.#fail(new ProtocolError(`the response is ${type ?? 'untyped'}, not text/event-stream`));
        return;
      }
      if (response.url) this.#origin = new URL(response.url).origin;
      this.#open();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (this.#closed()) return;
          if (done) break;
          this.#parse(value);
        }
      } catch (error) {
        this.#fail(error);
        return;
      }
      // The body ends only when a reconnect was answered 204: the server's word to stop.
      this.#fail(new HttpStatusError(204, 'the server ended the event stream (204 No Content)'));
    }

    /** haFetch for this source: event-stream resume, reconnect after a clean end, fresh headers. */
    #haFetch(
      headers: HAEventSourceHeaders | undefined,
      policy: RecoveryOptions,
      maxHeldBytes: number | undefined,
      onEvent: ((event: HAFetchEvent) => void) | undefined,
    ): HAFetch {
      const RequestCtor = platform.Request ?? globalThis.Request;
      const fetch: FetchFunction =
        typeof headers === 'function'
          ? async (input, requestInit) => {
              const request = new RequestCtor(input, requestInit);
              for (const [name, value] of new Headers(await headers())) request.headers.set(name, value);
              return platform.fetch(request);
            }
          : platform.fetch;
      return createHAFetch({
        ...policy,
        fetch,
        Request: platform.Request,
        Response: platform.Response,
        resume: 'event-stream',
        reconnectOnEnd: true,
        ...(maxHeldBytes === undefined ? {} : { maxHeldBytes }),
        onEvent: (event) => {
          onEvent?.(event);
          if (this.#closed()) return;
          if (event.type === 'break') {
            this.#state = 0;
            this.#dispatch('error', errorEvent(event.error));
          } else if (event.type === 'resumed') this.#open();
        },
      });
    }

    #open(): void {
      if (this.#closed()) return;
      this.#state = 1;
      this.#dispatch('open', new Event('open'));
    }

    #fail(error: unknown): void {
      if (this.#closed()) return;
      this.#state = 2;
      this.#abort.abort();
      this.#dispatch('error', errorEvent(error));
    }

    /** Splits decoded text into lines (CRLF, LF or CR) and processes each. */
    #parse(text: string): void {
      let start = 0;
      for (let i = 0; i < text.length; i++) {
        const char = text[i];
        if (char !== LF && char !== CR) continue;
        if (char === LF && this.#crPending && i === start) {
          // The LF of a CRLF whose CR ended the previous chunk.
          this.#crPending = false;
          start = i + 1;
          continue;
        }
        this.#crPending = false;
        this.#processLine(this.#line + text.slice(start, i));
        this.#line = '';
        if (char === CR) {
          if (text[i + 1] === LF) i++;
          else if (i + 1 === text.length) this.#crPending = true;
        }
        start = i + 1;
      }
      if (start < text.length) {
        this.#crPending = false;
        this.#line += text.slice(start);
      }
    }

    #processLine(line: string): void {
      if (this.#closed()) return;
      if (line === '') {
        this.#dispatchEvent();
        return;
      }
      if (line.startsWith(':')) return;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      switch (field) {
        case 'event':
          this.#eventType = value;
          break;
        case 'data':
          this.#data += `${value}\n`;
          this.#hasData = true;
          break;
        case 'id':
          if (!value.includes('\0')) this.#idBuffer = value;
          break;
        // `retry:` is honoured beneath, by the event-stream resume of haFetch.
      }
    }

    #dispatchEvent(): void {
      this.#lastEventId = this.#idBuffer;
      const type = this.#eventType || 'message';
      const data = this.#data.endsWith(LF) ? this.#data.slice(0, -1) : this.#data;
      const hasData = this.#hasData;
      this.#data = '';
      this.#hasData = false;
      this.#eventType = '';
      if (!hasData) return;
      this.#dispatch(type, messageEvent(type, data, this.#origin, this.#lastEventId));
    }

    #dispatch(type: string, event: Event): void {
      this.dispatchEvent(event);
      if (type === 'open' || type === 'message' || type === 'error') {
        const handler: unknown = this[`on${type}`];
        // A handler that is not callable counts as none (WHATWG HTML event handler IDL attributes).
        if (typeof handler !== 'function') return;
        try {
          handler.call(this, event);
        } catch (error) {
          // As EventTarget does with a listener that throws: report it, and the stream goes on.
          reportException(error);
        }
      }
    }
  }
  return HAEventSource as unknown as HAEventSourceConstructor;
}

function messageEvent(type: string, data: string, origin: string, lastEventId: string): MessageEvent<string> {
  if (typeof MessageEvent === 'function') return new MessageEvent(type, { data, origin, lastEventId });
  return Object.assign(new Event(type), { data, origin, lastEventId }) as unknown as MessageEvent<string>;
}

function errorEvent(error: unknown): HAEventSourceErrorEvent {
  const event = new Event('error');
  Object.defineProperty(event, 'error', { value: error, enumerable: true });
  return event as HAEventSourceErrorEvent;
}
