// `FileClientSessionStore` for Deno (issue 15): atomic whole-file writes with mode 0600, one owner
// by flock (a second store is refused; a SIGKILLed owner's lock is released by the OS), typed
// errors for a corrupt file; and a resumable connection that resumes the stored session after the
// first one was abandoned without closing.
import { ok as assert, deepStrictEqual as assertEquals } from 'node:assert/strict';
import { attach, ClientSessionLockedError, ClientSessionStoreError } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { FileClientSessionStore } from '../src/client-store.ts';
import { denoWebSocketTransport } from '../src/index.ts';
import { createResumeServer } from '../src/server.ts';

const id = new Uint8Array(16).fill(7);
const token = new Uint8Array(16).fill(9);
const text = (s: string) => new TextEncoder().encode(s);

Deno.test('writes replace the file whole (mode 0600) and read back exactly; a reset removes it', async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/session.json`;
    const store = new FileClientSessionStore(path);
    assertEquals(await store.open(), undefined);
    await store.write({ reset: true, identity: { id, token } });
    await store.write({
      append: [1, 2].map((seq) => ({ seq, kind: 'text' as const, payload: text(`m${seq}`) })),
    });
    await store.write({ peerAcked: 1, received: 3, delivered: 4 });
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    await store.close();
    const again = new FileClientSessionStore(path);
    assertEquals(await again.open(), {
      id,
      token,
      peerAcked: 1,
      received: 3,
      delivered: 4,
      messages: [{ seq: 2, kind: 'text', payload: text('m2') }],
    });
    await again.write({ reset: true });
    assert(
      !(await Deno.stat(path).then(
        () => true,
        () => false,
      )),
    );
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('one owner: a second store is refused; a SIGKILLed owner process releases the lock', async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/session.json`;
    const first = new FileClientSessionStore(path);
    await first.open();
    const refused = await new FileClientSessionStore(path).open().catch((error: unknown) => error);
    assert(refused instanceof ClientSessionLockedError, String(refused));
    await first.close();

    const storeModule = new URL('../src/client-store.ts', import.meta.url).href;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        'eval',
        '--conditions=@lifeline/source',
        `const { FileClientSessionStore } = await import(${JSON.stringify(storeModule)});` +
          `await new FileClientSessionStore(${JSON.stringify(path)}).open(); console.log('owned'); setInterval(() => {}, 1000);`,
      ],
      env: { DENO_NO_UPDATE_CHECK: '1' },
      stdout: 'piped',
      stderr: 'inherit',
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    while (!seen.includes('owned')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert(seen.includes('owned'));
    const blocked = await new FileClientSessionStore(path).open().catch((error: unknown) => error);
    assert(blocked instanceof ClientSessionLockedError, String(blocked));
    child.kill('SIGKILL');
    await child.status;
    await reader.cancel();
    const next = new FileClientSessionStore(path);
    await next.open();
    await next.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('a corrupt file is refused with ClientSessionStoreError corrupt and not written over', async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/session.json`;
    await Deno.writeTextFile(path, '{"format":"lifeline-client-session","version":1');
    const error = await new FileClientSessionStore(path).open().catch((caught: unknown) => caught);
    assert(error instanceof ClientSessionStoreError);
    assertEquals(error.reason, 'corrupt');
    assert((await Deno.readTextFile(path)).startsWith('{"format"'));
    // The lock was released with the failure.
    const retry = new FileClientSessionStore(path);
    await retry.open().catch(() => {});
    await retry.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('a connection abandoned without closing is resumed by a new one on the same file: the same session, every message once', async () => {
  const dir = await Deno.makeTempDir();
  const server = createResumeServer();
  const received: string[] = [];
  const sessions: string[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session.id);
    session.messages$.subscribe(({ data }) => received.push(String(data)));
  });
  const { port } = await server.listen({ port: 0 });
  try {
    const path = `${dir}/session.json`;
    const url = `ws://127.0.0.1:${port}`;
    const store1 = new FileClientSessionStore(path);
    const first = resumable(denoWebSocketTransport(url), { store: store1 });
    const conn1 = attach(first);
    await conn1.send('a1');
    await conn1.send('a2');
    const sessionId = first.session!.id;
    // The process "dies": its link is dropped without a CLOSE and it never comes back; its lock goes with it.
    const link = conn1.detach() as { abandon?(): void } | undefined;
    link?.abandon?.();
    await store1.close();

    const store2 = new FileClientSessionStore(path);
    const second = resumable(denoWebSocketTransport(url), { store: store2 });
    const conn2 = attach(second);
    await conn2.send('b3');
    assertEquals(second.restored?.sessionId, sessionId);
    assertEquals(second.session!.id, sessionId);
    assertEquals(received, ['a1', 'a2', 'b3']);
    assertEquals(sessions, [sessionId]);
    conn2.close();
    conn1.close();
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
