// A resume server with a durable store that closes gracefully on SIGTERM, for the handoff tests.
// argv: port (0: any), store ('sqlite:PATH' or 'redis:URL'), upstream total, rate, start (epoch ms),
// log file, handoff URL ('' for none).
//
// The application is the durable tests' relay app (relay-app.ts: records every client message,
// relays an upstream continued after resumeCursor). Prints {"port":P} once listening. On SIGTERM:
// `server.close({ goAway: { url } })`, the recipe of docs/protocol.md, then logs
// {"t":"closed","ms":DURATION} and exits on its own (nothing may keep it alive).
import { openSync, writeSync } from 'node:fs';
import type { SessionStore } from '@lifeline/node/server';
import { createResumeServer, RedisSessionStore, SqliteSessionStore } from '@lifeline/node/server';
import { relayApp } from './relay-app.js';

const [portArg, storeArg, totalArg, rateArg, startArg, logArg, handoffArg] = process.argv.slice(2);
const kind = storeArg!.slice(0, storeArg!.indexOf(':'));
const target = storeArg!.slice(kind.length + 1);
const store: SessionStore =
  kind === 'redis' ? new RedisSessionStore({ redis: target }) : new SqliteSessionStore({ path: target });

const log = openSync(logArg!, 'a');
const write = (line: object) => writeSync(log, `${JSON.stringify({ ...line, p: process.pid })}\n`);
const server = createResumeServer({ store, sessionTtlMs: 60_000, maxReplayMessages: 4_096 });
relayApp(server, { total: Number(totalArg), rate: Number(rateArg), start: Number(startArg) }, (line) =>
  write(line),
);
const { port } = await server.listen({ port: Number(portArg ?? 0) });
process.stdout.write(`${JSON.stringify({ port })}\n`);

process.once('SIGTERM', async () => {
  const started = performance.now();
  write({ t: 'sigterm', at: Date.now() });
  await server.close({ goAway: handoffArg ? { url: handoffArg } : {} });
  await store.close?.();
  write({ t: 'closed', ms: Math.round(performance.now() - started), at: Date.now() });
});
