import {
  InvalidOptionError,
  SessionStoreError,
  StaleOwnerError,
  steadyEpochNow,
} from '@lifeline/core/internal/server';
import type { SessionMetadata, StoredMessage, StoredSession } from '@lifeline/core/resume/server';
import {
  DEFAULT_IDLE_TTL_MS,
  type FencedSessionStore,
  type SessionWatermarks,
} from '@lifeline/core/resume/server';
import { openSqliteDatabase, type SqliteDatabase, type SqliteStatement } from './open-sqlite-database.js';

/** Options of {@link SqliteSessionStore}. */
export interface SqliteSessionStoreOptions {
  /**
   * The database file, opened with {@link open} unless {@link database} is given. One resume
   * server process per file: the store batches writes in memory for a tick.
   * @default DEFAULT_SQLITE_PATH ('lifeline-sessions.db' in the working directory)
   */
  path?: string;
  /** A database to use instead of opening {@link path}; the store closes it on `close()`. @default none */
  database?: SqliteDatabase | Promise<SqliteDatabase>;
  /** Opens {@link SqliteSessionStoreOptions.path}. @default openSqliteDatabase (`node:sqlite` where the runtime has it, else better-sqlite3) */
  open?: (path: string) => SqliteDatabase | Promise<SqliteDatabase>;
  /**
   * `'normal'`: a committed transaction survives the process being killed (WAL); `'full'`: it
   * also survives a power loss or a kernel crash, at the price of an fsync per commit.
   * @default 'normal'
   */
  synchronous?: 'normal' | 'full';
  /**
   * A session not written for this long is deleted by `expire()` even though no detach was ever
   * recorded for it (its server died while a client was attached, and the client never came back).
   * @default DEFAULT_IDLE_TTL_MS (24 h)
   */
  idleTtlMs?: number;
  /**
   * Prefix of the store's two tables (`<prefix>sessions`, `<prefix>replay`): several stores may share one
   * file, a prefix each; a store creates or upgrades its own tables on open. @default 'lifeline_'
   */
  tablePrefix?: string;
  /**
   * Schedules the flush of a batch. Every operation issued before the flush runs shares its one
   * transaction, and each promise settles once that transaction committed.
   * @default setImmediate (a batch per macrotask)
   */
  defer?: (flush: () => void) => void;
  /** The clock, in epoch ms, for the idle deadlines. @default steadyEpochNow (does not step with the wall clock) */
  now?: () => number;
}

export const DEFAULT_SQLITE_PATH = 'lifeline-sessions.db';
export const DEFAULT_SQLITE_SYNCHRONOUS = 'normal';
export const DEFAULT_SQLITE_TABLE_PREFIX = 'lifeline_';
/**
 * 2 added `delivered` (the watermark behind the `redelivered` flag); 3 made the replay table
 * `WITHOUT ROWID`. Files of versions 1 and 2 are upgraded in place when opened.
 */
const SCHEMA_VERSION = 3;
/** Replay rows per multi-row INSERT (4 parameters each: well below SQLite's 999-parameter floor). */
const REPLAY_CHUNK = 32;

interface SessionRow {
  id: string;
  token_hash: Uint8Array;
  retired_token_hash: Uint8Array | null;
  token_confirmed: number;
  created_at: number;
  expires_at: number | null;
  last_sent: number;
  peer_acked: number;
  received: number;
  epoch: number;
  cursor: string | null;
  delivered: number;
}

interface FenceRow {
  epoch: number;
  last_sent: number;
  peer_acked: number;
}

interface ReplayRow {
  seq: number;
  kind: number;
  payload: Uint8Array;
}

