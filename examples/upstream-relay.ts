// A server relaying an upstream stream to its client survives being killed with SIGKILL: the
// session lives in a SQLite file (or Redis), and the restarted server continues the upstream right
// after `session.resumeCursor`, so the client gets every upstream event exactly once, in order,
// including the events produced while no server ran.
//
//   node --conditions=@lifeline/source --import tsx upstream-relay.ts [--events 3000] [--rate 600]
//        [--kills 3] [--redis redis://127.0.0.1:6379]
//
// The upstream here is a log in this process: event n (`u<n>`, cursor "n") is produced at
// start + n / rate. A real server reads a Redis stream (`XREAD ... STREAMS key <cursor>`), a Kafka
// partition or a change feed from the cursor in the same way.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import {
  createResumeServer,
  RedisSessionStore,
  type SessionStore,
  SqliteSessionStore,
} from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1]! : fallback;
};

if (args[0] === '--server') await serve();
else await main();

/** The server process: `--server PORT STORE START EVENTS RATE`. */
async function serve(): Promise<void> {
  const [, portArg, storeArg, startArg, eventsArg, rateArg] = args;
  const [start, events, rate] = [Number(startArg), Number(eventsArg), Number(rateArg)];
  const store: SessionStore = storeArg!.startsWith('redis')
    ? new RedisSessionStore({ redis: storeArg! })
    : new SqliteSessionStore({ path: storeArg! });
  const server = createResumeServer({ store });
  server.sessions$.subscribe((session) => {
    // A new session starts the upstream at its beginning; a session taken over after a crash
    // continues right after the last message the previous server appended.
    let next = Number(session.resumeCursor ?? 0) + 1;
    const relay = setInterval(() => {
      const produced = Math.min(events, Math.floor(((Date.now() - start) * rate) / 1_000));
      // Paced by the replay window (1,024 messages): a catch-up burst after a restart waits for the
      // client's acks instead of piling up sends (past 1,024 waiting, a send rejects).
      for (; next <= produced && session.pending < 1_024; next++) {
        session.send(`u${next}`, { cursor: String(next) }).catch(() => {});
      }
      if (next > events) clearInterval(relay);
    }, 10);
    session.events$.subscribe({ complete: () => clearInterval(relay) });
  });
  const { port } = await server.listen({ port: Number(portArg) });
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

async function main(): Promise<void> {
  const events = Number(option('events', '3000'));
  const rate = Number(option('rate', '600'));
  const kills = Number(option('kills', '3'));
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-upstream-relay-'));
  const store = option('redis', '') || join(dir, 'sessions.db');
  const start = Date.now();
  const script = fileURLToPath(import.meta.url);
  const startServer = async (port: number) => {
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        script,
        '--server',
        String(port),
        store,
        String(start),
        String(events),
        String(rate),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    return { child, port: (JSON.parse(line) as { port: number }).port };
  };

  let server = await startServer(0);
  const transport = resumable(wsTransport(`ws://127.0.0.1:${server.port}`, { connectTimeoutMs: 2_000 }));
  const sessionEvents: string[] = [];
  transport.session$.subscribe((event) => sessionEvents.push(event.type));
  const conn = attach(transport, {
    backoff: { initialDelayMs: 20, maxDelayMs: 200 },
    maxAttemptsPerFailure: 500,
    minUptimeMs: 0,
  });

  const seen = new Set<number>();
  let received = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let last = 0;
  let killed = 0;
  let onMessage = () => {};
  conn.messages$.subscribe((message) => {
    const n = Number(String(message).slice(1));
    received++;
    if (seen.has(n)) duplicated++;
    seen.add(n);
    if (n !== last + 1) outOfOrder++;
    last = n;
    onMessage();
  });
  const until = (check: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out')), 60_000);
      onMessage = () => {
        if (!check()) return;
        clearTimeout(timer);
        onMessage = () => {};
        resolve();
      };
      onMessage();
    });

  try {
    for (let k = 1; k <= kills; k++) {
      // Mid-stream: after a share of the events arrived, the server dies without a word.
      await until(() => received >= (events * k) / (kills + 1));
      server.child.kill('SIGKILL');
      await once(server.child, 'exit');
      killed++;
      console.log(`killed the server (SIGKILL) after ${received} events; restarting it`);
      server = await startServer(server.port);
    }
    await until(() => seen.size === events);
  } finally {
    conn.close();
    server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }

  const lost = events - seen.size;
  console.log(`upstream events:      ${events}`);
  console.log(`received (unique):    ${seen.size}`);
  console.log(`lost:                 ${lost}`);
  console.log(`duplicated:           ${duplicated}`);
  console.log(`out of order:         ${outOfOrder}`);
  console.log(`server kills:         ${killed}`);
  console.log(`session events:       ${sessionEvents.join(', ')}`);
  process.exitCode =
    lost === 0 && duplicated === 0 && outOfOrder === 0 && !sessionEvents.includes('lost') ? 0 : 1;
}
