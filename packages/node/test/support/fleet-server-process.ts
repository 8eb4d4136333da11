// A resume server replica of the fleet test: Redis store, and an application light enough for
// thousands of sessions (one timer for all of them). argv: store URL (redis://), upstream interval
// (ms between two events of a session), upstream start (epoch ms), log file, and optionally the
// port to listen on (default 0: any; a rolling restart starts the new replica on the old one's).
//
// Each session receives `u1, u2, ...`, event n due at start + n * interval, continuing a taken-over
// session right after its resumeCursor; every client message delivered to the application is
// written to the log as {"s":ID,"d":TEXT,"p":PID} (synchronously: it survives SIGKILL).
// Prints {"port":P} once listening. IPC: {"type":"stats"} is answered with the process's memory
// (after a GC) and the server's live sessions and counters. SIGTERM is a deploy's graceful stop:
// `server.close()` (GOAWAY to every attached client, drain, the detaches stored), then the store
// closed and the process exits 0.
import { openSync, writeSync } from 'node:fs';
import { createResumeServer, RedisSessionStore, type ServerSession } from '@lifeline/node/server';

const [url, intervalArg, startArg, logArg, portArg] = process.argv.slice(2);
const interval = Number(intervalArg);
const start = Number(startArg);
const log = openSync(logArg!, 'a');

const store = new RedisSessionStore({ redis: url!, operationTimeoutMs: 10_000 });
const server = createResumeServer({ store, sessionTtlMs: 120_000 });
const live = new Map<ServerSession, number>();
/** Sessions this replica dropped because a store write failed (closed 1011 "session store failed"). */
let storeDrops = 0;
server.sessions$.subscribe((session) => {
  live.set(session, Number(session.resumeCursor ?? 0) + 1);
  session.messages$.subscribe(({ data, redelivered }) =>
    writeSync(
      log,
      `${JSON.stringify({ s: session.id, d: String(data), p: process.pid, ...(redelivered && { r: 1 }) })}\n`,
    ),
  );
  session.events$.subscribe({
    next: (event) => {
      if (event.type === 'close' && event.by === 'store') storeDrops++;
    },
    complete: () => live.delete(session),
  });
});
const pump = setInterval(() => {
  const due = Math.floor((Date.now() - start) / interval);
  for (const [session, next] of live) {
    let n = next;
    // Bounded per tick, and by what the client has not acknowledged yet.
    for (let sent = 0; n <= due && sent < 50 && session.pending < 1_000; sent++, n++) {
      session.send(`u${n}`, { cursor: String(n) }).catch(() => {});
    }
    live.set(session, n);
  }
}, 100);
pump.unref();

process.on('message', (message: { type: string }) => {
  if (message.type !== 'stats') return;
  (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();
  process.send!({
    type: 'stats',
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    sessions: live.size,
    // Attached now: a session whose client moved to another replica stays here, detached, until
    // this copy learns it lost the session (fenced) or its time-to-live ends.
    attached: [...live.keys()].filter((session) => session.connected).length,
    stats: server.stats,
    storeDrops,
  });
});
// The parent gone (the test ended or crashed): nothing keeps this replica alive.
process.on('disconnect', () => process.exit(0));
process.once('SIGTERM', () => {
  const termAt = performance.now();
  let closedAt = termAt;
  server
    .close()
    .then(() => {
      closedAt = performance.now();
      return store.close();
    })
    .then(
      () => {
        // The two phases of the graceful stop, for the test's output (stderr is inherited).
        process.stderr.write(
          `[fleet replica ${process.pid}] SIGTERM: server.close() ${(closedAt - termAt).toFixed(0)} ms, store.close() ${(performance.now() - closedAt).toFixed(0)} ms\n`,
        );
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`graceful close failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
});

const { port } = await server.listen({ port: Number(portArg ?? 0), host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ port })}\n`);
