// A resuming connection's session token is never printed on Deno either: Deno.inspect (what
// console.log uses) and JSON.stringify of the socket, its session, the transport from
// resumable() and the server's sessions show no token.
import { ok as assert, deepStrictEqual as assertEquals } from 'node:assert/strict';
import { attach } from '@lifeline/core';
import { type ClientSessionChange, MemoryClientSessionStore, resumable } from '@lifeline/core/resume';
import { FileClientSessionStore } from '../src/client-store.ts';
import { denoWebSocketTransport, HAWebSocket, resume } from '../src/index.ts';
import { createResumeServer } from '../src/server.ts';

class RecordingStore extends MemoryClientSessionStore {
  readonly tokens: Uint8Array[] = [];
  override write(change: ClientSessionChange): Promise<void> {
    if (change.identity) this.tokens.push(change.identity.token.slice());
    return super.write(change);
  }
}

function leaks(text: string, token: Uint8Array): boolean {
  const hex = [...token].map((b) => b.toString(16).padStart(2, '0')).join('');
  return (
    text.toLowerCase().includes(hex) ||
    // Deno.inspect prints a Uint8Array as `[ 12, 34, ... ]`, wrapped over lines; JSON as {"0":12,...}.
    text.replace(/\s+/g, '').includes([...token].join(',')) ||
    text.includes([...token].map((b, i) => `"${i}":${b}`).join(',')) ||
    text.includes(String.fromCharCode(...token)) ||
    text.includes(Deno.inspect(String.fromCharCode(...token)).slice(1, -1))
  );
}

Deno.test('Deno.inspect and JSON.stringify of a resuming socket, its session and transport show no token', async () => {
  const server = createResumeServer();
  const serverSessions: unknown[] = [];
  server.sessions$.subscribe((session) => {
    serverSessions.push(session);
    session.messages$.subscribe((m) => session.send(m.data));
  });
  const { port } = await server.listen({ port: 0 });
  const url = `ws://127.0.0.1:${port}`;
  const store = new RecordingStore();
  const socket = new HAWebSocket(url, { resume: resume({ store }) });
  const store2 = new RecordingStore();
  const transport = resumable(denoWebSocketTransport(url), { store: store2 });
  const conn = attach(transport);
  try {
    let echoed = 0;
    socket.addEventListener('message', () => echoed++);
    await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
    socket.send('ping');
    await conn.send('pong');
    const deadline = performance.now() + 10_000;
    while (
      (echoed < 1 || store.tokens.length === 0 || store2.tokens.length === 0) &&
      performance.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert(echoed === 1 && store.tokens.length > 0 && store2.tokens.length > 0);
    const found: string[] = [];
    const values: [string, unknown, Uint8Array][] = [
      ['socket', socket, store.tokens.at(-1)!],
      ['socket.session', socket.session, store.tokens.at(-1)!],
      ['transport', transport, store2.tokens.at(-1)!],
      ['transport.session', transport.session, store2.tokens.at(-1)!],
      ['connection', conn, store2.tokens.at(-1)!],
    ];
    // A plain memory store holding the session (RecordingStore keeps the tokens it saw, for the test).
    const memory = new MemoryClientSessionStore();
    await memory.open();
    await memory.write({ reset: true, identity: { id: store.stored!.id, token: store.tokens.at(-1)! } });
    values.push(['memory store', memory, store.tokens.at(-1)!]);
    // The Deno file store holds the session it read or wrote.
    const dir = await Deno.makeTempDir();
    const fileStore = new FileClientSessionStore(`${dir}/session.json`);
    await fileStore.open();
    await fileStore.write({ reset: true, identity: { id: store.stored!.id, token: store.tokens.at(-1)! } });
    values.push(['file store', fileStore, store.tokens.at(-1)!]);
    for (const [label, value, token] of values) {
      if (leaks(Deno.inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true }), token))
        found.push(label);
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch {}
      if (json !== undefined && leaks(json, token)) found.push(`${label} (JSON)`);
    }
    for (const token of [...store.tokens, ...store2.tokens]) {
      if (leaks(Deno.inspect(serverSessions, { depth: Number.POSITIVE_INFINITY, showHidden: true }), token))
        found.push('server sessions');
    }
    assertEquals(found, []);
    await fileStore.close();
    await Deno.remove(dir, { recursive: true });
  } finally {
    socket.close();
    await conn.close?.();
    await server.close();
  }
});
