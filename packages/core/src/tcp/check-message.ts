import { InvalidMessageError } from '../engine/errors.js';

/**
 * A TCP transport's {@link Transport.check}: a TCP connection carries bytes only (a `Uint8Array`,
 * which a Node `Buffer` is), so anything else is refused at the send, with nothing queued, rather
 * than failing later in the write path where no caller sees it.
 *
 * @throws InvalidMessageError (`ERR_INVALID_MESSAGE`) naming the type it got.
 */
export function checkTcpMessage(data: unknown): void {
  if (data instanceof Uint8Array) return;
  const type =
    data === null
      ? 'null'
      : typeof data === 'string'
        ? 'a string (encode it first, e.g. with TextEncoder)'
        : ArrayBuffer.isView(data) || data instanceof ArrayBuffer
          ? `${Object.prototype.toString.call(data).slice(8, -1)} (wrap it in a Uint8Array)`
          : Array.isArray(data)
            ? 'an array'
            : typeof data;
  throw new InvalidMessageError(`a TCP message must be bytes (a Uint8Array or a Buffer), got ${type}`);
}
