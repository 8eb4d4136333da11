import { randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { type FileHandle, link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ClientSessionLockedError, ClientSessionStoreError, InvalidOptionError } from '@lifeline/core';
import { ClientSessionFile, type ClientSessionFileOps } from '@lifeline/core/internal';
import type { ClientSessionChange, ClientSessionStore, StoredClientSession } from '@lifeline/core/resume';

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
 * - **One owner.** `open()` takes `${path}.lock`: its content (the process id and a random nonce)
 *   is written to a temp file that is then hard-linked to the lock path, so the lock appears whole
 *   or not at all (`EEXIST`: held). A lock whose process is gone (`kill(pid, 0)` fails with
 *   `ESRCH`), or that names this process's own pid without this process holding it (a predecessor
 *   with the same pid: a container's pid 1 restarts as pid 1), or whose pid now runs a different
 *   process (pid reuse after the owner died: on Linux the lock also records the owner's boot id and
 *   start time, which a later process with the same pid does not share), is stale and taken over (under
 *   `${lockPath}.takeover`, only if still unchanged, so racers for one stale lock never both win);
 *   a live one makes `open()` reject with {@link ClientSessionLockedError}. A lock without a pid
 *   (not one this store wrote) is held until it is 5 s old, then stale. A store of this process
 *   holding the lock is waited for up to 1 s (a connection that gave up releases it a few ticks
 *   after its `close` event). `close()` removes the lock. The pid check is host-local: do not
 *   share the file between hosts.
 * - **The token.** The file holds the session's secret token in clear (it is what resumes the
 *   session): it is created with mode `0600` (owner read/write), in a directory you choose; on
 *   Windows the mode is ignored and the directory's ACL decides.
 * - **Typed errors.** A file that is not a session this version wrote rejects `open()` with
 *   {@link ClientSessionStoreError} `'corrupt'` (delete it to start afresh), or
 *   `'unsupported-version'` if a later version wrote it (keep it for that version); an I/O failure with
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
  private readonly file: ClientSessionFile;
  private owned = false;
  /** The content of the lock file this store wrote, while it holds the lock. */
  private lockContent: string | undefined;
  /** This store's entry in `heldLocks`, from the start of `open()` until the lock is let go. */
  private held: { key: string; held: Promise<void>; released: () => void; content: string } | undefined;

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
    this.file = new ClientSessionFile(path, this.fileOps());
  }

  async open(): Promise<StoredClientSession | undefined> {
    if (this.owned) throw new ClientSessionLockedError(this.path, `pid ${process.pid}`);
    await this.lock();
    try {
      return await this.file.read();
    } catch (error) {
      await this.unlock();
      throw error;
    }
  }

  write(change: ClientSessionChange): Promise<void> {
    return this.file.write(change, this.owned);
  }

  async close(): Promise<void> {
    if (!this.owned) return;
    this.owned = false;
    // The lock is never released under a write still in flight.
    await this.file.settled();
    await this.unlock();
  }

  /** Node's side of the file's reads and atomic replacements (the rest is {@link ClientSessionFile}'s). */
  private fileOps(): ClientSessionFileOps {
    const fsync = () => this.fsync;
    return {
      async read(path) {
        try {
          return await readFile(path, 'utf8');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw error;
        }
      },
      async replace(path, text) {
        const temp = `${path}.tmp`;
        const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
        try {
          await handle.writeFile(text, 'utf8');
          if (fsync()) await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, path);
        if (fsync()) await syncDirectory(path);
      },
      async remove(path) {
        await unlink(path).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
        if (fsync()) await syncDirectory(path);
      },
    };
  }

  /**
   * Takes the lock file. Its content (pid and a random nonce) goes to a temp file first, which is
   * then hard-linked to the lock path (`EEXIST` when held): the lock appears whole, never empty,
   * so a racer never mistakes a lock being written for a stale one. A stale lock (see
   * {@link isStale}) is taken over.
   */
  private async lock(): Promise<void> {
    const key = resolve(this.lockPath);
    // Held by a store of this process: a connection that just ended may be releasing it (its
    // close() runs once its last write settled), so a new one in this process waits a moment.
    const holder = heldLocks.get(key);
    if (holder) await settledWithin(holder, SAME_PROCESS_HANDOFF_MS);
    // Reserved before the link: a lock naming this pid and not in `heldLocks` is a predecessor's.
    if (heldLocks.has(key)) throw new ClientSessionLockedError(this.path, `pid ${process.pid}`);
    let released!: () => void;
    const held = new Promise<void>((resolve) => {
      released = resolve;
    });
    const content = lockContent();
    heldLocks.set(key, held);
    // Known before the link: a store of this process reaching the same file by another path (a
    // symlinked directory, a bind mount: another `heldLocks` key) finds it held, not stale.
    heldContents.add(content);
    this.held = { key, held, released, content };
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await this.linkFile(content, this.lockPath)) {
          this.lockContent = content;
          this.owned = true;
          return;
        }
        const found = await readLock(this.lockPath);
        if (found === undefined) continue; // released meanwhile: try again
        if (!isStale(found)) throw new ClientSessionLockedError(this.path, ownerOf(found));
        await this.takeStale(found);
      }
      throw new ClientSessionLockedError(this.path);
    } catch (error) {
      this.letGo();
      throw error;
    }
  }

  /** Leaves `heldLocks`, waking a store of this process waiting for the lock. */
  private letGo(): void {
    const entry = this.held;
    this.held = undefined;
    if (!entry) return;
    heldContents.delete(entry.content);
    if (heldLocks.get(entry.key) === entry.held) heldLocks.delete(entry.key);
    entry.released();
  }

  /** Writes `content` to a unique temp file and links it to `target`: `false` if `target` exists. */
  private async linkFile(content: string, target: string): Promise<boolean> {
    const temp = `${target}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
    try {
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(content, 'utf8');
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      await link(temp, target);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw this.lockFailed(error);
    } finally {
      // Our own uniquely named temp file: if it cannot be removed it is litter, never a lock.
      await unlink(temp).catch(() => {});
    }
  }

  /**
   * Removes a stale lock, holding `${lockPath}.takeover` (taken as the lock is, by a link) while it
   * checks that the lock is still the one judged stale and unlinks it. Only a takeover holder
   * removes another's lock, and each lock's content is unique (its nonce), so a lock taken in
   * between by a racer is never removed: racers for one stale lock never both own the session. A
   * live process holding the takeover is taking the lock: this open fails.
   */
  private async takeStale(stale: LockFile): Promise<void> {
    const takeover = `${this.lockPath}.takeover`;
    if (!(await this.linkFile(lockContent(), takeover))) {
      const holder = await readLock(takeover);
      if (holder === undefined) return;
      if (!isStale(holder)) throw new ClientSessionLockedError(this.path, ownerOf(holder));
      // A process died in its takeover (a few milliseconds): its takeover file goes, then retry.
      await removeIfUnchanged(takeover, holder.text);
      return;
    }
    try {
      const current = await readLock(this.lockPath);
      // A failed unlink leaves the stale lock in place: the link below then fails with EEXIST and
      // the open reports the store as locked; nothing is taken over wrongly.
      if (current?.text === stale.text) await unlink(this.lockPath).catch(() => {});
    } finally {
      // A takeover file left behind is itself judged stale by the next takeover (see below).
      await unlink(takeover).catch(() => {});
    }
  }

  private async unlock(): Promise<void> {
    this.owned = false;
    const content = this.lockContent;
    this.lockContent = undefined;
    if (content === undefined) return this.letGo();
    // Only our own lock: a lock taken over from us (we were presumed dead) is the new owner's.
    // A lock we fail to remove names our pid and is not in this process's held set, so the next
    // open (here or after a restart) judges it stale: releasing cannot fail in a way that matters.
    if ((await readLock(this.lockPath))?.text === content) await unlink(this.lockPath).catch(() => {});
    this.letGo();
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

/**
 * The lock paths (resolved) that stores of this process hold or are taking. A lock naming this
 * process's pid that is not here was left by a predecessor with the same pid (a container's pid 1
 * on every start): it is stale, not ours.
 */
const heldLocks = new Map<string, Promise<void>>();

/**
 * The content (pid and nonce) of every lock that stores of this process hold or are taking,
 * whatever path they reached it by: a lock naming this pid is a predecessor's only if it is not here.
 */
const heldContents = new Set<string>();

/**
 * How long `open()` waits for a store of this process that holds the lock to let it go (a
 * connection that gave up releases its store a few ticks after its `close` event) before it
 * rejects with {@link ClientSessionLockedError}. ms.
 */
const SAME_PROCESS_HANDOFF_MS = 1_000;

/** Waits for `promise` (which never rejects) at most `ms`. */
async function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A lock whose content cannot be read may be stale only once it is this old (ms). */
const UNREADABLE_LOCK_STALE_MS = 5_000;

interface LockFile {
  readonly text: string;
  /** The owner's pid; `undefined` when the content is not a lock this store writes. */
  readonly pid: number | undefined;
  /** The owner's process identity (see {@link processIdentity}), when the lock records one. */
  readonly identity: string | undefined;
  readonly mtimeMs: number;
}

/** A lock's content: `pid nonce [identity]`, one line; the nonce makes every lock unique. */
function lockContent(): string {
  const identity = processIdentity(process.pid);
  return `${process.pid} ${randomBytes(8).toString('hex')}${identity ? ` ${identity}` : ''}\n`;
}

async function readLock(path: string): Promise<LockFile | undefined> {
  try {
    const [text, stats] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const [pidField, , identity] = text.trim().split(' ');
    const pid = Number(pidField);
    return {
      text,
      pid: Number.isSafeInteger(pid) && pid > 0 ? pid : undefined,
      identity: identity || undefined,
      mtimeMs: stats.mtimeMs,
    };
  } catch {
    return undefined;
  }
}

/**
 * What tells one process from a later one given the same pid, where the platform says: on Linux
 * the boot's id (`/proc/sys/kernel/random/boot_id`) and the process's start time in clock ticks
 * since boot (field 22 of `/proc/<pid>/stat`), as `bootid:ticks`. Clock-free: a wall-clock step
 * changes neither. `undefined` where `/proc` has no such files (macOS, Windows) or the process
 * is gone: the lock then records the pid alone.
 */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    if (!startTicks || !/^\d+$/.test(startTicks)) return undefined;
    bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '');
    return `${bootId}:${startTicks}`;
  } catch {
    return undefined;
  }
}
let bootId: string | undefined;

/** Removes `path` if it still holds `text`: renamed away, checked, and put back if it changed. */
async function removeIfUnchanged(path: string, text: string): Promise<void> {
  const moved = `${path}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, moved);
  } catch {
    return;
  }
  // Used only on a takeover file left by a process that died mid-takeover (never on the lock):
  // if either step fails, a takeover file stays, and the next takeover judges it stale again.
  if ((await readLock(moved))?.text === text) await unlink(moved).catch(() => {});
  else await rename(moved, path).catch(() => {});
}

