// The server side of `pnpm bench server` (server.bench.ts), in its own process, run from the
// builds with plain `node --expose-gc` (no tsx: its helpers would count in the heap figures).
//
// argv[2], the server:
//   plain            a `ws` WebSocketServer, one message listener per connection (the baseline),
//                    `ws` imported as an ES module (its ES wrapper, as an ES application imports it)
//   plain:require    the same, `ws` loaded with `require`, as @lifeline/node/server loads it
//   resume           createResumeServer() with the default MemorySessionStore
//   sqlite:<path>    createResumeServer() on a SqliteSessionStore at <path>
// Prints {"port":P,"cpuMs":C} once listening, C the process's CPU time so far (user + system,
// every thread), which moves less than the wall-clock start when other processes share the cores. Then takes commands on stdin, one a line, and answers each
// with one JSON line:
//   heap             garbage-collects, then {"heapUsed","external","arrayBuffers"} in bytes
//   sessions         {"live","connected","parked"}: the resume server's sessions (parked: detached
//                    sessions that keep only their parked state; -1 where the build cannot tell)
//   clients          {"clients"}: the plain server's open connections (-1 for a resume server)
//   cpu              {"micros"}: this process's CPU time so far (user + system)
//   unacked:N:SIZE[:post] sends N messages of SIZE bytes, each in a buffer of its own that the
//                    caller drops at once, to every session, with send() (or post()); {"sent"}
// A resume session answers "up:N" with N 64-byte messages, at most a replay window in flight,
// then "done".
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const [kind, target] = (process.argv[2] ?? 'plain').split(/:(.*)/s);
const gc = globalThis.gc;
if (!gc) throw new Error('run with --expose-gc');

let server;
let port;
let wss;
if (kind === 'plain') {
  // An ES import of `ws` goes through its ES wrapper, and Node 20 runs its CommonJS export-name
  // lexer over each of the eight files the wrapper imports; `require` does not.
  const { WebSocketServer } =
    target === 'require' ? createRequire(import.meta.url)('ws') : await import('ws');
  const http = createServer();
  wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => {
      if (!isBinary && String(data) === 'ping') socket.send('pong');
    });
    socket.on('error', () => {});
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  port = http.address().port;
} else {
  // LIFELINE_BENCH_NODE_SERVER: the path of another build's dist/server.js, to compare builds
  // with this child and its bench (an A/B where the measure itself changed).
  const { createResumeServer, SqliteSessionStore } = await import(
    process.env.LIFELINE_BENCH_NODE_SERVER ?? '@lifeline/node/server'
  );
  const store = kind === 'sqlite' ? new SqliteSessionStore({ path: target }) : undefined;
  server = createResumeServer({ store });
  const payload = new Uint8Array(64).fill(42);
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      if (typeof data === 'string' && data.startsWith('up:')) void stream(session, Number(data.slice(3)));
    });
  });
  // A producer that respects the replay window: at most one window of sends unacknowledged.
  const stream = async (session, n) => {
    const inFlight = [];
    for (let i = 0; i < n; i++) {
      inFlight.push(session.send(payload));
      if (inFlight.length >= 1_000) await inFlight.shift().catch(() => {});
    }
    session.send('done');
  };
  ({ port } = await server.listen());
}
const started = process.cpuUsage();
process.stdout.write(`${JSON.stringify({ port, cpuMs: (started.user + started.system) / 1000 })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'heap') {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ heapUsed, external, arrayBuffers })}\n`);
  } else if (line.startsWith('snapshot:')) {
    // For looking into the figures: a heap snapshot, compared with another by any snapshot tool.
    gc();
    const { writeHeapSnapshot } = await import('node:v8');
    process.stdout.write(`${JSON.stringify({ file: writeHeapSnapshot(line.slice('snapshot:'.length)) })}\n`);
  } else if (line === 'clients') {
    // The plain server's open connections (ws's client set), to wait for its clients' closes.
    process.stdout.write(`${JSON.stringify({ clients: wss?.clients.size ?? -1 })}\n`);
  } else if (line === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ micros: user + system })}\n`);
  } else if (line === 'exit') {
    process.exit(0);
  } else if (line === 'sessions') {
    let connected = 0;
    let parked = 0;
    for (const session of server.sessions.values()) {
      if (session.connected) connected++;
      if (session.isParked === undefined) parked = -1;
      else if (parked >= 0 && session.isParked) parked++;
    }
    process.stdout.write(`${JSON.stringify({ live: server.sessions.size, connected, parked })}\n`);
  } else if (line.startsWith('unacked:')) {
    const [, count, bytes, how = 'send'] = line.split(':');
    const [n, size] = [Number(count), Number(bytes)];
    // `post`: the promise-less ServerSession.post, where the build has it (else nothing is sent).
    const sessions = [...server.sessions.values()].filter((session) => how !== 'post' || session.post);
    let sent = 0;
    for (const session of sessions) {
      for (let i = 0; i < n; i++) {
        if (how === 'post') session.post(new Uint8Array(size).fill(i & 0xff));
        else session.send(new Uint8Array(size).fill(i & 0xff));
        sent++;
      }
    }
    process.stdout.write(`${JSON.stringify({ sent })}\n`);
  }
}