interface Operation {
  readonly name: string;
  readonly id: string | undefined;
  run(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type Statements = ReturnType<typeof prepare>;

/** An acknowledge operation waiting in the batch, its watermarks raised by later ones. */
interface QueuedAck {
  readonly epoch: number | undefined;
  peerAcked: number | undefined;
  received: number | undefined;
  delivered: number | undefined;
  settled: Promise<void>;
}

/** The higher of two watermarks, either of which may be absent. */
function higher(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** What a failed operation leaves in the batch's results (no operation returns one). */
class FailedOperation {
  constructor(readonly error: unknown) {}
}

/**
 * A durable {@link FencedSessionStore} in an embedded SQLite database (WAL mode): the default
 * for a single host, with no server to run. A session, its replay log, both acknowledgement
 * watermarks, its owner epoch and its upstream cursor persist, so a server killed with SIGKILL
 * and restarted resumes every session with nothing lost.
 *
 * Writes are batched: every operation issued in the same macrotask shares one transaction, and
 * each promise settles only after that transaction committed, so the server writes a frame (or
 * acknowledges a client message) only once what it depends on is on disk.
 *
 * @example
 * ```ts
 * import { createResumeServer, SqliteSessionStore } from '@lifeline/node/server';
 * const store = new SqliteSessionStore({ path: '/var/lib/my-app/sessions.db' });
 * const server = createResumeServer({ store });
 * ```
 * @see docs/durable-sessions.md
 */
export class SqliteSessionStore implements FencedSessionStore {
  readonly idleTtlMs: number;
  private readonly now: () => number;
  private readonly defer: (flush: () => void) => void;
  private readonly prefix: string;
  private readonly synchronous: 'normal' | 'full';
  private readonly opening: Promise<void>;
  private db: SqliteDatabase | undefined;
  private statements: Statements | undefined;
  private readonly updates = new Map<string, SqliteStatement>();
  /** The batch's acknowledge operations that are the last operation queued for their session. */
  private readonly queuedAcks = new Map<string, QueuedAck>();
  private openError: unknown;
  private queue: Operation[] = [];
  private scheduled = false;
  private closing: Promise<void> | undefined;

  constructor(options: SqliteSessionStoreOptions = {}) {
    this.idleTtlMs = options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
    this.now = options.now ?? steadyEpochNow;
    this.defer = options.defer ?? ((flush) => setImmediate(flush));
    this.prefix = options.tablePrefix ?? DEFAULT_SQLITE_TABLE_PREFIX;
    this.synchronous = options.synchronous ?? DEFAULT_SQLITE_SYNCHRONOUS;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(this.prefix)) {
      throw new InvalidOptionError(
        `tablePrefix must be an SQL identifier, got ${JSON.stringify(this.prefix)}`,
      );
    }
    if (typeof this.idleTtlMs !== 'number' || !(this.idleTtlMs > 0) || !Number.isFinite(this.idleTtlMs)) {
      throw new InvalidOptionError(
        `idleTtlMs must be a finite number of ms > 0, got ${String(this.idleTtlMs)}`,
      );
    }
    if (options.path !== undefined && (typeof options.path !== 'string' || options.path === '')) {
      throw new InvalidOptionError(`path must be a non-empty string, got ${JSON.stringify(options.path)}`);
    }
    for (const name of ['open', 'defer', 'now'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw new InvalidOptionError(`${name} must be a function, got ${typeof options[name]}`);
      }
    }
    if (this.synchronous !== 'normal' && this.synchronous !== 'full') {
      throw new InvalidOptionError(`synchronous must be 'normal' or 'full', got ${String(this.synchronous)}`);
    }
    const open = options.open ?? openSqliteDatabase;
    const path = options.path ?? DEFAULT_SQLITE_PATH;
    this.opening = Promise.resolve()
      .then(() => options.database ?? open(path))
      .then((db) => this.init(db))
      .catch((error: unknown) => {
        this.openError = error;
      });
  }

  /** Resolves once the database is open and its schema in place; rejects if it cannot be. */
  async ready(): Promise<void> {
    await this.opening;
    if (this.openError !== undefined) throw this.storeError('open', undefined, this.openError);
  }

  load(id: string): Promise<StoredSession | undefined> {
    return this.enqueue('load', id, () => {
      const s = this.statements!;
      const row = s.loadSession.get(id) as SessionRow | undefined;
      if (!row) return undefined;
      const replay: StoredMessage[] = (s.loadReplay.all(id) as ReplayRow[]).map((entry) => ({
        seq: entry.seq,
        kind: entry.kind === 1 ? 'binary' : 'text',
        payload: bytes(entry.payload)!,
      }));
      const session: StoredSession = {
        id: row.id,
        tokenHash: bytes(row.token_hash)!,
        retiredTokenHash: bytes(row.retired_token_hash),
        tokenConfirmed: row.token_confirmed === 1,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        lastSent: row.last_sent,
        peerAcked: row.peer_acked,
        received: row.received,
        delivered: row.delivered,
        replay,
        epoch: row.epoch,
        cursor: row.cursor,
      };
      return session;
    });
  }

  save(session: StoredSession): Promise<void> {
    return this.enqueue('save', session.id, () => {
      const s = this.statements!;
      // Replacing a session replaces its replay log too (the cascade drops the old rows).
      s.deleteSession.run(session.id);
      s.insertSession.run(
        session.id,
        blob(session.tokenHash),
        blob(session.retiredTokenHash),
        session.tokenConfirmed ? 1 : 0,
        session.createdAt,
        session.expiresAt,
        session.expiresAt ?? this.now() + this.idleTtlMs,
        session.lastSent,
        session.peerAcked,
        session.received,
        session.epoch ?? 0,
        session.cursor ?? null,
        session.delivered ?? 0,
      );
      for (const message of session.replay) {
        s.insertReplay.run(session.id, message.seq, message.kind === 'binary' ? 1 : 0, message.payload);
      }
    });
  }

  update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void> {
    return this.enqueue('update', id, () => {
      if (!this.fence(id, epoch)) return;
      const columns: string[] = [];
      const values: unknown[] = [];
      if (metadata.tokenHash !== undefined) {
        columns.push('token_hash');
        values.push(blob(metadata.tokenHash));
      }
      if (metadata.retiredTokenHash !== undefined) {
        columns.push('retired_token_hash');
        values.push(blob(metadata.retiredTokenHash));
      }
      if (metadata.tokenConfirmed !== undefined) {
        columns.push('token_confirmed');
        values.push(metadata.tokenConfirmed ? 1 : 0);
      }
      const idleDeadline = this.now() + this.idleTtlMs;
      if (metadata.expiresAt !== undefined) {
        // The deadline is expires_at once the session is detached; while attached, the idle limit.
        columns.push('expires_at', 'deadline');
        values.push(metadata.expiresAt, metadata.expiresAt ?? idleDeadline);
      }
      const key = columns.join(',');
      let statement = this.updates.get(key);
      if (!statement) {
        const sets = columns.map((column) => `${column} = ?`);
        // An UPDATE reads the old row: expires_at here is the unchanged one.
        if (metadata.expiresAt === undefined) sets.push('deadline = COALESCE(expires_at, ?)');
        statement = this.db!.prepare(`UPDATE ${this.prefix}sessions SET ${sets.join(', ')} WHERE id = ?`);
        this.updates.set(key, statement);
      }
      if (metadata.expiresAt === undefined) values.push(idleDeadline);
      statement.run(...values, id);
    });
  }

  append(id: string, messages: readonly StoredMessage[], epoch?: number): Promise<void> {
    return this.enqueue('append', id, () => {
      const row = this.fence(id, epoch);
      if (!row) return;
      const s = this.statements!;
      let last = row.last_sent;
      let cursor: string | null = null;
      const fresh: StoredMessage[] = [];
      for (const message of messages) {
        if (message.seq <= last) continue;
        fresh.push(message);
        last = message.seq;
        if (message.cursor !== undefined) cursor = message.cursor;
      }
      // Rows go in by REPLAY_CHUNK per statement: a statement's run, not the row, is most of the
      // cost of a small message (`pnpm bench server`, SQLite against the memory store).
      let next = 0;
      if (fresh.length >= REPLAY_CHUNK) {
        const values = new Array<unknown>(REPLAY_CHUNK * 4);
        for (; next + REPLAY_CHUNK <= fresh.length; next += REPLAY_CHUNK) {
          for (let i = 0; i < REPLAY_CHUNK; i++) {
            const message = fresh[next + i]!;
            values[i * 4] = id;
            values[i * 4 + 1] = message.seq;
            values[i * 4 + 2] = message.kind === 'binary' ? 1 : 0;
            values[i * 4 + 3] = message.payload;
          }
          s.insertReplayChunk.run(...values);
        }
      }
      for (; next < fresh.length; next++) {
        const message = fresh[next]!;
        s.insertReplay.run(id, message.seq, message.kind === 'binary' ? 1 : 0, message.payload);
      }
      if (last > row.last_sent) s.appended.run(last, cursor, this.now() + this.idleTtlMs, id);
    });
  }

  /**
   * Acknowledgements of one session queued one after the other in a batch (nothing else for the
   * session between them, the same epoch) are merged into one: one watermark UPDATE and one
   * DELETE of the acknowledged replay rows, whose result every caller shares.
   */
  acknowledge(id: string, watermarks: SessionWatermarks, epoch?: number): Promise<void> {
    const queued = this.queuedAcks.get(id);
    if (queued !== undefined && queued.epoch === epoch && !this.closing) {
      queued.peerAcked = higher(queued.peerAcked, watermarks.peerAcked);
      queued.received = higher(queued.received, watermarks.received);
      queued.delivered = higher(queued.delivered, watermarks.delivered);
      return queued.settled;
    }
    const ack: QueuedAck = {
      epoch,
      peerAcked: watermarks.peerAcked,
      received: watermarks.received,
      delivered: watermarks.delivered,
      settled: undefined as unknown as Promise<void>,
    };
    ack.settled = this.enqueue('acknowledge', id, () => {
      const row = this.fence(id, epoch);
      if (!row) return;
      const s = this.statements!;
      s.acknowledged.run(
        ack.peerAcked ?? 0,
        ack.received ?? 0,
        ack.delivered ?? 0,
        this.now() + this.idleTtlMs,
        id,
      );
      const peerAcked = ack.peerAcked;
      if (peerAcked !== undefined && peerAcked > row.peer_acked) s.dropReplay.run(id, peerAcked);
    });
    if (!this.closing) this.queuedAcks.set(id, ack);
    return ack.settled;
  }

  claim(id: string, knownEpoch?: number): Promise<number | undefined> {
    return this.enqueue('claim', id, () => {
      const row = this.statements!.fence.get(id) as FenceRow | undefined;
      if (!row) return undefined;
      if (knownEpoch !== undefined && row.epoch === knownEpoch) return knownEpoch;
      this.statements!.claim.run(id);
      return row.epoch + 1;
    });
  }

  /** Deletes every session whose deadline passed (detached past its `expiresAt`, or idle too long), in one indexed DELETE. */
  expire(now: number): Promise<string[]> {
    return this.enqueue('expire', undefined, () =>
      (this.statements!.expire.all(now) as { id: string }[]).map((row) => row.id),
    );
  }

  delete(id: string, epoch?: number): Promise<void> {
    return this.enqueue('delete', id, () => {
      if (!this.fence(id, epoch)) return;
      this.statements!.deleteSession.run(id);
    });
  }

  /** Sessions and replay entries stored (for tests and metrics). */
  count(): Promise<{ sessions: number; replay: number }> {
    return this.enqueue('count', undefined, () => {
      const s = this.statements!;
      return {
        sessions: (s.countSessions.get() as { n: number }).n,
        replay: (s.countReplay.get() as { n: number }).n,
      };
    });
  }

  /** Commits what is pending, then closes the database. Later operations reject. */
  close(): Promise<void> {
    this.closing ??= this.opening.then(() => {
      if (this.scheduled) this.flush();
      this.db?.close();
      this.db = undefined;
      this.statements = undefined;
    });
    return this.closing;
  }

  private init(db: SqliteDatabase): void {
    const p = this.prefix;
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${this.synchronous.toUpperCase()};`);
    db.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    // One transaction, so that processes opening the same file at once do not both upgrade it.
    db.exec('BEGIN IMMEDIATE');
    try {
      this.createSchema(db);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    this.statements = prepare(db, p);
    this.db = db;
  }

  private createSchema(db: SqliteDatabase): void {
    const p = this.prefix;
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${p}sessions (
        id TEXT PRIMARY KEY NOT NULL,
        token_hash BLOB NOT NULL,
        retired_token_hash BLOB,
        token_confirmed INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        deadline INTEGER NOT NULL,
        last_sent INTEGER NOT NULL,
        peer_acked INTEGER NOT NULL,
        received INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        cursor TEXT,
        delivered INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS ${p}sessions_deadline ON ${p}sessions (deadline);
    `);
    const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    if (!Number.isInteger(version) || version < 0 || version > SCHEMA_VERSION) {
      throw new SessionStoreError(
        'open',
        undefined,
        `unknown schema version ${version} (this store writes ${SCHEMA_VERSION})`,
      );
    }
    // `user_version` belongs to the file, and a file may hold the tables of several prefixes, each
    // written by whichever release first opened it with that prefix. So each table's own layout
    // says what it needs, whatever the file's version: a missing table is created, a version-1
    // sessions table gains `delivered`, a replay table with a rowid (versions 1 and 2) moves.
    const columns = db.prepare(`PRAGMA table_info(${p}sessions)`).all() as { name: string }[];
    if (!columns.some((column) => column.name === 'delivered')) {
      db.exec(`ALTER TABLE ${p}sessions ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0`);
    }
    const replay = db
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE")
      .get(`${p}replay`) as { sql: string } | undefined;
    if (!replay) db.exec(replayTable(`${p}replay`, p));
    else if (!/\bWITHOUT\s+ROWID\b/i.test(replay.sql)) {
      // Version 3 keys the replay rows by their primary key alone (WITHOUT ROWID): one B-tree to
      // write per row instead of the table and its primary-key index. A table cannot change that
      // in place, so the rows move to a new one, inside the caller's transaction.
      db.exec(`
        ${replayTable(`${p}replay_v3`, p)}
        INSERT INTO ${p}replay_v3 (session_id, seq, kind, payload)
          SELECT session_id, seq, kind, payload FROM ${p}replay;
        DROP TABLE ${p}replay;
        ALTER TABLE ${p}replay_v3 RENAME TO ${p}replay;
      `);
    }
    if (version !== SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  }

  /** The session's row if it exists; throws {@link StaleOwnerError} when `epoch` is given and is not the session's. */
  private fence(id: string, epoch: number | undefined): FenceRow | undefined {
    const row = this.statements!.fence.get(id) as FenceRow | undefined;
    if (row && epoch !== undefined && row.epoch !== epoch) throw new StaleOwnerError(id, epoch, row.epoch);
    return row;
  }

  private enqueue<T>(name: string, id: string | undefined, run: () => T): Promise<T> {
    // Any other operation on the session (or on every session) ends the run of acks to merge.
    if (id === undefined) this.queuedAcks.clear();
    else this.queuedAcks.delete(id);
    if (this.closing) return Promise.reject(new SessionStoreError(name, id, 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ name, id, run, resolve: resolve as (value: unknown) => void, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      if (this.db) this.defer(() => this.flush());
      else void this.opening.then(() => this.defer(() => this.flush()));
    });
  }

  /**
   * Runs the batch in one transaction; an operation that fails rolls back alone. Savepoints give
   * that, but each costs a copy of every page the operation touches (SQLite's statement journal,
   * about a quarter of the store's CPU for a batch of appends), so the batch first runs without
   * them, and only if an operation throws is the transaction rolled back and the batch run again
   * with a savepoint per operation. Operations only read and write the database, so running one twice
   * from the same state does the same.
   */
  private flush(): void {
    if (!this.scheduled) return;
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    this.queuedAcks.clear();
    const s = this.statements;
    if (!s) {
      const cause = this.openError ?? new Error('the store is closed');
      for (const operation of batch) operation.reject(this.storeError(operation.name, operation.id, cause));
      return;
    }
    const values = new Array<unknown>(batch.length);
    let failed = false;
    try {
      s.begin.run();
      try {
        for (let i = 0; i < batch.length; i++) values[i] = batch[i]!.run();
      } catch {
        failed = true;
      }
      if (failed) {
        try {
          s.rollback.run();
        } catch {
          // SQLite already rolled the transaction back itself (an I/O error, a full disk).
        }
        s.begin.run();
        for (let i = 0; i < batch.length; i++) {
          s.savepoint.run();
          try {
            values[i] = batch[i]!.run();
          } catch (error) {
            s.rollbackToSavepoint.run();
            values[i] = new FailedOperation(this.storeError(batch[i]!.name, batch[i]!.id, error));
          }
          s.releaseSavepoint.run();
        }
      }
      s.commit.run();
    } catch (error) {
      try {
        this.db!.exec('ROLLBACK');
      } catch {
        // No transaction left to roll back: BEGIN itself failed.
      }
      for (const operation of batch) operation.reject(this.storeError(operation.name, operation.id, error));
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const value = values[i];
      if (value instanceof FailedOperation) batch[i]!.reject(value.error);
      else batch[i]!.resolve(value);
    }
  }

  private storeError(name: string, id: string | undefined, error: unknown): unknown {
    if (error instanceof StaleOwnerError || error instanceof SessionStoreError) return error;
    return new SessionStoreError(name, id, error instanceof Error ? error.message : String(error), {
      cause: error,
    });
  }
}

function prepare(db: SqliteDatabase, p: string) {
  const sessions = `${p}sessions`;
  const replay = `${p}replay`;
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    savepoint: db.prepare('SAVEPOINT lifeline_operation'),
    rollbackToSavepoint: db.prepare('ROLLBACK TO lifeline_operation'),
    releaseSavepoint: db.prepare('RELEASE lifeline_operation'),
    loadSession: db.prepare(
      `SELECT id, token_hash, retired_token_hash, token_confirmed, created_at, expires_at, last_sent, peer_acked, received, epoch, cursor, delivered FROM ${sessions} WHERE id = ?`,
    ),
    loadReplay: db.prepare(`SELECT seq, kind, payload FROM ${replay} WHERE session_id = ? ORDER BY seq`),
    fence: db.prepare(`SELECT epoch, last_sent, peer_acked FROM ${sessions} WHERE id = ?`),
    insertSession: db.prepare(
      `INSERT INTO ${sessions} (id, token_hash, retired_token_hash, token_confirmed, created_at, expires_at, deadline, last_sent, peer_acked, received, epoch, cursor, delivered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    // Node 22's node:sqlite binds an empty Uint8Array whose ArrayBuffer has no storage (what
    // TextEncoder returns for '') as NULL, not as an empty blob: a payload is never null here, so
    // NULL can only mean empty.
    insertReplay: db.prepare(
      `INSERT OR REPLACE INTO ${replay} (session_id, seq, kind, payload) VALUES (?, ?, ?, COALESCE(?, X''))`,
    ),
    insertReplayChunk: db.prepare(
      `INSERT OR REPLACE INTO ${replay} (session_id, seq, kind, payload) VALUES ${Array.from(
        { length: REPLAY_CHUNK },
        () => "(?, ?, ?, COALESCE(?, X''))",
      ).join(', ')}`,
    ),
    appended: db.prepare(
      `UPDATE ${sessions} SET last_sent = ?, cursor = COALESCE(?, cursor), deadline = COALESCE(expires_at, ?) WHERE id = ?`,
    ),
    acknowledged: db.prepare(
      `UPDATE ${sessions} SET peer_acked = MAX(peer_acked, ?), received = MAX(received, ?), delivered = MAX(delivered, ?), deadline = COALESCE(expires_at, ?) WHERE id = ?`,
    ),
    dropReplay: db.prepare(`DELETE FROM ${replay} WHERE session_id = ? AND seq <= ?`),
    claim: db.prepare(`UPDATE ${sessions} SET epoch = epoch + 1 WHERE id = ?`),
    expire: db.prepare(`DELETE FROM ${sessions} WHERE deadline <= ? RETURNING id`),
    deleteSession: db.prepare(`DELETE FROM ${sessions} WHERE id = ?`),
    countSessions: db.prepare(`SELECT COUNT(*) AS n FROM ${sessions}`),
    countReplay: db.prepare(`SELECT COUNT(*) AS n FROM ${replay}`),
  };
}

/** The replay log's table (schema version 3): rows keyed by (session, seq) alone, in one B-tree. */
function replayTable(name: string, p: string): string {
  return `
    CREATE TABLE IF NOT EXISTS ${name} (
      session_id TEXT NOT NULL REFERENCES ${p}sessions (id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      kind INTEGER NOT NULL,
      payload BLOB NOT NULL,
      PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
  `;
}

/** better-sqlite3 binds only Buffers as blobs; `node:sqlite` takes them too. A view, not a copy. */
function blob(bytes: Uint8Array | null): Buffer | null {
  return bytes && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Blobs come back as Buffers (better-sqlite3) or Uint8Arrays (`node:sqlite`): hand out plain Uint8Arrays. */
function bytes(value: Uint8Array | null): Uint8Array | null {
  return value && new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}
