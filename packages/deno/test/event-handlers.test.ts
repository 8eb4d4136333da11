import { deepStrictEqual as assertEquals } from 'node:assert/strict';
import {
  expectedLog,
  handlerScenario,
  type ScenarioConstructor,
} from '../../node/test/support/handler-scenario.ts';
import { HAWebSocket } from '../src/index.ts';

/** Echoes text on `/`, refuses the handshakes of `/refuse` with HTTP 403. */
function server() {
  const abort = new AbortController();
  const listening = Promise.withResolvers<number>();
  const served = Deno.serve(
    { hostname: '127.0.0.1', port: 0, signal: abort.signal, onListen: ({ port }) => listening.resolve(port) },
    (request) => {
      if (new URL(request.url).pathname.startsWith('/refuse')) return new Response(null, { status: 403 });
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
      };
      socket.onerror = () => {};
      return response;
    },
  );
  return {
    port: listening.promise,
    close: async () => {
      abort.abort();
      await served.finished;
    },
  };
}

Deno.test('on* handlers: Deno WebSocket and HAWebSocket run the WHATWG event handler script alike (this/target/currentTarget, registration order, reassigned, null then set again, stopImmediatePropagation, non-function values, a throwing handler reported)', async () => {
  const echo = server();
  const port = await echo.port;
  const reports: string[] = [];
  // A handler's throw is reported to the global scope (reportError): taken here, not fatal.
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    reports.push(String((event.error as Error)?.message));
  };
  globalThis.addEventListener('error', onError);
  try {
    const options = {
      echoUrl: `ws://127.0.0.1:${port}`,
      refusedUrl: `ws://127.0.0.1:${port}/refuse`,
      throwing: true,
    };
    const native = await handlerScenario(WebSocket as unknown as ScenarioConstructor, options);
    // Deno's WebSocket does not tell a refused handshake from a network failure: one attempt per
    // failure, so recovery gives up at once (error, then close 1006, as a WebSocket ends).
    class OneAttempt extends HAWebSocket {
      constructor(url: string) {
        super(url, { maxAttemptsPerFailure: 1 });
      }
    }
    const ha = await handlerScenario(OneAttempt as unknown as ScenarioConstructor, options);
    assertEquals(ha, expectedLog(true));
    // Deno's own WebSocket (2.x) keeps a handler set to null and then set again in its old place
    // (WHATWG HTML adds it at the end, as Chromium does: e2e/tests/event-handlers.spec.ts), so
    // the steps after that one differ there; everything before it, and the close and error
    // steps, must match.
    const comparable = (log: string[]) =>
      log.filter((line) => /^(open|m1|m2|reassigned|close|refused)\b/.test(line));
    assertEquals(comparable(native), comparable(expectedLog(true)));
    assertEquals(comparable(native).length, 16);
    assertEquals(reports, ['thrown by onmessage for m5', 'thrown by onmessage for m5']);
  } finally {
    globalThis.removeEventListener('error', onError);
    await echo.close();
  }
});
