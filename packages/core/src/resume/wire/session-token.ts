import { SESSION_ID_BYTES, SESSION_TOKEN_BYTES } from './resume-frame.js';

/**
 * Random bytes from the platform's CSPRNG (`crypto.getRandomValues`: Node 20, browsers, Deno),
 * looked up when called, never at import time.
 *
 * @example
 * ```ts
 * const token = randomBytes(16);
 * ```
 * @see constantTimeEqual
 */
export function randomBytes(length: number): Uint8Array {
  const crypto = (globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => Uint8Array } }).crypto;
  if (typeof crypto?.getRandomValues !== 'function') {
    throw new TypeError('crypto.getRandomValues is not available: session ids and tokens need a CSPRNG');
  }
  return crypto.getRandomValues(new Uint8Array(length));
}

/** A new 128-bit session id. */
export const newSessionId = (): Uint8Array => randomBytes(SESSION_ID_BYTES);
/** A new 128-bit session token. */
export const newSessionToken = (): Uint8Array => randomBytes(SESSION_TOKEN_BYTES);

/**
 * Compares two byte arrays in time that depends only on their length, so a wrong token teaches
 * an attacker nothing about how much of it was right.
 *
 * @example
 * ```ts
 * if (!constantTimeEqual(presented, expected)) reject('invalid-token');
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/** Lower-case hex, for session ids in logs and store keys (never for tokens). */
export function bytesToHex(bytes: Uint8Array): string {
  // Joined, not concatenated: `+=` leaves a rope of cons strings per id (about 0.3 KB each, for
  // as long as the session lives); `join` makes one flat string.
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = HEX_BYTES[bytes[i]!]!;
  return parts.join('');
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** The bytes of a hex string; `undefined` when it is not hex of even length. */
export function hexToBytes(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return undefined;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
