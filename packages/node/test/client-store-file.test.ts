/**
 * `FileClientSessionStore` (issue 15): atomic whole-file writes, one owning process (a lock file
 * with its pid; a dead owner's lock is taken over, a live one refuses with a typed error), typed
 * errors for a file it cannot read, and the control case: without a store, a SIGKILLed client
 * loses its session.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ClientSessionLockedError, ClientSessionStoreError } from '@lifeline/core';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { ClientProcess, streamingServer } from './support/client-store-harness.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-file-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const id = new Uint8Array(16).fill(7);
const token = new Uint8Array(16).fill(9);
const text = (s: string) => new TextEncoder().encode(s);

test('writes replace the file whole (mode 0600), reads come back exactly, a reset removes it', async () => {
  const path = join(tempDir(), 'session.json');
  const store = new FileClientSessionStore(path);
  expect(await store.open()).toBeUndefined();
  await store.write({ reset: true, identity: { id, token } });
  await store.write({ append: [1, 2, 3].map((seq) => ({ seq, kind: 'text', payload: text(`m${seq}`) })) });
  await store.write({ peerAcked: 2, received: 5, delivered: 6 });
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(existsSync(`${path}.tmp`)).toBe(false);
  await store.close();
  expect(existsSync(`${path}.lock`)).toBe(false);

  const again = new FileClientSessionStore(path);
  const stored = await again.open();
  expect(stored).toEqual({
    id,
    token,
    peerAcked: 2,
    received: 5,
    delivered: 6,
    messages: [{ seq: 3, kind: 'text', payload: text('m3') }],
  });
  await again.write({ reset: true });
  expect(existsSync(path)).toBe(false);
  await again.close();
});

test('one owner: a second store on the file is refused while the first lives; a dead owner’s lock is taken over', async () => {
  const path = join(tempDir(), 'session.json');
  const first = new FileClientSessionStore(path);
  await first.open();
  const second = new FileClientSessionStore(path);
  const refused = await second.open().catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(ClientSessionLockedError);
  expect((refused as ClientSessionLockedError).owner).toBe(`pid ${process.pid}`);
  await first.close();
  await second.open();
  await second.close();

  // A process that took the lock and was SIGKILLed: its pid no longer runs, the lock is stale.
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  await once(child, 'spawn');
  writeFileSync(`${path}.lock`, `${child.pid}\n`);
  const blocked = await new FileClientSessionStore(path).open().catch((error: unknown) => error);
  expect(blocked).toBeInstanceOf(ClientSessionLockedError);
  expect((blocked as ClientSessionLockedError).owner).toBe(`pid ${child.pid}`);
  child.kill('SIGKILL');
  await once(child, 'exit');
  const next = new FileClientSessionStore(path);
  await next.open();
  expect(readFileSync(`${path}.lock`, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
  await next.close();
});

test('a session a later version wrote (format version 2) is refused as unsupported-version, not corrupt, and left as it is', async () => {
  // Before: reason 'corrupt', whose advice (delete it) gives up the session's unsent messages
  // after a rollback; the later version could have resumed them.
  const path = join(tempDir(), 'session.json');
  const later = '{"format":"lifeline-client-session","version":2,"id":"00","anything":"new"}';
  writeFileSync(path, later);
  const error = await new FileClientSessionStore(path).open().catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ClientSessionStoreError);
  expect((error as ClientSessionStoreError).reason).toBe('unsupported-version');
  expect((error as Error).message).toMatch(/format version 2 by a later version of Lifeline.*Keep it/);
  expect(existsSync(`${path}.lock`)).toBe(false);
  expect(readFileSync(path, 'utf8')).toBe(later);
  // Not a number, or below 1: corrupt, as before.
  for (const version of ['"2"', '0', '1.5']) {
    writeFileSync(path, `{"format":"lifeline-client-session","version":${version}}`);
    const bad = await new FileClientSessionStore(path).open().catch((caught: unknown) => caught);
    expect((bad as ClientSessionStoreError).reason).toBe('corrupt');
  }
});

test('a file that is not a session is refused with ClientSessionStoreError corrupt, and the lock is released', async () => {
  const path = join(tempDir(), 'session.json');
  writeFileSync(path, '{"format":"lifeline-client-session","version":1,"id":"00');
  const store = new FileClientSessionStore(path);
  const error = await store.open().catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ClientSessionStoreError);
  expect((error as ClientSessionStoreError).reason).toBe('corrupt');
  expect((error as ClientSessionStoreError).location).toBe(path);
  expect(existsSync(`${path}.lock`)).toBe(false);
  // Not written over: the bytes are still there for whoever investigates.
  expect(readFileSync(path, 'utf8')).toContain('lifeline-client-session');

  // A path that cannot be read as a file (a directory): an I/O error, not a corrupt session.
  const unreadable = new FileClientSessionStore(tempDir());
  const io = await unreadable.open().catch((caught: unknown) => caught);
  expect((io as ClientSessionStoreError).reason).toBe('unreadable');
});

test('control: without a store, a SIGKILLed client starts a new session and its unacknowledged messages are gone', async () => {
  const server = await streamingServer(200);
  const first = ClientProcess.start(server.url, '', 200);
  await first.line(() => first.received.length >= 20, 'receiving');
  await first.kill();
  const second = ClientProcess.start(server.url, '', 200);
  const open = await second.line((line) => 'restored' in line, 'opening');
  expect(open.restored).toBeNull();
  await second.line(() => server.sessions.length === 2, 'a second session');
  expect(server.sessions).toHaveLength(2);
  await second.kill();
});

test('with the file store, the same SIGKILL resumes the one session', async () => {
  const server = await streamingServer(200);
  const path = join(tempDir(), 'session.json');
  const first = ClientProcess.start(server.url, path, 200);
  const opened = await first.line((line) => 'restored' in line, 'opening');
  await first.line(() => first.received.length >= 20, 'receiving');
  await first.kill();
  const second = ClientProcess.start(server.url, path, 200);
  const open = await second.line((line) => 'restored' in line, 'opening');
  expect(open.sessionId).toBe(opened.sessionId);
  expect(open.restored).toMatchObject({ sessionId: opened.sessionId });
  const restored = open.restored as { lastReceived: number };
  await second.line(() => second.received.length >= 5, 'receiving after the restart');
  // The application gets exactly the messages after the stored watermark.
  expect(second.received[0]![1]).toBe(restored.lastReceived + 1);
  expect(server.sessions).toHaveLength(1);
  await second.kill();
});

test('a lock naming this pid that this process did not take (a predecessor with the same pid, a container’s pid 1) is stale', async () => {
  const path = join(tempDir(), 'session.json');
  // What a SIGKILLed predecessor that had this pid left behind.
  writeFileSync(`${path}.lock`, `${process.pid}\n`);
  const store = new FileClientSessionStore(path);
  await store.open();
  expect(readFileSync(`${path}.lock`, 'utf8')).toMatch(
    new RegExp(`^${process.pid} [0-9a-f]{16}( [0-9a-f]+:[0-9]+)?\\n$`),
  );
  // While a store of this process holds it, it is held.
  const second = await new FileClientSessionStore(path).open().catch((error: unknown) => error);
  expect(second).toBeInstanceOf(ClientSessionLockedError);
  await store.close();
  expect(existsSync(`${path}.lock`)).toBe(false);
});

const racer = fileURLToPath(new URL('./support/lock-race-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

/** `count` processes open the store at the same instant; resolves with what each printed, then lets them go. */
async function race(path: string, count: number): Promise<string[]> {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--conditions=@lifeline/source', '--import', 'tsx', racer, path], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  cleanups.push(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const outputs = children.map((child) => createInterface({ input: child.stdout })[Symbol.asyncIterator]());
  const next = async (lines: AsyncIterator<string>) => {
    const line = await lines.next();
    if (line.done) throw new Error('a racer exited early');
    return line.value;
  };
  expect(await Promise.all(outputs.map(next))).toEqual(children.map(() => 'READY'));
  // Every racer is loaded: they all spin until the same instant, then open.
  const go = Date.now() + 300;
  for (const child of children) child.stdin.write(`${go}\n`);
  const results = await Promise.all(outputs.map(next));
  for (const child of children) child.stdin.end();
  await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
  return results;
}

test('processes racing for one store: exactly one owner, on a fresh file and over a dead pid’s lock', {
  timeout: 240_000,
}, async () => {
  const dead = spawn(process.execPath, ['-e', '']);
  await once(dead, 'exit');
  const tally: string[] = [];
  for (let round = 0; round < 10; round++) {
    const path = join(tempDir(), 'session.json');
    if (round % 2 === 1) writeFileSync(`${path}.lock`, `${dead.pid}\n`);
    const lines = await race(path, 6);
    tally.push(`round ${round}: ${lines.join(' ')}`);
    expect(
      lines.filter((line) => line === 'OWNED'),
      tally.join('\n'),
    ).toHaveLength(1);
    expect(
      lines.filter((line) => line === 'ERR_SESSION_LOCKED'),
      tally.join('\n'),
    ).toHaveLength(5);
  }
});
