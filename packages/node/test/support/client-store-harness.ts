// The client-store crash tests (issue 15): a resume server in the test process streaming `s:k` to
// its one session and checking the client's `c:k`, and client processes (client-store-process.ts)
// started on a store file and SIGKILLed mid-stream.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createResumeServer, type ServerSession } from '@lifeline/node/server';
import { cleanups } from './cleanups.js';

const script = fileURLToPath(new URL('./client-store-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../..', import.meta.url));

export type ClientLine = Record<string, unknown>;

/** One client process; `lines` is everything it printed, in order. */
export class ClientProcess {
  readonly lines: ClientLine[] = [];
  readonly exited: Promise<unknown>;
  private waiters: { test: (line: ClientLine) => boolean; resolve: (line: ClientLine) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    this.exited = once(child, 'exit');
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as ClientLine;
      this.lines.push(line);
      for (const waiter of this.waiters.filter((w) => w.test(line))) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    });
  }

  static start(url: string, store: string, rate: number): ClientProcess {
    const child = spawn(
      process.execPath,
      ['--conditions=@lifeline/source', '--import', 'tsx', script, url, store, String(rate)],
      { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const client = new ClientProcess(child);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await client.exited;
    });
    return client;
  }

  /** The first line (already printed or to come) that passes `test`; rejects if the process exits first. */
  line(test: (line: ClientLine) => boolean, what: string): Promise<ClientLine> {
    const found = this.lines.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      this.waiters.push({ test, resolve });
      void this.exited.then(() => reject(new Error(`the client exited before ${what}`)));
    });
  }

  /** Server messages the application received, in order: [k, seq]. */
  get received(): [number, number][] {
    return this.lines.flatMap((line) => ('r' in line ? [[line.r as number, line.seq as number]] : []));
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * The server: streams `s:1, s:2...` to every session at `rate` per second (at most `maxAhead`
 * unacknowledged), and records what each session received.
 */
export async function streamingServer(rate: number, maxAhead = 500) {
  const server = createResumeServer();
  const sessions: { session: ServerSession; received: { seq: number; data: string }[] }[] = [];
  let sent = 0;
  let acked = 0;
  let sending = true;
  server.sessions$.subscribe((session) => {
    const record = { session, received: [] as { seq: number; data: string }[] };
    sessions.push(record);
    session.messages$.subscribe(({ seq, data }) => {
      record.received.push({ seq, data: typeof data === 'string' ? data : new TextDecoder().decode(data) });
    });
  });
  const perTick = Math.max(1, Math.round(rate / 100));
  const timer = setInterval(() => {
    const session = sessions[0]?.session;
    if (!session || !sending) return;
    for (let i = 0; i < perTick && sent - acked < maxAhead; i++) {
      sent++;
      session.sendAsync(`s:${sent}`).then(
        () => acked++,
        () => {},
      );
    }
  }, 10);
  const { port } = await server.listen();
  cleanups.push(async () => {
    clearInterval(timer);
    await server.close();
  });
  return {
    url: `ws://127.0.0.1:${port}`,
    sessions,
    get sent() {
      return sent;
    },
    get acked() {
      return acked;
    },
    stopSending() {
      sending = false;
    },
  };
}

/**
 * Counts a stream received across incarnations of the client. `runs[i]` is what incarnation i
 * printed: its `restored` watermark and the messages its application got, in order.
 */
export function tallyAcrossRestarts(
  runs: { restored: { lastReceived: number; deliveredUpTo: number } | null; received: [number, number][] }[],
) {
  let highest = 0;
  let lost = 0;
  let duplicated = 0;
  let reordered = 0;
  let repeatedInWindow = 0;
  let payloadMismatch = 0;
  for (const run of runs) {
    const start = run.restored?.lastReceived ?? 0;
    const window = run.restored?.deliveredUpTo ?? 0;
    // A watermark ahead of what the application had would skip messages.
    if (start > highest) lost += start - highest;
    let expected = start + 1;
    for (const [k, seq] of run.received) {
      if (k !== seq) payloadMismatch++;
      if (seq !== expected) {
        if (seq < expected) duplicated++;
        else {
          reordered++;
          lost += seq - expected;
        }
      } else if (seq <= highest) {
        // Delivered again after the restart: allowed only inside the window the store announced.
        if (seq <= window) repeatedInWindow++;
        else duplicated++;
      }
      if (seq >= expected) expected = seq + 1;
      if (seq > highest) highest = seq;
    }
  }
  return { highest, lost, duplicated, reordered, repeatedInWindow, payloadMismatch };
}
