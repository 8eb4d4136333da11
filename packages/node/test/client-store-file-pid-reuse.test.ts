/**
 * A lock left by a SIGKILLed owner whose pid now belongs to an unrelated live process (pid reuse:
 * a host reboot, a container restarted on a persistent volume, a busy host). Before, `kill(pid, 0)`
 * succeeded and every open was refused with ClientSessionLockedError for as long as the unrelated
 * process lived: the stored session and its unacknowledged messages were stuck until someone
 * deleted the lock by hand. The lock now records the owner's identity (Linux: boot id and start
 * time), which a later process with the same pid does not share.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientSessionLockedError } from '@lifeline/core';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { describe, expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';

const linux = process.platform === 'linux';

/** A live process unrelated to any lock: it stands for whatever got the dead owner's pid. */
async function unrelatedProcess() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  cleanups.push(() => {
    child.kill('SIGKILL');
  });
  await new Promise((resolve) => child.once('spawn', resolve));
  return child.pid!;
}

function lockDir() {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-file-store-pid-reuse-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'session.json');
}

const startTicks = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '');

describe.runIf(linux)('FileClientSessionStore: a lock whose pid was reused', () => {
  test('a lock naming a live pid with another start time (the dead owner) is stale: the next open takes it', async () => {
    const pid = await unrelatedProcess();
    const path = lockDir();
    const ticks = Number(startTicks(pid));
    writeFileSync(`${path}.lock`, `${pid} 0123456789abcdef ${bootId()}:${Math.max(0, ticks - 500)}\n`);
    const store = new FileClientSessionStore(path);
    cleanups.push(() => store.close());
    await expect(store.open()).resolves.toBeUndefined();
    // The lock is this store's now, with this process's identity.
    expect(readFileSync(`${path}.lock`, 'utf8')).toMatch(
      new RegExp(`^${process.pid} [0-9a-f]{16} ${bootId()}:${startTicks(process.pid)}\\n$`),
    );
  });

  test('a lock written in another boot is stale even though its pid runs now', async () => {
    const pid = await unrelatedProcess();
    const path = lockDir();
    writeFileSync(
      `${path}.lock`,
      `${pid} 0123456789abcdef ffffffffffffffffffffffffffffffff:${startTicks(pid)}\n`,
    );
    const store = new FileClientSessionStore(path);
    cleanups.push(() => store.close());
    await expect(store.open()).resolves.toBeUndefined();
  });

  test('a lock whose pid runs with the identity it records is held', async () => {
    const pid = await unrelatedProcess();
    const path = lockDir();
    writeFileSync(`${path}.lock`, `${pid} 0123456789abcdef ${bootId()}:${startTicks(pid)}\n`);
    const store = new FileClientSessionStore(path);
    cleanups.push(() => store.close());
    await expect(store.open()).rejects.toBeInstanceOf(ClientSessionLockedError);
  });

  test('a lock without an identity (pid alone) whose pid runs is held, as before', async () => {
    const pid = await unrelatedProcess();
    const path = lockDir();
    writeFileSync(`${path}.lock`, `${pid} 0123456789abcdef\n`);
    const store = new FileClientSessionStore(path);
    cleanups.push(() => store.close());
    await expect(store.open()).rejects.toBeInstanceOf(ClientSessionLockedError);
  });
});
