import { ClientSessionLockedError, ClientSessionStoreError } from '@lifeline/core';
import { ClientSessionFile, type ClientSessionFileOps } from '@lifeline/core/internal';
import type { ClientSessionChange, ClientSessionStore, StoredClientSession } from '@lifeline/core/resume';

/** The part of a `Deno.FsFile` the store uses. */
interface DenoFile {
  write(bytes: Uint8Array): Promise<number>;
  truncate(length?: number): Promise<void>;
  sync(): Promise<void>;
  tryLock(exclusive?: boolean): Promise<boolean>;
  close(): void;
}

/** The part of `Deno` the store uses, read when used (importing this module touches no global). */
interface DenoFs {
  readonly pid: number;
  open(
    path: string,
    options: { read?: boolean; write?: boolean; create?: boolean; truncate?: boolean; mode?: number },
  ): Promise<DenoFile>;
  readTextFile(path: string): Promise<string>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  readonly errors: { readonly NotFound: new (...args: never[]) => Error };
}

function deno(): DenoFs {
  const found = (globalThis as { Deno?: DenoFs }).Deno;
  if (!found) throw new ClientSessionStoreError('unreadable', 'Deno is not available in this runtime');
  return found;
}

/** Options of {@link FileClientSessionStore}. */
export interface FileClientSessionStoreOptions {
  /**
   * `fsync` the data file before each rename, so a write that resolved survives a power loss too.
   * `false`: a process crash still loses nothing (the rename is atomic).
   * @default true
   */
  readonly fsync?: boolean;
  /** The lock file. @default `${path}.lock` */
  readonly lockPath?: string;
}

/**
 * A client session store in one file, for Deno clients that must resume their session after the
 * process died: `resume({ store: new FileClientSessionStore(path) })`. Needs `--allow-read` and
 * `--allow-write` on the file's directory.
 *
 * - **Atomic writes.** Each write (one per tick, batched by the connection) writes the whole
 *   session to `${path}.tmp`, `fsync`s it and renames it over `path`: a crash leaves the previous
 *   or the new session, never a torn one.
 * - **One owner.** `open()` takes an exclusive `flock` on `${path}.lock` (`FsFile.tryLock`), which
 *   the operating system releases when the process dies, however it dies: a second owner (another
 *   process, or another store in this one) gets {@link ClientSessionLockedError}. `close()`
 *   releases it.
 * - **The token** is in the file in clear; it is created with mode `0600` (owner only).
 * - **Typed errors**: {@link ClientSessionStoreError} `'corrupt'`, `'unreadable'`, `'write-failed'`.
 *
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/deno';
 * import { FileClientSessionStore } from '@lifeline/deno/client-store';
 * const socket = new HAWebSocket(url, { resume: resume({ store: new FileClientSessionStore('./session.json') }) });
 * ```
 * @see docs/durable-sessions.md
 */
export class FileClientSessionStore implements ClientSessionStore {
  readonly lockPath: string;
  private readonly fsync: boolean;
  private readonly file: ClientSessionFile;
  private lockFile: DenoFile | undefined;

  constructor(
    readonly path: string,
    options: FileClientSessionStoreOptions = {},
  ) {
    this.lockPath = options.lockPath ?? `${path}.lock`;
    this.fsync = options.fsync ?? true;
    this.file = new ClientSessionFile(path, this.fileOps());
  }

  async open(): Promise<StoredClientSession | undefined> {
    if (this.lockFile) throw new ClientSessionLockedError(this.path, 'this store');
    const fs = deno();
    let file: DenoFile;
    try {
      file = await fs.open(this.lockPath, { read: true, write: true, create: true, mode: 0o600 });
    } catch (error) {
      throw new ClientSessionStoreError(
        'unreadable',
        `opening the lock ${this.lockPath} failed: ${String(error)}`,
        {
          cause: error,
          location: this.path,
        },
      );
    }
    if (!(await file.tryLock(true))) {
      file.close();
      throw new ClientSessionLockedError(this.path);
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${fs.pid}\n`));
    this.lockFile = file;
    try {
      return await this.file.read();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  write(change: ClientSessionChange): Promise<void> {
    return this.file.write(change, this.lockFile !== undefined);
  }

  async close(): Promise<void> {
    const file = this.lockFile;
    this.lockFile = undefined;
    // The lock is never released under a write still in flight.
    await this.file.settled();
    // Closing the file releases its flock.
    file?.close();
  }

  /** Deno's side of the file's reads and atomic replacements (the rest is {@link ClientSessionFile}'s). */
  private fileOps(): ClientSessionFileOps {
    const fsync = () => this.fsync;
    return {
      async read(path) {
        const fs = deno();
        try {
          return await fs.readTextFile(path);
        } catch (error) {
          if (error instanceof fs.errors.NotFound) return undefined;
          throw error;
        }
      },
      async replace(path, text) {
        const fs = deno();
        const temp = `${path}.tmp`;
        const file = await fs.open(temp, { write: true, create: true, truncate: true, mode: 0o600 });
        try {
          const bytes = new TextEncoder().encode(text);
          let written = 0;
          while (written < bytes.length) written += await file.write(bytes.subarray(written));
          if (fsync()) await file.sync();
        } finally {
          file.close();
        }
        await fs.rename(temp, path);
      },
      async remove(path) {
        const fs = deno();
        await fs.remove(path).catch((error: unknown) => {
          if (!(error instanceof fs.errors.NotFound)) throw error;
        });
      },
    };
  }
}
