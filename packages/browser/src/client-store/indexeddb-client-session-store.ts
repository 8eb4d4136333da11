import { ClientSessionLockedError, ClientSessionStoreError } from '@lifeline/core';
import type {
  ClientSessionChange,
  ClientSessionStore,
  StoredClientSession,
  StoredOutgoingMessage,
} from '@lifeline/core/resume';

/** Options of {@link IndexedDbClientSessionStore}. */
export interface IndexedDbClientSessionStoreOptions {
  /** The session's name: one stored session per name and origin. @default 'default' */
  readonly name?: string;
  /** The IndexedDB database. @default 'lifeline-client-sessions' */
  readonly database?: string;
  /**
   * What `open()` does while another tab (or worker) of the origin owns the session:
   * - `'wait'`: waits until it is released (that tab closed, reloaded, crashed, or closed its
   *   connection), then resumes the session; the connection stays `connecting` meanwhile.
   * - `'fail'`: rejects with {@link ClientSessionLockedError}, so the connection closes with it.
   * @default 'wait'
   */
  readonly ifLocked?: 'wait' | 'fail';
  /**
   * The durability of each write transaction (IndexedDB's `durability` hint). `'strict'` commits
   * to disk before a write resolves: the session survives a power loss too. `'relaxed'` survives
   * a reload, a crashed tab and a crashed browser (the data is in the browser process), not
   * necessarily a power loss, and costs less.
   * @default 'strict'
   */
  readonly durability?: 'strict' | 'relaxed';
  /** The Web Locks API and IndexedDB to use. @default globalThis.navigator.locks, globalThis.indexedDB */
  readonly locks?: LockManager;
  readonly indexedDB?: IDBFactory;
}

interface MetaRecord {
  readonly id: Uint8Array;
  readonly token: Uint8Array;
  readonly peerAcked: number;
  readonly received: number;
  readonly delivered: number;
}

interface MessageRecord {
  readonly kind: 'text' | 'binary';
  readonly payload: Uint8Array;
}

const META = 'sessions';
const MESSAGES = 'messages';

/**
 * A client session store in IndexedDB, for pages whose session must survive a reload, a crashed
 * or discarded tab: `resume({ store: new IndexedDbClientSessionStore() })`. Import it from
 * `@lifeline/browser/client-store` (it is not in the default bundle).
 *
 * - **Writes.** One transaction per write (the connection batches one write per tick): the
 *   session's metadata in one record, each unacknowledged message in a record of its own (a
 *   write adds the new ones and deletes the acknowledged range), so a write costs what changed,
 *   not the whole window.
 * - **One owner per session.** `open()` takes the Web Lock `lifeline-client-session:<database>:<name>`
 *   and holds it until `close()` or the page goes away (the browser releases the locks of a
 *   closed, reloaded or crashed page). A second tab of the origin opening the same session waits
 *   for it (`ifLocked: 'wait'`, the default: its connection stays `connecting`, and resumes the
 *   session once the first tab lets go) or gets a {@link ClientSessionLockedError}
 *   (`ifLocked: 'fail'`). Two tabs are never attached to one session at a time. For tabs that
 *   should share one live session, give each tab its own `name` (its own session), or let one
 *   tab hold the connection and relay through a `BroadcastChannel`.
 * - **The token** is stored in clear in the origin's IndexedDB: any script of the origin can read
 *   it (as it can read cookies that are not HttpOnly); it never leaves the origin's storage. Do not
 *   use it on an origin that runs untrusted script.
 * - **Typed errors.** A record that is not a session this version wrote: {@link ClientSessionStoreError}
 *   `'corrupt'`; IndexedDB unavailable or failing (private mode, quota, blocked upgrade):
 *   `'unreadable'` / `'write-failed'`.
 *
 * @example
 * ```ts
 * import { HAWebSocket, resume } from '@lifeline/browser';
 * import { IndexedDbClientSessionStore } from '@lifeline/browser/client-store';
 * const socket = new HAWebSocket(url, { resume: resume({ store: new IndexedDbClientSessionStore({ name: 'feed' }) }) });
 * socket.addEventListener('open', () => console.log(socket.session?.restored?.pendingOutgoing));
 * ```
 * @see docs/durable-sessions.md
 */
