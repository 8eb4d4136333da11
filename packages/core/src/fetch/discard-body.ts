/**
 * Cancels a response body that will not be read (a refused continuation, a response superseded
 * by a retry), freeing its connection. A cancel that fails means the body had already ended or
 * errored: there is nothing left to free and nothing to report, so the rejection is dropped here,
 * in one place, rather than as an unhandled rejection.
 */
export function discardBody(
  response: { readonly body: ReadableStream<Uint8Array> | null } | undefined,
): void {
  response?.body?.cancel().catch(ignoreEndedBody);
}

/** `ReadableStreamDefaultReader.cancel()` of a body being abandoned: see {@link discardBody}. */
export function discardReader(
  reader: { cancel(reason?: unknown): Promise<void> } | undefined,
  reason: unknown,
): void {
  reader?.cancel(reason).catch(ignoreEndedBody);
}

function ignoreEndedBody(): void {}
