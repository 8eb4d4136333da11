// The demo's resume server, run as its own process so the demo can kill it with SIGKILL.
//   node --import tsx demo-server.ts PORT STORE UPSTREAM_RATE UPSTREAM_START [UPSTREAM_WINDOW]
// STORE: 'sqlite:PATH' (the embedded durable store), 'redis:URL' (shared by replicas) or 'memory'.
// Each client message "n" is answered with "echo:n". The upstream is a log of events "tick:k",
// event k due at UPSTREAM_START + k / UPSTREAM_RATE seconds: events keep becoming due while no
// server runs. Prints {"port": P} once listening. With --report-links (anywhere in the arguments)
// it then prints {"attached": id} when a client's link attaches to session id here (connected or
// resumed) and {"detached": id} when it leaves: the demo kills the replica its client is on.
//
// Exactly once across crashes takes the application's part too. Every message this server sends
// carries a cursor, stored with the message before it goes out: "k:q", the upstream position k
// and the sequence number q of the last client message answered. A server that takes over a
// session reads the last stored cursor (`resumeCursor`): it continues the upstream after k, and
// skips a client message it is handed again whose seq is at most q (a server that died after
// answering it, before storing that it had received it, left its answer in the store already).
import {
  createResumeServer,
  MemorySessionStore,
  RedisSessionStore,
  SqliteSessionStore,
} from '@lifeline/node/server';

const [
  portArg = '0',
  storeArg = 'memory',
  rateArg = '100',
  startArg = String(Date.now()),
  upstreamWindowArg = '1024',
] = process.argv.slice(2).filter((arg) => arg !== '--report-links');
const reportLinks = process.argv.includes('--report-links');
const report = (event: Record<string, string>) => process.stdout.write(`${JSON.stringify(event)}\n`);
// How many upstream events may be unacknowledged at once (the rest of the 1,024-message replay
// window is left to the echoes; see below).
const upstreamWindow = Number(upstreamWindowArg);
const rate = Number(rateArg);
const start = Number(startArg);
const store = storeArg.startsWith('sqlite:')
  ? new SqliteSessionStore({ path: storeArg.slice('sqlite:'.length) })
  : storeArg.startsWith('redis:')
    ? new RedisSessionStore({ redis: storeArg.slice('redis:'.length) })
    : new MemorySessionStore();

// Every client message is echoed, so after an outage the client's whole queue (up to 32,768
// messages at its defaults) can arrive at once and be echoed at once: let that many echoes wait
// for room in the replay window (the server's default is 1,024).
const server = createResumeServer({ store, maxWaitingMessages: 32_768 });
// An echo or event the session refuses is said out loud (on stderr), never dropped silently.
const refused = (error: unknown) => process.stderr.write(`demo server: send refused: ${String(error)}\n`);
server.sessions$.subscribe((session) => {
  const [tickCursor, answeredCursor] = (session.resumeCursor ?? '-1:0').split(':');
  let next = Number(tickCursor) + 1;
  let answered = Number(answeredCursor);
  const cursor = () => `${next - 1}:${answered}`;
  session.messages$.subscribe(({ seq, data }) => {
    if (seq <= answered) return;
    answered = seq;
    session.send(`echo:${data}`, { cursor: cursor() }).catch(refused);
  });
  const upstream = setInterval(() => {
    const due = Math.floor(((Date.now() - start) * rate) / 1_000);
    // The replay window (1,024 messages) bounds what is unacknowledged; beyond it, wait for the
    // client. Sends past it would wait in memory, and past 1,024 waiting they reject: stopping at
    // the window leaves that room to the echoes.
    for (; next <= due && session.pending < upstreamWindow; next++) {
      session.send(`tick:${next}`, { cursor: `${next}:${answered}` }).catch(refused);
    }
  }, 10);
  session.events$.subscribe({
    next: (event) => {
      if (!reportLinks) return;
      if (event.type === 'connect' || event.type === 'resume') report({ attached: session.id });
      else if (event.type === 'detach' || event.type === 'close' || event.type === 'expire')
        report({ detached: session.id });
    },
    complete: () => clearInterval(upstream),
  });
});
const { port } = await server.listen({ port: Number(portArg) });
process.stdout.write(`${JSON.stringify({ port })}\n`);
