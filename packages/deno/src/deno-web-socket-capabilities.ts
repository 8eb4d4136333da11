import { CloseCode, listenWithEventTarget, type WebSocketCapabilities } from '@lifeline/core/internal';

/**
 * Deno's WebSocket, as the core transport needs it. Deno ends a connection that failed under it
 * (the peer gone, a broken pipe) with an error event and then a close event whose code is 0 where
 * the WHATWG spec says 1006 (abnormal closure). 0 is no close code at all (RFC 6455 leaves
 * 0-999 unused), so any code below 1000 is reported as the 1006 it stands for, and the failure
 * is classified as recoverable instead of as an unknown close code.
 */
export const denoWebSocketCapabilities: WebSocketCapabilities = {
  listen: (socket, handlers) =>
    listenWithEventTarget(socket, {
      // Called as methods: the link's handlers are a class's (a spread would lose them).
      onOpen: () => handlers.onOpen(),
      onMessage: (data) => handlers.onMessage(data),
      onError: (event) => handlers.onError(event),
      onClose: (code, reason) =>
        handlers.onClose(code >= CloseCode.NormalClosure ? code : CloseCode.Abnormal, reason),
    }),
};
