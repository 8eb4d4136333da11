/**
 * WebSocket close codes (RFC 6455 §7.4 and the IANA registry) and the ones Lifeline gives meaning to.
 *
 * Recoverable (the server went away or is overloaded; reopening may work):
 * 1001 GoingAway, 1006 Abnormal, 1011 InternalError, 1012 ServiceRestart, 1013 TryAgainLater.
 * Fatal (reopening would fail the same way): 1002 ProtocolError, 1003 UnsupportedData, 1007, 1008 PolicyViolation,
 * 1009 MessageTooBig, 1010, and the application range 4400-4499, which Lifeline reserves for "the client's
 * request is wrong" (4401 Unauthorized, 4403 Forbidden), mirroring HTTP 4xx.
 * 1000 NormalClosure is a deliberate close by the peer: fatal too, unless the user's classifier says otherwise.
 */
export enum CloseCode {
  NormalClosure = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  UnsupportedData = 1003,
  NoStatusReceived = 1005,
  Abnormal = 1006,
  InvalidPayload = 1007,
  PolicyViolation = 1008,
  MessageTooBig = 1009,
  MandatoryExtension = 1010,
  InternalError = 1011,
  ServiceRestart = 1012,
  TryAgainLater = 1013,
  BadGateway = 1014,
  Unauthorized = 4401,
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
