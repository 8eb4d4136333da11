/**
 * break15: one process, two `FileClientSessionStore`s on the same file reached by two paths (a
 * symlinked directory, as `/var/run` -> `/run`, or a bind mount). The second must be refused: two
 * owners of one stored session in one process interleave it. Before a fix, the lock naming this
 * process's pid and not found under the second path's key in `heldLocks` was judged a
 * predecessor's (stale) and taken over from the live first store.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientSessionLockedError } from '@lifeline/core';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';

test('a second store of this process on the same file through a symlinked directory is refused, not a second owner', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-file-store-alias-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'real'));
  symlinkSync(join(dir, 'real'), join(dir, 'alias'));
  const first = new FileClientSessionStore(join(dir, 'real', 'session.json'));
  const second = new FileClientSessionStore(join(dir, 'alias', 'session.json'));
  cleanups.push(
    () => first.close(),
    () => second.close(),
  );
  expect(await first.open()).toBeUndefined();
  await expect(second.open()).rejects.toBeInstanceOf(ClientSessionLockedError);
  // The first still owns the session: its writes go on.
  const id = new Uint8Array(16).fill(1);
  await first.write({ reset: true, identity: { id, token: id } });
  await first.close();
  // Once it let go, the other path opens it.
  expect((await second.open())?.id).toEqual(id);
  await second.close();
});
