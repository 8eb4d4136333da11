// A Deno client for the end-to-end tests, run as a subprocess: streams through @lifeline/deno against
// the stream server and reports on stdout as JSON lines; "stop" on stdin ends the stream.
//   deno run --allow-net --conditions=@lifeline/source e2e/clients/deno-client.ts <url> <window> <plain|resume>
//   -> {"type":"open"} once connected
//   -> {"type":"progress","received":n,"links":k,"sessions":s} on each new link or session and every 50 echoes
//   -> {"type":"done","counts":StreamCounts} after "stop", then exits

import { HAWebSocket, resume } from '@lifeline/deno';
import { StreamSession } from './stream-session.js';

const [url, window = '8', mode = 'plain'] = Deno.args;
if (!url) throw new Error('usage: deno-client.ts <url> [window] [plain|resume]');
const encoder = new TextEncoder();
const report = (message: unknown) => Deno.stdout.writeSync(encoder.encode(`${JSON.stringify(message)}\n`));

// Deno's HAWebSocket, in resume mode with the same `resume: resume()` option as the browser page.
const socket = new HAWebSocket(url, {
  backoff: { initialDelayMs: 20, maxDelayMs: 250 },
  minUptimeMs: 100,
  maxAttemptsPerFailure: 200,
  resume: mode === 'resume' && resume(),
});
const conn = socket.connection;
let reported = { received: 0, links: 0, sessions: 0 };
const session = new StreamSession(conn, {
  window: Number(window),
  mode: socket.session ? 'resume' : 'plain',
  session$: socket.session?.events$,
  onChange: (current) => {
    const received = current.echoes.counts(0).received;
    if (
      current.links !== reported.links ||
      current.sessions !== reported.sessions ||
      received >= reported.received + 50
    ) {
      reported = { received, links: current.links, sessions: current.sessions };
      report({ type: 'progress', ...reported });
    }
  },
});
await new Promise<void>((resolve, reject) => {
  const subscription = conn.state$.subscribe((state) => {
    if (state.status === 'open') {
      resolve();
      queueMicrotask(() => subscription.unsubscribe());
    } else if (state.status === 'closed') reject(state.error);
  });
});
report({ type: 'open' });
session.start();

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let input = '';
for await (const chunk of lines) {
  input += chunk;
  if (input.includes('stop')) break;
}
const counts = await session.stop();
report({ type: 'done', counts });
socket.close();
await conn.closed;
