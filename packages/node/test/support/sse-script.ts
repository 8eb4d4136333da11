import type { IncomingMessage, ServerResponse } from 'node:http';

/** How the response to one request ends. */
export type SseStep =
  /** `perResponse` events, then the response ends cleanly. */
  | 'end'
  /** `perResponse` events, then half of the next one, then the socket is destroyed. */
  | 'break'
  /** `503 Service Unavailable` with `Retry-After: <retryAfterSeconds>`, no events. */
  | 'unavailable';

/** Options of {@link sseScript}. */
export interface SseScriptOptions {
  /** Events 1..count; once the client is past `count`, the answer is `204 No Content`. */
  count: number;
  /** Events per response. */
  perResponse: number;
  /** How the response to request `index` (0-based) ends. @default always 'end' */
  plan?: (index: number) => SseStep;
  /** `retry:` sent at the start of each stream, in ms. @default none */
  retryMs?: number;
  /** The `Retry-After` of a 503, in seconds. @default 0 */
  retryAfterSeconds?: number;
}

/**
 * One event as the scripted server writes it: every third is named `tick`, the others are
 * `message`s; data spans two lines for ids divisible by 5; ids are decimal.
 */
export function scriptedEvent(id: number): string {
  const name = id % 3 === 0 ? 'event: tick\n' : '';
  const data = id % 5 === 0 ? `data: event ${id}\ndata: second line\n` : `data: event ${id}\n`;
  return `${name}id: ${id}\n${data}\n`;
}

/** What a client should have seen of event `id` (type, data, lastEventId). */
export function expectedEvent(id: number): { type: string; data: string; lastEventId: string } {
  return {
    type: id % 3 === 0 ? 'tick' : 'message',
    data: id % 5 === 0 ? `event ${id}\nsecond line` : `event ${id}`,
    lastEventId: String(id),
  };
}

/** What the scripted server saw of one request. */
export interface SseRequest {
  readonly lastEventId: string | undefined;
  readonly authorization: string | undefined;
  readonly step: SseStep | 'no-content';
}

/**
 * A node:http handler serving a scripted event stream: the same bytes for any client (native
 * `EventSource`, `HAEventSource`, haFetch), continuing after `Last-Event-ID`, ending each
 * response as the plan says. `requests` records what each request carried.
 */
export function sseScript(options: SseScriptOptions): {
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  readonly requests: SseRequest[];
} {
  const requests: SseRequest[] = [];
  const plan = options.plan ?? (() => 'end');
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const header = req.headers['last-event-id'];
    const lastEventId = typeof header === 'string' ? header : undefined;
    const authorization = req.headers.authorization;
    const last = Number(lastEventId ?? 0);
    if (last >= options.count) {
      requests.push({ lastEventId, authorization, step: 'no-content' });
      res.writeHead(204).end();
      return;
    }
    const step = plan(requests.length);
    requests.push({ lastEventId, authorization, step });
    if (step === 'unavailable') {
      res.writeHead(503, { 'retry-after': String(options.retryAfterSeconds ?? 0) }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    let text = options.retryMs === undefined ? '' : `retry: ${options.retryMs}\n\n`;
    const to = Math.min(options.count, last + options.perResponse);
    for (let id = last + 1; id <= to; id++) text += scriptedEvent(id);
    if (step === 'end' || to === options.count) {
      res.end(text);
      return;
    }
    const next = scriptedEvent(to + 1);
    // The callback runs once the bytes are with the kernel: the client gets them, then the cut.
    res.write(text + next.slice(0, Math.ceil(next.length / 2)), () => res.socket?.destroy());
  };
  return { handle, requests };
}
