// Shared by the tests that check a session token is never written out: where the token comes
// from (a store that records the identities it is given, on a socket that resumed through an echo
// server) and every form a print could take.
import { inspect } from 'node:util';
import { waitFor } from '@lifeline/core/testing';
import { type ClientSessionChange, MemoryClientSessionStore } from '@lifeline/node/client-store';
import { createResumeServer, type ServerSession } from '@lifeline/node/server';
import { HAWebSocket, resume } from '@lifeline/node/ws';
import { onTestFinished } from 'vitest';

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

/**
 * A resume echo server and a resuming socket (both closed when the test finishes), once one
 * message was echoed: the token is the one the socket's store was last given. `events` holds the
 * socket's `error`, `close`, `open` and `message` events from the start.
 */
export async function echoedResumeSocket() {
  const server = createResumeServer();
  const sessions: ServerSession[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe((m) => session.send(m.data));
  });
  const { url } = await server.listen();
  onTestFinished(() => server.close());
  const store = new RecordingStore();
  const socket = new HAWebSocket(url, { resume: resume({ store }) });
  onTestFinished(() => socket.close());
  const events: Event[] = [];
  for (const type of ['error', 'close', 'open', 'message'])
    socket.addEventListener(type, (e) => events.push(e));
  let echoed = 0;
  socket.addEventListener('message', () => echoed++);
  socket.send('ping');
  await waitFor(() => echoed === 1 && store.tokens.length > 0 && sessions.length === 1, {
    timeoutMs: 10_000,
    what: 'the echo and the token',
  });
  return { server, sessions, store, socket, events, token: store.tokens.at(-1)! };
}
