import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openSqliteDatabase, type SqliteDatabase, SqliteSessionStore } from '@lifeline/node/server';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { record, sessionId, text } from './support/session-store-contract.js';

const writer = fileURLToPath(new URL('./support/sqlite-writer-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

let dir: string;
const stores: SqliteSessionStore[] = [];
const children = new Set<ChildProcess>();
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeline-sqlite-'));
});
afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
  children.clear();
  await Promise.all(stores.splice(0).map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

function open(options: ConstructorParameters<typeof SqliteSessionStore>[0] = {}): SqliteSessionStore {
  const store = new SqliteSessionStore({ path: join(dir, 'sessions.db'), ...options });
  stores.push(store);
  return store;
}

test('the database is in WAL mode, and the default driver is node:sqlite where the runtime has it, else better-sqlite3', async () => {
  const store = open();
  await store.ready();
  const db = await openSqliteDatabase(join(dir, 'sessions.db'));
  try {
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
  } finally {
    db.close();
  }
  const hasBuiltin = Boolean(
    (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:sqlite'),
  );
  const opened = await openSqliteDatabase(join(dir, 'probe.db'));
  try {
    expect(opened.constructor.name).toBe(hasBuiltin ? 'DatabaseSync' : 'Database');
  } finally {
    opened.close();
  }
});

test('sessions, replay logs, both watermarks, epoch and cursor survive closing and reopening the file', async () => {
  const first = open();
  const id = sessionId();
  await first.save(record(id, { tokenConfirmed: true, epoch: 1 }));
  await first.append(id, [text(1, 'a', 'c1'), text(2, 'b', 'c2'), text(3, 'c', 'c3')], 1);
  await first.acknowledge(id, { peerAcked: 1, received: 42 }, 1);
  await first.update(id, { expiresAt: Date.now() + 60_000 }, 1);
  await first.close();

  const second = open();
  const loaded = (await second.load(id))!;
  expect(loaded).toMatchObject({
    lastSent: 3,
    peerAcked: 1,
    received: 42,
    epoch: 1,
    cursor: 'c3',
    tokenConfirmed: true,
  });
  expect(loaded.replay.map((message) => [message.seq, new TextDecoder().decode(message.payload)])).toEqual([
    [2, 'b'],
    [3, 'c'],
  ]);
  expect(await second.claim(id, 1)).toBe(1);
});

test('an append of many messages (written 32 rows a statement, the rest one by one) keeps every one, in order, once', async () => {
  const store = open();
  const id = sessionId();
  await store.save(record(id, { epoch: 1 }));
  await store.append(id, [text(1), text(2)], 1);
  // 1 and 2 again (ignored, idempotent), then 3..70: two chunks of 32 and 4 single rows; an empty
  // binary payload and a cursor inside a chunk.
  const messages = Array.from({ length: 70 }, (_, i) =>
    i === 9
      ? { seq: i + 1, kind: 'binary' as const, payload: new Uint8Array(0) }
      : text(i + 1, `m${i + 1}`, i === 40 ? 'c41' : undefined),
  );
  await store.append(id, messages, 1);
  const loaded = (await store.load(id))!;
  expect(loaded.lastSent).toBe(70);
  expect(loaded.cursor).toBe('c41');
  expect(loaded.replay.map((message) => message.seq)).toEqual(Array.from({ length: 70 }, (_, i) => i + 1));
  expect(loaded.replay[9]).toMatchObject({ kind: 'binary', payload: new Uint8Array(0) });
  expect(new TextDecoder().decode(loaded.replay[69]!.payload)).toBe('m70');
  expect(new TextDecoder().decode(loaded.replay[1]!.payload)).toBe('m2');
  expect(await store.count()).toEqual({ sessions: 1, replay: 70 });
});

test('writes issued in one macrotask share one transaction, and each promise settles only after it committed', async () => {
  const flushes: (() => void)[] = [];
  const store = open({ defer: (flush) => flushes.push(flush) });
  await store.ready();
  const id = sessionId();
  const saved = store.save(record(id));
  flushes.shift()!();
  await saved;

  let settled = 0;
  const writes = [];
  for (let seq = 1; seq <= 100; seq++) {
    writes.push(store.append(id, [text(seq)]).then(() => settled++));
    writes.push(store.acknowledge(id, { received: seq }).then(() => settled++));
  }
  expect(flushes).toHaveLength(1);
  // Nothing is committed before the flush: another connection sees none of it, and no promise settled.
  // A second connection with the driver this runtime uses (the better-sqlite3 in node_modules is
  // built for one Node ABI only, so the test cannot open it directly on the others).
  const reader = await openSqliteDatabase(join(dir, 'sessions.db'));
  try {
    const lastSent = () =>
      (
        reader.prepare('SELECT last_sent FROM lifeline_sessions WHERE id = ?').get(id) as {
          last_sent: number;
        }
      ).last_sent;
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(0);
    expect(lastSent()).toBe(0);
    flushes.shift()!();
    expect(lastSent()).toBe(100);
    await Promise.all(writes);
    expect(settled).toBe(200);
  } finally {
    reader.close();
  }
});

test('a database that cannot be opened rejects every operation with SessionStoreError', async () => {
  const store = open({ open: () => Promise.reject(new Error('disk on fire')) });
  await expect(store.load(sessionId())).rejects.toMatchObject({ code: 'ERR_STORE', operation: 'load' });
  await expect(store.ready()).rejects.toMatchObject({ code: 'ERR_STORE' });
});

test('expire is one DELETE on the deadline index', async () => {
  const store = open();
  await store.ready();
  const db = await openSqliteDatabase(join(dir, 'sessions.db'));
  try {
    const plan = db
      .prepare('EXPLAIN QUERY PLAN DELETE FROM lifeline_sessions WHERE deadline <= ? RETURNING id')
      .all(1) as {
      detail: string;
    }[];
    expect(plan.map((step) => step.detail).join('\n')).toMatch(
      /USING (COVERING )?INDEX lifeline_sessions_deadline/,
    );
  } finally {
    db.close();
  }
});

test('a process killed with SIGKILL in the middle of batched writes leaves a consistent database, every reported commit kept', async () => {
  const path = join(dir, 'killed.db');
  const sessions = 20;
  let highestReported = 0;
  for (let round = 0; round < 5; round++) {
    const child = spawn(
      process.execPath,
      ['--conditions=@lifeline/source', '--import', 'tsx', writer, path, String(sessions)],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.add(child);
    const lines = createInterface({ input: child.stdout! });
    const exited = once(child, 'exit');
    // Kill after some dozens of commits, at a moment that varies with the round.
    const killAfter = 30 + round * 17;
    let commits = 0;
    let start = 0;
    await new Promise<void>((resolve, reject) => {
      child.once('exit', () => reject(new Error('the writer exited before it was killed')));
      lines.on('line', (line) => {
        const message = JSON.parse(line) as { start?: number; committed?: number };
        if (message.start !== undefined) start = message.start;
        if (message.committed === undefined) return;
        highestReported = message.committed;
        if (++commits === killAfter) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await exited;
    lines.close();
    // Each run continues where the previous committed run stopped.
    expect(start).toBeGreaterThan(round === 0 ? 0 : 30);

    const db: SqliteDatabase = await openSqliteDatabase(path);
    try {
      expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
      const rows = db.prepare('SELECT id, last_sent, peer_acked, received FROM lifeline_sessions').all() as {
        id: string;
        last_sent: number;
        peer_acked: number;
        received: number;
      }[];
      expect(rows).toHaveLength(sessions);
      const lastSent = rows[0]!.last_sent;
      // Never less than what the writer saw committed; at most the one batch in flight beyond it.
      expect(lastSent).toBeGreaterThanOrEqual(highestReported);
      expect(lastSent).toBeLessThanOrEqual(highestReported + 1);
      for (const row of rows) {
        // All sessions moved together: a batch is one transaction, never half applied.
        expect(row).toMatchObject({
          last_sent: lastSent,
          received: lastSent,
          peer_acked: Math.max(0, lastSent - 10),
        });
        const seqs = (
          db.prepare('SELECT seq FROM lifeline_replay WHERE session_id = ? ORDER BY seq').all(row.id) as {
            seq: number;
          }[]
        ).map((entry) => entry.seq);
        expect(seqs).toEqual(
          Array.from({ length: lastSent - row.peer_acked }, (_, i) => row.peer_acked + 1 + i),
        );
      }
    } finally {
      db.close();
    }
  }
}, 90_000);

test('expired sessions are swept and storage stays bounded over a soak of 10,000 sessions', async () => {
  const store = open();
  const counts = [await store.count()];
  const now = Date.now();
  const ids = Array.from({ length: 10_000 }, () => sessionId());
  await Promise.all(ids.map((id, i) => store.save(record(id, { expiresAt: i % 2 ? null : now + 1_000 }))));
  await Promise.all(ids.map((id) => store.append(id, [text(1), text(2)])));
  // The attached half detaches later, as its links break.
  await Promise.all(ids.filter((_, i) => i % 2).map((id) => store.update(id, { expiresAt: now + 2_000 })));
  counts.push(await store.count());
  const first = await store.expire(now + 1_000);
  counts.push(await store.count());
  const second = await store.expire(now + 2_000);
  counts.push(await store.count());
  expect(first).toHaveLength(5_000);
  expect(second).toHaveLength(5_000);
  expect(new Set([...first, ...second]).size).toBe(10_000);
  expect(counts).toEqual([
    { sessions: 0, replay: 0 },
    { sessions: 10_000, replay: 20_000 },
    { sessions: 5_000, replay: 10_000 },
    { sessions: 0, replay: 0 },
  ]);
}, 60_000);

test('a session whose server died while attached is dropped once idle for idleTtlMs', async () => {
  let clock = 1_000_000;
  const store = open({ idleTtlMs: 10_000, now: () => clock });
  const [idle, busy] = [sessionId(), sessionId()];
  await store.save(record(idle));
  await store.save(record(busy));
  clock += 8_000;
  await store.append(busy, [text(1)]);
  clock += 5_000;
  expect(await store.expire(clock)).toEqual([idle]);
  expect(await store.load(busy)).toBeDefined();
});

/** The schema of versions 1 and 2 as those stores created it (version 1 had no `delivered`). */
function oldSchema(version: 1 | 2, p = 'lifeline_'): string {
  return `
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
      cursor TEXT${version === 2 ? ',\n      delivered INTEGER NOT NULL DEFAULT 0' : ''}
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ${p}sessions_deadline ON ${p}sessions (deadline);
    CREATE TABLE IF NOT EXISTS ${p}replay (
      session_id TEXT NOT NULL REFERENCES ${p}sessions (id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      kind INTEGER NOT NULL,
      payload BLOB NOT NULL,
      PRIMARY KEY (session_id, seq)
    );
    PRAGMA user_version = ${version};
  `;
}

for (const version of [1, 2] as const) {
  test(`a version-${version} file is upgraded in place to version 3 (replay table WITHOUT ROWID), every session and replay row kept`, async () => {
    const path = join(dir, 'sessions.db');
    const id = sessionId();
    const other = sessionId();
    const old = await openSqliteDatabase(path);
    try {
      old.exec('PRAGMA journal_mode = WAL');
      old.exec(oldSchema(version));
      const insertSession = old.prepare(
        'INSERT INTO lifeline_sessions (id, token_hash, retired_token_hash, token_confirmed, created_at, expires_at, deadline, last_sent, peer_acked, received, epoch, cursor) VALUES (?, ?, NULL, 1, 1700000000000, NULL, ?, 4, 1, 9, 2, ?)',
      );
      insertSession.run(id, Buffer.alloc(32, 7), Date.now() + 60_000, 'c4');
      insertSession.run(other, Buffer.alloc(32, 8), Date.now() + 60_000, null);
      const insertReplay = old.prepare(
        'INSERT INTO lifeline_replay (session_id, seq, kind, payload) VALUES (?, ?, ?, ?)',
      );
      for (const seq of [2, 3, 4]) insertReplay.run(id, seq, seq === 3 ? 1 : 0, Buffer.from(`m${seq}`));
      insertReplay.run(other, 2, 0, Buffer.from('x'));
      if (version === 2) old.exec(`UPDATE lifeline_sessions SET delivered = 8 WHERE id = '${id}'`);
    } finally {
      old.close();
    }

    const store = open();
    const loaded = (await store.load(id))!;
    expect(loaded).toMatchObject({
      lastSent: 4,
      peerAcked: 1,
      received: 9,
      delivered: version === 2 ? 8 : 0,
      epoch: 2,
      cursor: 'c4',
      tokenConfirmed: true,
    });
    expect(loaded.tokenHash).toEqual(new Uint8Array(32).fill(7));
    expect(
      loaded.replay.map((message) => [message.seq, message.kind, new TextDecoder().decode(message.payload)]),
    ).toEqual([
      [2, 'text', 'm2'],
      [3, 'binary', 'm3'],
      [4, 'text', 'm4'],
    ]);
    expect(await store.count()).toEqual({ sessions: 2, replay: 4 });
    // The upgraded file works as a new one: appends, acknowledgements, the cascade on delete.
    await store.append(id, [text(5)], 2);
    await store.acknowledge(id, { peerAcked: 3 }, 2);
    await store.delete(other, 2);
    expect((await store.load(id))!.replay.map((message) => message.seq)).toEqual([4, 5]);
    expect(await store.count()).toEqual({ sessions: 1, replay: 2 });
    await store.close();

    const db = await openSqliteDatabase(path);
    try {
      expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 3 });
      const tables = db
        .prepare(
          "SELECT name, sql FROM sqlite_master WHERE name LIKE 'lifeline_replay%' OR name LIKE 'sqlite_autoindex_lifeline_replay%'",
        )
        .all() as { name: string; sql: string | null }[];
      // One table and no separate primary-key index: the rows are the key's B-tree.
      expect(tables.map((table) => table.name)).toEqual(['lifeline_replay']);
      expect(tables[0]!.sql).toMatch(/WITHOUT ROWID/);
      expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
      expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
    } finally {
      db.close();
    }
    // Opening a version-3 file again changes nothing.
    const again = open();
    expect((await again.load(id))!.replay.map((message) => message.seq)).toEqual([4, 5]);
  });
}

/** Writes a session with replay rows 2..4 into a file of an older layout, as that release did. */
function seedOld(db: SqliteDatabase, p: string, id: string, version: 1 | 2): void {
  db.prepare(
    `INSERT INTO ${p}sessions (id, token_hash, retired_token_hash, token_confirmed, created_at, expires_at, deadline, last_sent, peer_acked, received, epoch, cursor) VALUES (?, ?, NULL, 1, 1700000000000, NULL, ?, 4, 1, 9, 2, NULL)`,
  ).run(id, Buffer.alloc(32, 7), Date.now() + 60_000);
  const insert = db.prepare(`INSERT INTO ${p}replay (session_id, seq, kind, payload) VALUES (?, ?, ?, ?)`);
  for (const seq of [2, 3, 4]) insert.run(id, seq, 0, Buffer.from(`${p}${seq}`));
  if (version === 2) db.prepare(`UPDATE ${p}sessions SET delivered = 3 WHERE id = ?`).run(id);
}

/** Every table of the file with its SQL, and the file's version. */
async function layout(path: string): Promise<{ version: number; tables: Record<string, string> }> {
  const db = await openSqliteDatabase(path);
  try {
    const rows = db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all() as {
      name: string;
      sql: string;
    }[];
    const { user_version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
    expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
    expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
    return { version: user_version, tables: Object.fromEntries(rows.map((row) => [row.name, row.sql])) };
  } finally {
    db.close();
  }
}

test('a second tablePrefix opens in a version-3 file; each prefix keeps its own sessions', async () => {
  const path = join(dir, 'sessions.db');
  const [x, y] = [sessionId(), sessionId()];
  const a = open({ tablePrefix: 'a_' });
  await a.save(record(x, { replay: [text(1)] }));
  await a.close();
  expect((await layout(path)).version).toBe(3);
  const b = open({ tablePrefix: 'b_' });
  await b.ready();
  await b.save(record(y, { replay: [text(1), text(2)] }));
  const again = open({ tablePrefix: 'a_' });
  expect((await again.load(x))!.replay.map((message) => message.seq)).toEqual([1]);
  expect(await again.load(y)).toBeUndefined();
  expect((await b.load(y))!.replay.map((message) => message.seq)).toEqual([1, 2]);
  expect(await b.count()).toEqual({ sessions: 1, replay: 2 });
  await Promise.all([b.close(), again.close()]);
  const { tables } = await layout(path);
  expect(Object.keys(tables)).toEqual(['a_replay', 'a_sessions', 'b_replay', 'b_sessions']);
  for (const sql of Object.values(tables)) expect(sql).toMatch(/WITHOUT ROWID/);
});

test('several prefixes of older layouts in one file: each is upgraded when opened, whatever the file version says, and a new prefix is created', async () => {
  const path = join(dir, 'sessions.db');
  const [x, y, z] = [sessionId(), sessionId(), sessionId()];
  const old = await openSqliteDatabase(path);
  try {
    old.exec('PRAGMA journal_mode = WAL');
    // a_ as version 1 wrote it, b_ as version 2 wrote it; the file says 2 (its last writer).
    old.exec(oldSchema(1, 'a_'));
    old.exec(oldSchema(2, 'b_'));
    seedOld(old, 'a_', x, 1);
    seedOld(old, 'b_', y, 2);
  } finally {
    old.close();
  }
  // A new prefix first: it must not touch (nor need) tables it does not own, and it marks the file 3.
  const c = open({ tablePrefix: 'c_' });
  await c.save(record(z, { replay: [text(1)] }));
  await c.close();
  let file = await layout(path);
  expect(file.version).toBe(3);
  expect(file.tables.a_replay).not.toMatch(/WITHOUT ROWID/);
  // Then the older prefixes, in a file that already says version 3.
  for (const [p, id, delivered] of [
    ['b_', y, 3],
    ['a_', x, 0],
  ] as const) {
    const store = open({ tablePrefix: p });
    const loaded = (await store.load(id))!;
    expect(loaded).toMatchObject({ lastSent: 4, peerAcked: 1, received: 9, delivered, epoch: 2 });
    expect(loaded.replay.map((message) => new TextDecoder().decode(message.payload))).toEqual([
      `${p}2`,
      `${p}3`,
      `${p}4`,
    ]);
    // The upgraded tables work: an append, an acknowledgement, the cascade on delete.
    await store.append(id, [text(5)], 2);
    await store.acknowledge(id, { peerAcked: 3, delivered: 5 }, 2);
    expect((await store.load(id))!).toMatchObject({ delivered: 5 });
    expect((await store.load(id))!.replay.map((message) => message.seq)).toEqual([4, 5]);
    await store.delete(id, 2);
    expect(await store.count()).toEqual({ sessions: 0, replay: 0 });
    await store.close();
  }
  file = await layout(path);
  expect(file.version).toBe(3);
  expect(Object.keys(file.tables)).toEqual([
    'a_replay',
    'a_sessions',
    'b_replay',
    'b_sessions',
    'c_replay',
    'c_sessions',
  ]);
  for (const sql of Object.values(file.tables)) expect(sql).toMatch(/WITHOUT ROWID/);
  const c2 = open({ tablePrefix: 'c_' });
  expect((await c2.load(z))!.replay.map((message) => message.seq)).toEqual([1]);
});

test('a new file is version 3, its replay table WITHOUT ROWID', async () => {
  await open().ready();
  const db = await openSqliteDatabase(join(dir, 'sessions.db'));
  try {
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 3 });
    expect(
      (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'lifeline_replay'").get() as { sql: string })
        .sql,
    ).toMatch(/WITHOUT ROWID/);
  } finally {
    db.close();
  }
});

test('an operation that fails part-way through its writes rolls back alone; the rest of its batch commits', async () => {
  const store = open();
  await store.ready();
  const [a, b] = [sessionId(), sessionId()];
  await store.save(record(a));
  // The save writes its session row, then fails on a payload the driver cannot bind: the row must go too.
  const broken = record(b, {
    replay: [text(1), { seq: 2, kind: 'text', payload: {} as unknown as Uint8Array }],
  });
  const outcomes = await Promise.allSettled([
    store.append(a, [text(1), text(2)]),
    store.save(broken),
    store.acknowledge(a, { peerAcked: 1, received: 5 }),
  ]);
  expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
    code: 'ERR_STORE',
    operation: 'save',
  });
  expect(await store.load(b)).toBeUndefined();
  const loaded = (await store.load(a))!;
  expect(loaded).toMatchObject({ lastSent: 2, peerAcked: 1, received: 5 });
  expect(loaded.replay.map((message) => message.seq)).toEqual([2]);
  expect(await store.count()).toEqual({ sessions: 1, replay: 1 });
});

test("a session's acknowledgements queued back to back in a batch are one UPDATE and one DELETE; anything between them keeps them apart", async () => {
  const runs: string[] = [];
  const counting = async (): Promise<SqliteDatabase> => {
    const db = await openSqliteDatabase(join(dir, 'sessions.db'));
    return {
      exec: (sql) => db.exec(sql),
      close: () => db.close(),
      prepare(sql) {
        const statement = db.prepare(sql);
        const verb = sql.trimStart().split(/\s/, 1)[0]!;
        return {
          run: (...params) => {
            runs.push(verb);
            return statement.run(...params);
          },
          get: (...params) => statement.get(...params),
          all: (...params) => statement.all(...params),
        };
      },
    };
  };
  const store = open({ database: counting() });
  const id = sessionId();
  await store.save(record(id));
  await store.append(
    id,
    Array.from({ length: 10 }, (_, i) => text(i + 1)),
  );
  runs.length = 0;
  const acks = [
    store.acknowledge(id, { peerAcked: 2, received: 1 }),
    store.acknowledge(id, { peerAcked: 4 }),
    store.acknowledge(id, { peerAcked: 3, received: 2, delivered: 2 }),
  ];
  await Promise.all(acks);
  expect(runs.filter((verb) => verb === 'UPDATE')).toHaveLength(1);
  expect(runs.filter((verb) => verb === 'DELETE')).toHaveLength(1);
  let loaded = (await store.load(id))!;
  expect(loaded).toMatchObject({ peerAcked: 4, received: 2, delivered: 2 });
  expect(loaded.replay.map((message) => message.seq)).toEqual([5, 6, 7, 8, 9, 10]);

  // An append between two acknowledgements keeps the order issued: two acknowledgements run.
  runs.length = 0;
  await Promise.all([
    store.acknowledge(id, { peerAcked: 5 }),
    store.append(id, [text(11)]),
    store.acknowledge(id, { peerAcked: 7 }),
  ]);
  expect(runs.filter((verb) => verb === 'DELETE')).toHaveLength(2);
  loaded = (await store.load(id))!;
  expect(loaded).toMatchObject({ peerAcked: 7, lastSent: 11 });
  expect(loaded.replay.map((message) => message.seq)).toEqual([8, 9, 10, 11]);
});
