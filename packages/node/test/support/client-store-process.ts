// A client process that streams both ways through a resumable HAWebSocket with a file client
// store (issue 15), for tests that SIGKILL it mid-stream and start it again on the same file.
// argv[2]: the ws URL; argv[3]: the store file ('' = no store); argv[4]: messages per second.
// Prints one JSON line per event (stdout to a pipe is synchronous on Linux: a printed line is out):
// - {"restored": RestoredClientSession | null, "sessionId"} once open, before sending anything;
// - {"r": k, "seq": s} for each server message `s:k` the application received, `seq` its number;
// - {"sent": n} every 50 messages: the app's counter (what it handed to send()).
// stdin "stop": stops sending, waits until the server acknowledged everything, prints
// {"done": true, "lastSent": n}, keeps receiving.
import { createInterface } from 'node:readline';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { HAWebSocket, resume } from '@lifeline/node/ws';

const [url, path, rateText] = process.argv.slice(2) as [string, string, string];
const rate = Number(rateText);
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

const store = path ? new FileClientSessionStore(path) : undefined;
const socket = new HAWebSocket(url, {
  resume: resume(store ? { store } : {}),
  backoff: { initialDelayMs: 20, maxDelayMs: 200 },
});
socket.binaryType = 'arraybuffer';
socket.addEventListener('error', (event) => {
  print({ error: String((event as ErrorEvent).error ?? (event as ErrorEvent).message) });
});
socket.addEventListener('message', (event) => {
  const text = String((event as MessageEvent).data);
  print({ r: Number(text.slice(2)), seq: socket.session!.lastReceived });
});

let timer: ReturnType<typeof setInterval> | undefined;
socket.addEventListener(
  'open',
  () => {
    const session = socket.session!;
    const restored = session.restored;
    print({ restored: restored ?? null, sessionId: session.id ?? null });
    // The application's own numbering continues after what the store kept: a message that was
    // handed to send() but not yet stored when the process died was never sent, and is made again.
    let next = (restored?.lastSent ?? 0) + 1;
    const perTick = Math.max(1, Math.round(rate / 100));
    timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        socket.send(`c:${next}`);
        if (next % 50 === 0) print({ sent: next });
        next++;
      }
    }, 10);
    createInterface({ input: process.stdin }).on('line', (line) => {
      if (line !== 'stop') return;
      clearInterval(timer);
      const waitAcked = setInterval(() => {
        if (session.pending === 0 && session.peerAcked === next - 1) {
          clearInterval(waitAcked);
          print({ done: true, lastSent: next - 1 });
        }
      }, 10);
    });
  },
  { once: true },
);
