/**
 * One script of `on*` event handler behaviour (WHATWG HTML "event handlers"), run against any
 * WebSocket-shaped constructor and an echo server: the platform's own `WebSocket` (Chromium, Deno,
 * Node 22) and `HAWebSocket` must write the same log. Used by the Node test
 * (ws-event-handlers.test.ts), the Chromium one (e2e/tests/event-handlers.spec.ts) and Deno's
 * (packages/deno/test/web-socket.test.ts). No import: it is bundled for the browser as it is.
 *
 * What the standard asks of an event handler IDL attribute, and the script checks:
 * - inside the handler, `this`, `event.target` and `event.currentTarget` are the socket (where the
 *   runtime keeps `currentTarget` for any listener but the first: see currentTargetKept);
 * - the handler's listener joins the target's listener list when the attribute is first set to a
 *   callable, keeps that place when it is set to another function, leaves it when set to null,
 *   and is added at the end when set again;
 * - `stopImmediatePropagation()` in a handler stops the listeners after it;
 * - a non-object value reads back as null (WebIDL [LegacyTreatNonObjectAsNull]) and removes the handler;
 * - a handler that throws: the listeners after it still hear the event (the exception is
 *   reported, which each runtime observes in its own way: see `throwing`).
 */

/** What the script needs of a socket: WebSocket's members, handlers untyped (they are set to anything). */
export interface ScenarioSocket extends EventTarget {
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type ScenarioConstructor = new (url: string) => ScenarioSocket;

export interface ScenarioOptions {
  /** An echo server: every text message comes back. */
  echoUrl: string;
  /** A URL whose opening handshake is refused (HTTP 403): the socket fires `error`, then `close` (not clean). */
  refusedUrl: string;
  /** Also set a handler that throws (the caller observes the report). @default false */
  throwing?: boolean;
  /** @default 15_000 */
  timeoutMs?: number;
}

/** The log every conforming socket writes (with `throwing`: see {@link THROWING_STEP}). */
export const EXPECTED_LOG: readonly string[] = [
  'open: listener before',
  'open: handler; this, target and currentTarget are the socket',
  'open: listener after',
  'm1: A',
  'm1: handler 1',
  'm1: B',
  'reassigned: handler 2 in the same place',
  'm2: A',
  'm2: handler 2',
  'm2: B',
  'null then set again: handler 3 at the end',
  'm3: A',
  'm3: B',
  'm3: handler 3',
  'stopper set (same place), C added after it',
  'm4: A',
  'm4: B',
  'm4: stopper',
  'non-function values read back as: null null',
  'm5: A',
  'm5: B',
  'm5: C',
  'close: listener before',
  'close: handler; this, target and currentTarget are the socket; code 1000',
  'close: listener after',
  'refused: error handler; this, target and currentTarget are the socket',
  'refused: error listener after',
  'refused: close handler; wasClean false',
];

/** With `throwing`: the lines that take the place of the m5 step's three. */
export const THROWING_STEP: readonly string[] = ['m5: A', 'm5: B', 'm5: C', 'm5: thrower', 'm5: D'];

export function expectedLog(throwing = false): string[] {
  if (!throwing) return [...EXPECTED_LOG];
  const at = EXPECTED_LOG.indexOf('m5: A');
  return [...EXPECTED_LOG.slice(0, at), ...THROWING_STEP, ...EXPECTED_LOG.slice(at + 3)];
}

function set(socket: ScenarioSocket, name: string, value: unknown): void {
  (socket as unknown as Record<string, unknown>)[name] = value;
}

function get(socket: ScenarioSocket, name: string): unknown {
  return (socket as unknown as Record<string, unknown>)[name];
}

/**
 * Whether the runtime's EventTarget keeps `currentTarget` for every listener of a dispatch. Node's
 * (20, 22, 24) does not: every listener after the first sees `currentTarget` null, whatever the
 * target (its own EventTarget, undici's WebSocket alike). There the check is left out.
 */
function currentTargetKept(): boolean {
  const target = new EventTarget();
  let kept = false;
  target.addEventListener('probe', () => {});
  target.addEventListener('probe', (event) => {
    kept = event.currentTarget === target;
  });
  target.dispatchEvent(new Event('probe'));
  return kept;
}

function who(socket: ScenarioSocket, self: unknown, event: Event): string {
  const wrong = [
    self === socket ? '' : 'this',
    event.target === socket ? '' : 'target',
    event.currentTarget === socket || !currentTargetKept() ? '' : 'currentTarget',
  ].filter(Boolean);
  return wrong.length === 0
    ? 'this, target and currentTarget are the socket'
    : `NOT the socket: ${wrong.join(', ')}`;
}

/** Runs the script; resolves with the log (compare it with {@link expectedLog}). */
export async function handlerScenario(WS: ScenarioConstructor, options: ScenarioOptions): Promise<string[]> {
  const log: string[] = [];
  const timeoutMs = options.timeoutMs ?? 15_000;
  const socket = new WS(options.echoUrl);
  // Added first, before any handler: only wakes the script, logs nothing.
  const waiters: Array<{ type: string; resolve: (event: Event) => void }> = [];
  for (const type of ['open', 'message', 'close']) {
    socket.addEventListener(type, (event) => {
      const index = waiters.findIndex((waiter) => waiter.type === type);
      // After the dispatch, not in it: a browser runs microtasks between two listeners, so a
      // script resumed at once would run before the listeners after this one.
      if (index >= 0) setTimeout(waiters.splice(index, 1)[0]!.resolve, 0, event);
    });
  }
  const next = (type: string, what: string) =>
    new Promise<Event>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${type} event (${what}) in ${timeoutMs} ms: ${log.join(' | ')}`)),
        timeoutMs,
      );
      waiters.push({
        type,
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event);
        },
      });
    });
  let step = '';

  // open: a listener before the handler, one after.
  socket.addEventListener('open', () => log.push('open: listener before'));
  set(socket, 'onopen', function (this: unknown, event: Event) {
    log.push(`open: handler; ${who(socket, this, event)}`);
    // As handlers written for a WebSocket do.
    (event.target as ScenarioSocket).send('m1');
  });
  socket.addEventListener('open', () => log.push('open: listener after'));
  const handler = (name: string) =>
    function (this: unknown, event: Event) {
      log.push(`${(event as MessageEvent).data}: ${name}`);
      if (this !== socket || event.target !== socket) log.push(`${name}: ${who(socket, this, event)}`);
    };
  socket.addEventListener('message', (event) => log.push(`${(event as MessageEvent).data}: A`));
  set(socket, 'onmessage', handler('handler 1'));
  socket.addEventListener('message', (event) => log.push(`${(event as MessageEvent).data}: B`));
  // Both waited for from here: the echo of m1 (sent by onopen) may come before the script resumes.
  const opened = next('open', 'open');
  const m1 = next('message', 'm1');
  await opened;
  await m1;

  const handler2 = handler('handler 2');
  set(socket, 'onmessage', handler2);
  log.push(
    `reassigned: handler 2 ${get(socket, 'onmessage') === handler2 ? 'in the same place' : 'NOT read back'}`,
  );
  socket.send('m2');
  await next('message', 'm2');

  set(socket, 'onmessage', null);
  step = get(socket, 'onmessage') === null ? 'null then set again' : 'null NOT read back';
  set(socket, 'onmessage', handler('handler 3'));
  log.push(`${step}: handler 3 at the end`);
  socket.send('m3');
  await next('message', 'm3');

  set(socket, 'onmessage', (event: Event) => {
    log.push(`${(event as MessageEvent).data}: stopper`);
    event.stopImmediatePropagation();
  });
  socket.addEventListener('message', (event) => log.push(`${(event as MessageEvent).data}: C`));
  log.push('stopper set (same place), C added after it');
  socket.send('m4');
  await next('message', 'm4');

  set(socket, 'onmessage', 'not a function');
  const afterString = get(socket, 'onmessage');
  set(socket, 'onmessage', 42);
  log.push(`non-function values read back as: ${String(afterString)} ${String(get(socket, 'onmessage'))}`);
  if (options.throwing) {
    set(socket, 'onmessage', (event: Event) => {
      log.push(`${(event as MessageEvent).data}: thrower`);
      throw new Error(`thrown by onmessage for ${(event as MessageEvent).data}`);
    });
    socket.addEventListener('message', (event) => log.push(`${(event as MessageEvent).data}: D`));
  }
  socket.send('m5');
  await next('message', 'm5');

  socket.addEventListener('close', () => log.push('close: listener before'));
  set(socket, 'onclose', function (this: unknown, event: Event) {
    log.push(`close: handler; ${who(socket, this, event)}; code ${(event as CloseEvent).code}`);
  });
  socket.addEventListener('close', () => log.push('close: listener after'));
  const closed = next('close', 'close');
  socket.close(1000);
  await closed;

  // error: a refused handshake fires error, then close (1006).
  const refused = new WS(options.refusedUrl);
  const refusedClose = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no close of the refused socket in ${timeoutMs} ms: ${log.join(' | ')}`)),
      timeoutMs,
    );
    refused.addEventListener('close', () => {
      clearTimeout(timer);
      setTimeout(resolve, 0);
    });
  });
  set(refused, 'onerror', function (this: unknown, event: Event) {
    log.push(`refused: error handler; ${who(refused, this, event)}`);
  });
  refused.addEventListener('error', () => log.push('refused: error listener after'));
  // Not the code: 1006 by the standard, but Deno's own WebSocket says 0 here.
  set(refused, 'onclose', (event: Event) =>
    log.push(`refused: close handler; wasClean ${(event as CloseEvent).wasClean}`),
  );
  await refusedClose;
  return log;
}