/**
 * A lock is stale when its process is gone, or names this process without this process holding
 * it (a predecessor with the same pid), or its pid now runs a process of another identity (pid
 * reuse, see {@link processIdentity}). A lock without a pid (empty, from elsewhere) is stale only
 * once it is older than {@link UNREADABLE_LOCK_STALE_MS}; before that it is held.
 */
function isStale(lock: LockFile): boolean {
  // Wall clock on purpose: a file's mtime is epoch time, written by another process; no monotonic
  // clock spans processes. A clock step can only make an unreadable lock stale early or late.
  if (lock.pid === undefined) return Date.now() - lock.mtimeMs > UNREADABLE_LOCK_STALE_MS;
  // Ours only if a store of this process holds it (by this path or another); else a predecessor's.
  if (lock.pid === process.pid) return !heldContents.has(lock.text);
  if (!isAlive(lock.pid)) return true;
  // The pid runs, but a process with a different identity (another boot, or a later process
  // given the dead owner's pid) is not the owner. Without an identity, the pid alone decides.
  if (lock.identity === undefined) return false;
  const identity = processIdentity(lock.pid);
  return identity !== undefined && identity !== lock.identity;
}

function ownerOf(lock: LockFile): string | undefined {
  return lock.pid === undefined ? undefined : `pid ${lock.pid}`;
}

/** Whether a process with this id runs on this host (`EPERM`: it runs, as another user). */
function isAlive(pid: number): boolean {
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