export class IndexedDbClientSessionStore implements ClientSessionStore {
  readonly name: string;
  readonly database: string;
  private readonly ifLocked: 'wait' | 'fail';
  private readonly durability: 'strict' | 'relaxed';
  private readonly locksOption: LockManager | undefined;
  private readonly idbOption: IDBFactory | undefined;
  private db: IDBDatabase | undefined;
  // #private: the store serialised (JSON.stringify) or printed shows no token.
  #meta: MetaRecord | undefined;
  private release: (() => void) | undefined;

  constructor(options: IndexedDbClientSessionStoreOptions = {}) {
    this.name = options.name ?? 'default';
    this.database = options.database ?? 'lifeline-client-sessions';
    this.ifLocked = options.ifLocked ?? 'wait';
    this.durability = options.durability ?? 'strict';
    this.locksOption = options.locks;
    this.idbOption = options.indexedDB;
  }

  /** The Web Lock this store takes. */
  get lockName(): string {
    return `lifeline-client-session:${this.database}:${this.name}`;
  }

  get location(): string {
    return `indexeddb:${this.database}/${this.name}`;
  }

  async open(): Promise<StoredClientSession | undefined> {
    if (this.release) throw new ClientSessionLockedError(this.location, 'this store');
    await this.lock();
    try {
      this.db = await this.openDatabase();
      return await this.read(this.db);
    } catch (error) {
      this.close();
      throw error instanceof ClientSessionStoreError
        ? error
        : new ClientSessionStoreError('unreadable', `reading ${this.location} failed: ${String(error)}`, {
            cause: error,
            location: this.location,
          });
    }
  }

  write(change: ClientSessionChange): Promise<void> {
    const db = this.db;
    if (!db) {
      return Promise.reject(
        new ClientSessionStoreError('write-failed', 'the store is not open', { location: this.location }),
      );
    }
    let meta = change.reset ? undefined : this.#meta;
    if (change.identity) {
      meta = meta
        ? { ...meta, id: change.identity.id, token: change.identity.token }
        : { id: change.identity.id, token: change.identity.token, peerAcked: 0, received: 0, delivered: 0 };
    }
    if (meta) {
      const received = Math.max(meta.received, change.received ?? 0);
      meta = {
        id: meta.id,
        token: meta.token,
        peerAcked: Math.max(meta.peerAcked, change.peerAcked ?? 0),
        received,
        delivered: Math.max(meta.delivered, received, change.delivered ?? 0),
      };
    }
    const previous = this.#meta;
    return new Promise<void>((resolve, reject) => {
      const tx = db.transaction([META, MESSAGES], 'readwrite', { durability: this.durability });
      const metas = tx.objectStore(META);
      const messages = tx.objectStore(MESSAGES);
      const name = this.name;
      if (change.reset) {
        metas.delete(name);
        messages.delete(IDBKeyRange.bound([name, 0], [name, Number.MAX_SAFE_INTEGER]));
      }
      if (meta) {
        metas.put(meta, name);
        for (const message of change.append ?? []) {
          messages.put({ kind: message.kind, payload: message.payload.slice() } satisfies MessageRecord, [
            name,
            message.seq,
          ]);
        }
        if (meta.peerAcked > (change.reset ? 0 : (previous?.peerAcked ?? 0)) || change.append) {
          messages.delete(IDBKeyRange.bound([name, 0], [name, meta.peerAcked]));
        }
      }
      tx.oncomplete = () => {
        this.#meta = meta;
        resolve();
      };
      const failed = () =>
        reject(
          new ClientSessionStoreError(
            'write-failed',
            `writing ${this.location} failed: ${String(tx.error)}`,
            {
              cause: tx.error,
              location: this.location,
            },
          ),
        );
      tx.onabort = failed;
      tx.onerror = (event) => event.preventDefault();
    });
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    const release = this.release;
    this.release = undefined;
    release?.();
  }

