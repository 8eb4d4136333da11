// Exactly-once effects from an at-least-once delivery: a resume server whose application stores
// each client message's effect (an "order" row) together with its idempotency record in ONE
// SQLite transaction, and acknowledges the message (`ack: 'manual'`) only after that transaction
// committed. Kill it with SIGKILL at any instant and restart it: every message's effect exists
// exactly once (docs/protocol.md, "Processing guarantees").
//
//   node --conditions=@lifeline/source --import tsx exactly-once-server.ts \
//        [--port 8080] [--sessions FILE] [--app FILE] [--ack manual|auto]
//
// The databases default to sessions.db and app.db in $TMPDIR/lifeline-exactly-once (one fixed
// folder, so a restarted server finds what the killed one committed; not in the repository).
//
// (`--ack auto` shows why the mode exists: a message then counts as received once handed over,
// before its batch committed, so a kill in between loses its effect.)
//
// Prints {"url":"ws://..."} once listening. Messages are committed in batches (one transaction
// every few milliseconds, as a busy application would), so a kill often lands between a commit
// and its acknowledgement: the next server redelivers those messages flagged `redelivered`, and
// the application finds them in `processed` and only acknowledges them again. An unflagged
// message is new for certain: its insert needs no lookup first.

import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResumeServer, type SessionMessage, SqliteSessionStore } from '@lifeline/node/server';
import { openSqliteDatabase } from '@lifeline/node/stores/sqlite';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
};

const dataDir = join(tmpdir(), 'lifeline-exactly-once');
if (!args.includes('--app') || !args.includes('--sessions')) mkdirSync(dataDir, { recursive: true });
const app = await openSqliteDatabase(option('app', join(dataDir, 'app.db')));
app.exec(`
  PRAGMA journal_mode = WAL;
  PRAGMA busy_timeout = 5000;
  CREATE TABLE IF NOT EXISTS orders (session TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS processed (session TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (session, seq));
  -- Every hand-over the application saw, with its flag (what the test counts).
  CREATE TABLE IF NOT EXISTS deliveries (pid INTEGER NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL, redelivered INTEGER NOT NULL);
  -- Duplicates the idempotency record caught on a message that was NOT flagged: must stay empty.
  CREATE TABLE IF NOT EXISTS unflagged_duplicates (session TEXT NOT NULL, seq INTEGER NOT NULL);
`);
const insertOrder = app.prepare('INSERT INTO orders (session, seq, body) VALUES (?, ?, ?)');
const markProcessed = app.prepare('INSERT OR IGNORE INTO processed (session, seq) VALUES (?, ?)');
const wasProcessed = app.prepare('SELECT 1 AS done FROM processed WHERE session = ? AND seq = ?');
const logDelivery = app.prepare(
  'INSERT INTO deliveries (pid, session, seq, redelivered) VALUES (?, ?, ?, ?)',
);
const logUnflagged = app.prepare('INSERT INTO unflagged_duplicates (session, seq) VALUES (?, ?)');

const server = createResumeServer({
  store: new SqliteSessionStore({ path: option('sessions', join(dataDir, 'sessions.db')) }),
  // A message counts as received only once the application acknowledged it.
  ack: option('ack', 'manual') === 'auto' ? 'auto' : 'manual',
});

/** Messages handed over and not yet committed, committed together every few milliseconds. */
let batch: { session: string; message: SessionMessage }[] = [];
let flush: ReturnType<typeof setTimeout> | undefined;

function commit(): void {
  flush = undefined;
  const done = batch;
  batch = [];
  app.exec('BEGIN IMMEDIATE');
  try {
    for (const { session, message } of done) {
      // Only a flagged message can have been processed before: only it needs the lookup.
      if (message.redelivered && wasProcessed.get(session, message.seq)) continue;
      const fresh = (markProcessed.run(session, message.seq) as { changes: number }).changes === 1;
      if (!fresh) {
        // Cannot happen while the flag holds; recorded (not thrown) so that a test can count it.
        logUnflagged.run(session, message.seq);
        continue;
      }
      insertOrder.run(session, message.seq, String(message.data));
    }
    app.exec('COMMIT');
  } catch (error) {
    app.exec('ROLLBACK');
    throw error;
  }
  // The effect is durable: only now may the server count the messages as received.
  for (const { message } of done) message.ack();
}

server.sessions$.subscribe((session) => {
  session.messages$.subscribe((message) => {
    logDelivery.run(process.pid, session.id, message.seq, message.redelivered ? 1 : 0);
    batch.push({ session: session.id, message });
    flush ??= setTimeout(commit, 5);
  });
});

const { url } = await server.listen({ port: Number(option('port', '0')) });
process.stdout.write(`${JSON.stringify({ url })}\n`);

// A graceful stop for SIGTERM (a deploy): commit what is in hand, then hand the clients over.
process.once('SIGTERM', async () => {
  if (flush !== undefined) {
    clearTimeout(flush);
    commit();
  }
  await server.close();
  app.close();
});
