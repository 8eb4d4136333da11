// A client process for the outage test (issue 15): a resumable HAWebSocket with a file client
// store, driven over stdin, so the test can make it send while its server is unreachable and
// SIGKILL it there. argv[2]: the ws URL; argv[3]: the store file.
// Prints one JSON line per event (stdout to a pipe is synchronous on Linux: a printed line is out):
// - {"restored": RestoredClientSession | null, "sessionId"} at the first `open`;
// - {"recovering": true} each time the connection starts recovering (the link is down);
// - {"stored": seq} after each store write that appended messages, `seq` the last one appended;
// - {"sent": b} after stdin "send a b" handed `c:a`...`c:b` to `send()` (synchronously);
// - {"acked": n} once the server acknowledged everything up to `n` (stdin "acked n").
import { createInterface } from 'node:readline';
import type { ClientSessionChange } from '@lifeline/core/resume';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { HAWebSocket, resume } from '@lifeline/node/ws';

const [url, path] = process.argv.slice(2) as [string, string];
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

class ReportingStore extends FileClientSessionStore {
  override async write(change: ClientSessionChange): Promise<void> {
    await super.write(change);
    const last = change.append?.[change.append.length - 1];
    if (last) print({ stored: last.seq });
  }
}

const socket = new HAWebSocket(url, {
  resume: resume({ store: new ReportingStore(path) }),
  backoff: { initialDelayMs: 20, maxDelayMs: 200 },
  maxAttemptsPerFailure: Number.POSITIVE_INFINITY,
});
socket.addEventListener('error', (event) => {
  print({ error: String((event as ErrorEvent).error ?? (event as ErrorEvent).message) });
});
socket.addEventListener('recovering', () => print({ recovering: true }));
socket.addEventListener(
  'open',
  () => {
    const session = socket.session!;
    print({ restored: session.restored ?? null, sessionId: session.id ?? null });
  },
  { once: true },
);
createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, a, b] = line.split(' ');
  if (command === 'send') {
    for (let k = Number(a); k <= Number(b); k++) socket.send(`c:${k}`);
    print({ sent: Number(b) });
  } else if (command === 'acked') {
    const target = Number(a);
    const poll = setInterval(() => {
      if (socket.session!.peerAcked >= target) {
        clearInterval(poll);
        print({ acked: target });
      }
    }, 10);
  }
});
