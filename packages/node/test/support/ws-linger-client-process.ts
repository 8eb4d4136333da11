// A client in a process of its own, to prove a closed connection lets the process exit: once it
// has nothing left to do it must end by itself, so the time to its exit bounds every socket and
// timer the close left behind. argv[2]: the ws URL; argv[3]: the mode:
// - `close`: opens an attached WebSocket connection, prints `{"open":true}`, and on the stdin
//   line `close` calls conn.close() and prints `{"closed":true}`.
// - `abandon` / `abandon-resumable`: the same (plain, or through the resume protocol) with a
//   heartbeat of 100 ms / 400 ms and a close linger of 60 s, so only abandoning (not the linger)
//   can release the link in time; on the heartbeat's link-down it prints `{"down":NAME}` and
//   calls conn.close().
// - `custom-terminate`: as `close`, on core's webSocketTransport with `ws` and only the
//   `terminate` capability (a custom platform without `terminateAfter`).
import { createInterface } from 'node:readline';
import { attach, type LinkData, type Transport } from '@lifeline/core';
import { resumable } from '@lifeline/core/internal';
import { webSocketTransport } from '@lifeline/core/websocket';
import { wsTransport } from '@lifeline/node/ws';
import WebSocket from 'ws';

const [url, mode] = process.argv.slice(2) as [string, string];
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const input = createInterface({ input: process.stdin });
const stopReading = () => {
  input.close();
  process.stdin.destroy();
};

const plain =
  mode === 'custom-terminate'
    ? webSocketTransport({ url, WebSocket, terminate: (socket) => socket.terminate() })
    : wsTransport(url, { closeLingerMs: mode === 'close' ? undefined : 60_000 });
const transport: Transport<LinkData, LinkData> = mode === 'abandon-resumable' ? resumable(plain) : plain;
const conn = attach(transport, {
  backoff: { initialDelayMs: 0, jitter: 'none' },
  minUptimeMs: 0,
  heartbeat: mode === 'close' || mode === 'custom-terminate' ? false : { intervalMs: 100, timeoutMs: 400 },
});
conn.events$.subscribe((event) => {
  if (event.type === 'link-open' && !event.recovered) print({ open: true });
  if (event.type === 'link-down' && mode.startsWith('abandon')) {
    print({ down: (event.error as Error).name });
    conn.close();
    stopReading();
  }
});
input.on('line', (line) => {
  if (line === 'close') {
    conn.close();
    print({ closed: true });
    stopReading();
  }
});
