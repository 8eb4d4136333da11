import { ClientSessionStoreError } from '../../engine/errors.js';
import {
  applyClientSessionChange,
  type ClientSessionChange,
  decodeClientSession,
  encodeClientSession,
  type StoredClientSession,
} from './client-session-store.js';

/**
 * The file operations a {@link ClientSessionFile} runs, given by the platform (Node's
 * `fs/promises`, Deno's `Deno.*`), so this module touches no runtime API.
 */
export interface ClientSessionFileOps {
  /** The file's text; `undefined` when it does not exist. Rejects on any other failure. */
  read(path: string): Promise<string | undefined>;
  /**
   * Replaces the file whole and atomically with `text` (a temp file with mode `0600`, synced if the
   * store syncs, renamed over `path`): a crash leaves the old or the new content, never a torn one.
   */
  replace(path: string, text: string): Promise<void>;
  /** Removes the file; one that does not exist is removed already. */
  remove(path: string): Promise<void>;
}

/**
 * The part of a file client session store that does not depend on the runtime: the session as
 * last read or written, each change applied and written as the whole encoded session (or the
 * file removed when the session ended), typed errors, and the write in flight that releasing the
 * lock must wait for. The Node and Deno `FileClientSessionStore`s own the lock and the file
 * operations.
 */
export class ClientSessionFile {
  // #private: a file store printed (util.inspect) or serialised (JSON.stringify) shows no token.
  #state: StoredClientSession | undefined;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly ops: ClientSessionFileOps,
  ) {}

  /**
   * Reads the stored session: `undefined` when there is none.
   * @throws {ClientSessionStoreError} `'unreadable'` (the read failed), `'corrupt'` (see {@link decodeClientSession}).
   */
  async read(): Promise<StoredClientSession | undefined> {
    let text: string | undefined;
    try {
      text = await this.ops.read(this.path);
    } catch (error) {
      throw new ClientSessionStoreError('unreadable', `reading ${this.path} failed: ${String(error)}`, {
        cause: error,
        location: this.path,
      });
    }
    this.#state = text === undefined ? undefined : decodeClientSession(text, this.path);
    return this.#state;
  }

  /**
   * Applies `change` and writes the result (`owned`: the store holds its lock now).
   * @throws {ClientSessionStoreError} `'write-failed'`: not owned, or the write failed (the state stays as it was).
   */
  write(change: ClientSessionChange, owned: boolean): Promise<void> {
    const written = this.writeNow(change, owned);
    // settled() waits for it: the lock is never released under a write still in flight. Its
    // failure is not lost: the caller gets it from `written`; this copy only orders the release.
    this.inFlight = written.catch(() => {});
    return written;
  }

  /** Resolves once the last write settled (never rejects). */
  settled(): Promise<void> {
    return this.inFlight;
  }

  private async writeNow(change: ClientSessionChange, owned: boolean): Promise<void> {
    if (!owned) {
      throw new ClientSessionStoreError('write-failed', 'the store is not open', { location: this.path });
    }
    const next = applyClientSessionChange(this.#state, change);
    try {
      if (next) await this.ops.replace(this.path, encodeClientSession(next));
      else if (this.#state) await this.ops.remove(this.path);
    } catch (error) {
      throw new ClientSessionStoreError('write-failed', `writing ${this.path} failed: ${String(error)}`, {
        cause: error,
        location: this.path,
      });
    }
    this.#state = next;
  }
}
