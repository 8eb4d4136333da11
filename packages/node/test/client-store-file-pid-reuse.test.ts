/**
 * break15: a lock left by a SIGKILLed owner whose pid now belongs to an unrelated live process (pid
 * reuse: a host reboot, a container restarted on a persistent volume, a busy host). The lock was
 * written an hour before that process started, so that process cannot be its owner: the lock is
 * stale and the next open should take it. On main, `kill(pid, 0)` succeeds and every open is
 * refused with ClientSessionLockedError for as long as the unrelated process lives: the stored
 * session (and its unacknowledged messages) is stuck until someone deletes the lock by hand.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';

test('a lock naming a live pid that started after the lock was written (pid reused) is stale', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-file-store-pid-reuse-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  // An unrelated live process: it stands for whatever got the dead owner's pid.
  const unrelated = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  cleanups.push(() => {
    unrelated.kill('SIGKILL');
  });
  await new Promise((resolve) => unrelated.once('spawn', resolve));
  const path = join(dir, 'session.json');
  writeFileSync(`${path}.lock`, `${unrelated.pid} 0123456789abcdef\n`);
  const anHourAgo = new Date(Date.now() - 3_600_000);
  utimesSync(`${path}.lock`, anHourAgo, anHourAgo);
  const store = new FileClientSessionStore(path);
  cleanups.push(() => store.close());
  await expect(store.open()).resolves.toBeUndefined();
});
