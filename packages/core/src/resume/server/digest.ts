/**
 * A token digest as the server holds it while a session lives: its bytes as a one-byte string
 * (one char per byte, 0-255). A 32-byte SHA-256 digest as a Uint8Array costs ~0.22 KB of heap
 * with its ArrayBuffer; as a flat one-byte string ~0.05 KB. Stores still get and give bytes.
 */
export type Digest = string;

/** The digest of `bytes` (one char per byte). */
export function digestOf(bytes: Uint8Array): Digest {
  return String.fromCharCode(...bytes);
}

/** The bytes of a digest, for a store. */
export function digestBytes(digest: Digest): Uint8Array {
  const bytes = new Uint8Array(digest.length);
  for (let i = 0; i < digest.length; i++) bytes[i] = digest.charCodeAt(i);
  return bytes;
}

/**
 * Compares two digests in time that depends only on their length, as `constantTimeEqual` does
 * for bytes, so a wrong token teaches an attacker nothing about how much of it was right.
 */
export function digestEqual(a: Digest, b: Digest): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * What the server keeps to check a session's token, for as long as it holds the session (its whole
 * TTL when detached). Digests are {@link Digest} strings, not byte arrays: a 32-byte Uint8Array
 * with its ArrayBuffer costs ~0.22 KB, the string ~0.05 KB (`pnpm bench server`).
 *
 * It hangs off the `ServerSession` an application is handed, so it prints as `SessionAuth
 * [redacted]` for `JSON.stringify` and `util.inspect` (set by the server: see `setPrintViews`): a
 * digest is not the token, but a log is no place for either. On the prototype: no bytes per session.
 */
export class SessionAuth {
  tokenHash: Digest;
  /** The token the client last presented successfully: good until it confirms `tokenHash`. */
  retiredTokenHash: Digest | null;
  tokenConfirmed: boolean;
  expiresAt: number | null;
  /** Older digests, newest first (at most `TOKEN_HISTORY`, 8), to count their replay as such; made on the first rotation. */
  history: Digest[] | undefined = undefined;

  constructor(
    tokenHash: Digest,
    retiredTokenHash: Digest | null,
    tokenConfirmed: boolean,
    expiresAt: number | null,
  ) {
    this.tokenHash = tokenHash;
    this.retiredTokenHash = retiredTokenHash;
    this.tokenConfirmed = tokenConfirmed;
    this.expiresAt = expiresAt;
  }

  toJSON(): string {
    return REDACTED;
  }
}

const REDACTED = 'SessionAuth [redacted]';
