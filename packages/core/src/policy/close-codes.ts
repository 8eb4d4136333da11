/**
 * WebSocket close codes (RFC 6455 §7.4 and the IANA registry) and the ones Lifeline gives meaning to.
 *
 * Recoverable (the server went away or is overloaded; reopening may work):
 * 1001 GoingAway, 1006 Abnormal, 1011 InternalError, 1012 ServiceRestart, 1013 TryAgainLater.
 * Fatal (reopening would fail the same way): 1002 ProtocolError, 1003 UnsupportedData, 1007, 1008 PolicyViolation,
 * 1009 MessageTooBig, 1010, and the application range 4400-4499, which Lifeline reserves for "the client's
 * request is wrong" (4401 Unauthorized, 4403 Forbidden), mirroring HTTP 4xx.
 * 1000 NormalClosure is a deliberate close by the peer: fatal too, unless the user's classifier says otherwise.
 *
 * The one table of close codes: the client (the WebSocket transport, `HAWebSocket`, the resume
 * client) and the resume server name every code they send or test through it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1 (the names), docs/protocol.md "Close codes"
 */
export enum CloseCode {
  /** 1000 Normal Closure: a deliberate close; the client's `close()`, a session closed by either side. */
  NormalClosure = 1000,
  /** 1001 Going Away: a server shutting down, a link abandoned or taken over, an idle link. Recoverable. */
  GoingAway = 1001,
  /** 1002 Protocol Error: a frame that breaks the resume protocol or RFC 6455. Fatal. */
  ProtocolError = 1002,
  /** 1003 Unsupported Data: a message of a type the endpoint cannot take. Fatal. */
  UnsupportedData = 1003,
  /** 1005 No Status Rcvd: reported (never sent) when a close frame carried no code. Recoverable. */
  NoStatusReceived = 1005,
  /** 1006 Abnormal Closure: reported (never sent) when the connection dropped without a close frame. Recoverable. */
  Abnormal = 1006,
  /** 1007 Invalid Frame Payload Data: a text message or close reason that is not UTF-8. Fatal. */
  InvalidPayload = 1007,
  /** 1008 Policy Violation: a REJECTed handshake (bad token, unknown session). Fatal. */
  PolicyViolation = 1008,
  /** 1009 Message Too Big: a frame above `maxFrameBytes`. Fatal. */
  MessageTooBig = 1009,
  /** 1010 Mandatory Extension: the client needed an extension the server did not negotiate. Fatal. */
  MandatoryExtension = 1010,
  /** 1011 Internal Error: a failed handshake or session store on the server. Recoverable. */
  InternalError = 1011,
  /** 1012 Service Restart. Recoverable. */
  ServiceRestart = 1012,
  /**
   * 1013 Try Again Later: a handshake timeout, a client too slow to read (backpressure), a handshake
   * refused while the server's session store is behind (admission control). Recoverable.
   */
  TryAgainLater = 1013,
  /** 1014 Bad Gateway: a proxy's upstream failed. Recoverable. */
  BadGateway = 1014,
  /** 1015 TLS handshake: reported (never sent) when the TLS handshake failed. */
  TlsHandshake = 1015,
  /** 4401: the application refuses the client's credentials, like HTTP 401. Fatal. */
  Unauthorized = 4401,
  /** 4403: the application refuses the client, like HTTP 403. Fatal. */
  Forbidden = 4403,
}

/** Close codes after which a reopen is worth trying. */
export const RECOVERABLE_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.GoingAway,
  CloseCode.NoStatusReceived,
  CloseCode.Abnormal,
  CloseCode.InternalError,
  CloseCode.ServiceRestart,
  CloseCode.TryAgainLater,
  CloseCode.BadGateway,
]);
