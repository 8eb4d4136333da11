// Shared by the tests that check a session token is never written out: where the token comes
// from (a store that records the identities it is given) and every form a print could take.
import { inspect } from 'node:util';
import { type ClientSessionChange, MemoryClientSessionStore } from '@lifeline/node/client-store';

/** A memory store that keeps the identities it was given: a test learns the token from it. */
export class RecordingStore extends MemoryClientSessionStore {
  readonly tokens: Uint8Array[] = [];
  override write(change: ClientSessionChange): Promise<void> {
    if (change.identity) this.tokens.push(change.identity.token.slice());
    return super.write(change);
  }
}

/** Whether `text` shows `token` in any form util.inspect, JSON.stringify or a logger writes. */
export function leaks(text: string, token: Uint8Array): boolean {
  const hex = Buffer.from(token).toString('hex');
  return (
    text.toLowerCase().includes(hex) ||
    text.includes(Buffer.from(token).toString('base64')) ||
    // util.inspect prints a Uint8Array as `[ 12, 34, ... ]`, wrapped over lines.
    text.replace(/\s+/g, '').includes([...token].join(',')) ||
    text.includes([...token].map((b) => b.toString(16).padStart(2, '0')).join(' ')) ||
    // JSON.stringify writes a Uint8Array as an object: {"0":12,"1":34,...}.
    text.includes([...token].map((b, i) => `"${i}":${b}`).join(',')) ||
    text.includes(String.fromCharCode(...token)) ||
    // util.inspect escapes a string's control characters: the token's characters as it prints them.
    text.includes(inspect(String.fromCharCode(...token)).slice(1, -1))
  );
}
