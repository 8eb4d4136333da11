// The server of the haWebSocket() crash test: a resume server with a SQLite store, in a process of
// its own so the test can SIGKILL it. argv: port (0: any), sqlite path, stream rate (events/s per
// stream), stream start (epoch ms), log file.
//
// The application speaks JSON, as a webSocket() server does: {"sub":NAME} starts stream NAME,
// {"unsub":NAME} stops it, any other value is recorded. A stream's event n, {"s":NAME,"n":n}, is
// due at start + n / rate, so events keep becoming due while no server runs. The streams and
// their positions travel in each event's cursor: a process that takes a session over (after a
// SIGKILL) continues every stream right after the last event it appended, with no re-subscribe.
//
// Prints {"port":P} once listening; writes one JSON line per client message delivered to the
// application to the log file, synchronously (it survives SIGKILL): {"t":"in","s":ID,"q":SEQ,"d":TEXT,"p":PID}.
import { openSync, writeSync } from 'node:fs';
import { createResumeServer, SqliteSessionStore } from '@lifeline/node/server';

const [portArg, pathArg, rateArg, startArg, logArg] = process.argv.slice(2);
const rate = Number(rateArg);
const start = Number(startArg);
const log = openSync(logArg!, 'a');
const server = createResumeServer({
  store: new SqliteSessionStore({ path: pathArg! }),
  sessionTtlMs: 60_000,
  maxReplayMessages: 4_096,
});

server.sessions$.subscribe((session) => {
  // name -> the next event number of that stream
  const streams = new Map<string, number>(
    session.resumeCursor === undefined ? [] : (JSON.parse(session.resumeCursor) as [string, number][]),
  );
  session.messages$.subscribe(({ seq, data, redelivered }) => {
    const text = String(data);
    writeSync(
      log,
      `${JSON.stringify({ t: 'in', s: session.id, q: seq, d: text, p: process.pid, ...(redelivered && { r: 1 }) })}\n`,
    );
    const message = JSON.parse(text) as { sub?: string; unsub?: string };
    if (typeof message.sub === 'string' && !streams.has(message.sub)) streams.set(message.sub, 1);
    if (typeof message.unsub === 'string') streams.delete(message.unsub);
  });
  const pump = setInterval(() => {
    const due = Math.floor(((Date.now() - start) * rate) / 1_000);
    for (const [name, first] of streams) {
      let next = first;
      // Bounded per tick, and by what the client has not acknowledged yet.
      for (let sent = 0; next <= due && sent < 500 && session.pending < 2_048; sent++, next++) {
        streams.set(name, next + 1);
        session
          .send(JSON.stringify({ s: name, n: next }), { cursor: JSON.stringify([...streams]) })
          // A send the session could not take ends the session; the client's counts show it.
          .catch(() => {});
      }
    }
  }, 5);
  session.events$.subscribe({ complete: () => clearInterval(pump) });
});
const { port } = await server.listen({ port: Number(portArg ?? 0) });
process.stdout.write(`${JSON.stringify({ port })}\n`);
