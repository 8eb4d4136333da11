import { constants } from 'node:fs';
import { type FileHandle, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ClientSessionLockedError, ClientSessionStoreError, InvalidOptionError } from '@lifeline/core';
import {
  applyClientSessionChange,
  type ClientSessionChange,
  type ClientSessionStore,
  decodeClientSession,
  encodeClientSession,
  type StoredClientSession,
} from '@lifeline/core/resume';

/** Options of {@link FileClientSessionStore}. */
export interface FileClientSessionStoreOptions {
  /**
   * `fsync` the data file before each rename and the directory after it, so a write that resolved
   * survives a power loss too. `false`: a process crash still loses nothing (the rename is
   * atomic), a power loss may lose the last writes.
   * @default true
   */
  readonly fsync?: boolean;
  /** The lock file that names the owning process. @default `${path}.lock` */
  readonly lockPath?: string;
}

/**
 * A client session store in one file, for Node clients that must resume their session after the
 * process died (SIGKILL, OOM, a crash, a restart): `resume({ store: new FileClientSessionStore(path) })`.
 *
 * - **Atomic writes.** Each write (one per tick, batched by the connection) replaces the file
 *   whole: the new content goes to `${path}.tmp`, is `fsync`ed, renamed over `path`, and the
 *   directory is `fsync`ed. A crash at any point leaves the previous or the new session, never a
 *   torn one. The cost is the size of what is unacknowledged, per write (see the benchmark).
 * - **One owner.** `open()` creates `${path}.lock` exclusively (`O_EXCL`) with the process id. A
 *   lock whose process is gone (`kill(pid, 0)` fails with `ESRCH`) is stale and taken over; a live
 *   one makes `open()` reject with {@link ClientSessionLockedError}. `close()` removes the lock.
 *   The pid check is host-local: do not share the file between hosts.
 * - **The token.** The file holds the session's secret token in clear (it is what resumes the
 *   session): it is created with mode `0600` (owner read/write), in a directory you choose; on
 *   Windows the mode is ignored and the directory's ACL decides.
 * - **Typed errors.** A file that is not a session this version wrote rejects `open()` with
 *   {@link ClientSessionStoreError} `'corrupt'` (delete it to start afresh); an I/O failure with
 *   `'unreadable'`; a failed write with `'write-failed'`, which closes the connection.
 *
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/node/ws';
 * import { FileClientSessionStore } from '@lifeline/node/client-store';
 * const socket = new HAWebSocket(url, { resume: resume({ store: new FileClientSessionStore('./session.json') }) });
 * socket.addEventListener('open', () => console.log(socket.session?.restored));
 * ```
 * @see docs/durable-sessions.md
 */
export class FileClientSessionStore implements ClientSessionStore {
  readonly lockPath: string;
  private readonly fsync: boolean;
  private inFlight: Promise<void> = Promise.resolve();
  private state: StoredClientSession | undefined;
  private owned = false;

  /** @throws InvalidOptionError when `path` (or `lockPath`) is not a non-empty string */
  constructor(
    readonly path: string,
    options: FileClientSessionStoreOptions = {},
  ) {
    // A missing path would lock and write `undefined` and `undefined.lock` in the working directory.
    if (typeof path !== 'string' || path === '') {
      throw new InvalidOptionError(`path must be a non-empty file path, got ${JSON.stringify(path)}`);
    }
    if (options.lockPath !== undefined && (typeof options.lockPath !== 'string' || options.lockPath === '')) {
      throw new InvalidOptionError(
        `lockPath must be a non-empty file path, got ${JSON.stringify(options.lockPath)}`,
      );
    }
    this.lockPath = options.lockPath ?? `${path}.lock`;
    this.fsync = options.fsync ?? true;
  }

  async open(): Promise<StoredClientSession | undefined> {
    if (this.owned) throw new ClientSessionLockedError(this.path, `pid ${process.pid}`);
    await this.lock();
    try {
      this.state = await this.read();
    } catch (error) {
      await this.unlock();
      throw error;
    }
    return this.state;
  }

