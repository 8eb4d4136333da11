/**
 * Reports an exception the application's code threw into a call from the library (an `on*`
 * handler, a listener, a subscriber), as a browser does (WHATWG HTML "report the exception"):
 * `reportError` where the runtime has it (browsers, Deno, Bun), else a rethrow in a microtask, so
 * Node reports an uncaught exception. The caller goes on: the application's bug must never stop
 * the delivery to the others or reach the connection's state machine.
 * @internal
 */
export function reportException(error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === 'function') report(error);
  else
    queueMicrotask(() => {
      throw error;
    });
}