  private async lock(): Promise<void> {
    const locks = this.locksOption ?? (globalThis.navigator as Navigator | undefined)?.locks;
    if (!locks) {
      throw new ClientSessionStoreError(
        'unreadable',
        'the Web Locks API (navigator.locks) is not available',
        {
          location: this.location,
        },
      );
    }
    const granted = await new Promise<boolean>((resolve, reject) => {
      locks
        .request(this.lockName, { mode: 'exclusive', ifAvailable: this.ifLocked === 'fail' }, (lock) => {
          if (!lock) {
            resolve(false);
            return undefined;
          }
          resolve(true);
          // Held until close(), or until the page goes away.
          return new Promise<void>((release) => {
            this.release = release;
          });
        })
        .catch(reject);
    });
    if (!granted) throw new ClientSessionLockedError(this.location, 'another tab');
  }

  private openDatabase(): Promise<IDBDatabase> {
    const factory = this.idbOption ?? globalThis.indexedDB;
    if (!factory) return Promise.reject(new Error('IndexedDB is not available'));
    return new Promise((resolve, reject) => {
      const request = factory.open(this.database, 1);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
        if (!db.objectStoreNames.contains(MESSAGES)) db.createObjectStore(MESSAGES);
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error('the database upgrade is blocked by another tab'));
    });
  }

  private read(db: IDBDatabase): Promise<StoredClientSession | undefined> {
    return new Promise((resolve, reject) => {
      const tx = db.transaction([META, MESSAGES], 'readonly');
      const metaRequest = tx.objectStore(META).get(this.name);
      const messagesRequest = tx
        .objectStore(MESSAGES)
        .getAll(IDBKeyRange.bound([this.name, 0], [this.name, Number.MAX_SAFE_INTEGER]));
      const keysRequest = tx
        .objectStore(MESSAGES)
        .getAllKeys(IDBKeyRange.bound([this.name, 0], [this.name, Number.MAX_SAFE_INTEGER]));
      tx.oncomplete = () => {
        try {
          resolve(this.decode(metaRequest.result, messagesRequest.result, keysRequest.result));
        } catch (error) {
          reject(error);
        }
      };
      tx.onabort = () => reject(tx.error);
    });
  }

  private decode(meta: unknown, records: unknown[], keys: IDBValidKey[]): StoredClientSession | undefined {
    const corrupt = (why: string) =>
      new ClientSessionStoreError('corrupt', `the stored session is corrupt: ${why}`, {
        location: this.location,
      });
    if (meta === undefined) {
      if (records.length > 0) throw corrupt('messages without a session');
      return undefined;
    }
    const m = meta as Partial<MetaRecord>;
    if (
      !(m.id instanceof Uint8Array) ||
      m.id.length !== 16 ||
      !(m.token instanceof Uint8Array) ||
      m.token.length !== 16
    ) {
      throw corrupt('id and token must be 16 bytes');
    }
    for (const value of [m.peerAcked, m.received, m.delivered]) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw corrupt('watermarks');
    }
    const messages: StoredOutgoingMessage[] = [];
    let expected = m.peerAcked! + 1;
    for (let i = 0; i < records.length; i++) {
      const seq = (keys[i] as [string, number])[1];
      const record = records[i] as Partial<MessageRecord>;
      if (seq <= m.peerAcked!) continue;
      if (
        seq !== expected ||
        !(record.payload instanceof Uint8Array) ||
        (record.kind !== 'text' && record.kind !== 'binary')
      ) {
        throw corrupt(`message ${expected} is missing or malformed`);
      }
      messages.push({ seq, kind: record.kind, payload: record.payload });
      expected++;
    }
    this.#meta = m as MetaRecord;
    return {
      id: m.id,
      token: m.token,
      peerAcked: m.peerAcked!,
      received: m.received!,
      delivered: Math.max(m.delivered!, m.received!),
      messages,
    };
  }
}