  write(change: ClientSessionChange): Promise<void> {
    const written = this.writeNow(change);
    // close() waits for it: the lock is never released under a write still in flight.
    this.inFlight = written.catch(() => {});
    return written;
  }

  private async writeNow(change: ClientSessionChange): Promise<void> {
    if (!this.owned)
      throw new ClientSessionStoreError('write-failed', 'the store is not open', { location: this.path });
    const next = applyClientSessionChange(this.state, change);
    try {
      if (next) await this.replace(encodeClientSession(next));
      else if (this.state) await this.remove();
    } catch (error) {
      throw new ClientSessionStoreError('write-failed', `writing ${this.path} failed: ${String(error)}`, {
        cause: error,
        location: this.path,
      });
    }
    this.state = next;
  }

  async close(): Promise<void> {
    if (!this.owned) return;
    this.owned = false;
    await this.inFlight;
    await this.unlock();
  }

  private async read(): Promise<StoredClientSession | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ClientSessionStoreError('unreadable', `reading ${this.path} failed: ${String(error)}`, {
        cause: error,
        location: this.path,
      });
    }
    return decodeClientSession(text, this.path);
  }

  private async replace(text: string): Promise<void> {
    const temp = `${this.path}.tmp`;
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.path);
    if (this.fsync) await syncDirectory(this.path);
  }

  private async remove(): Promise<void> {
    await unlink(this.path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    if (this.fsync) await syncDirectory(this.path);
  }

  /** Takes the lock file: created exclusively; a stale one (its process is gone) is taken over. */
  private async lock(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      let handle: FileHandle;
      try {
        handle = await open(this.lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw this.lockFailed(error);
        const owner = await readLockOwner(this.lockPath);
        if (owner !== undefined && isAlive(owner))
          throw new ClientSessionLockedError(this.path, `pid ${owner}`);
        await this.takeStale(owner);
        continue;
      }
      try {
        await handle.writeFile(`${process.pid}\n`, 'utf8');
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      this.owned = true;
      return;
    }
    throw new ClientSessionLockedError(this.path);
  }

  /**
   * Removes a stale lock. It is renamed away first, then read back: if another process took the
   * lock in between (its pid is in the moved file), the lock is put back and this open fails, so
   * two processes racing for one stale lock never both own the session.
   */
  private async takeStale(staleOwner: number | undefined): Promise<void> {
    const moved = `${this.lockPath}.stale-${process.pid}`;
    try {
      await rename(this.lockPath, moved);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.lockFailed(error);
    }
    const owner = await readLockOwner(moved);
    if (owner !== staleOwner && owner !== undefined && isAlive(owner)) {
      await rename(moved, this.lockPath).catch(() => {});
      throw new ClientSessionLockedError(this.path, `pid ${owner}`);
    }
    await unlink(moved).catch(() => {});
  }

  private async unlock(): Promise<void> {
    this.owned = false;
    // Only our own lock: a lock taken over from us (we were presumed dead) is the new owner's.
    if ((await readLockOwner(this.lockPath)) === process.pid) await unlink(this.lockPath).catch(() => {});
  }

  private lockFailed(error: unknown): ClientSessionStoreError {
    return new ClientSessionStoreError(
      'unreadable',
      `taking the lock ${this.lockPath} failed: ${String(error)}`,
      {
        cause: error,
        location: this.path,
      },
    );
  }
}

async function readLockOwner(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this id runs on this host (`EPERM`: it runs, as another user). */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dirname(path), constants.O_RDONLY);
    await handle.sync();
  } catch (error) {
    // Windows cannot open a directory: its renames are as durable as the platform makes them.
    if (!['EISDIR', 'EPERM', 'EACCES', 'EINVAL'].includes((error as NodeJS.ErrnoException).code ?? ''))
      throw error;
  } finally {
    await handle?.close();
  }
}
