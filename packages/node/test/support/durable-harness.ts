// Durable-session test fixtures: resume server processes (SQLite or Redis store) that tests kill
// with SIGKILL and restart, and the ledger that counts what the server application processed.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  attach,
  type BackoffOptions,
  type HAConnection,
  type LinkData,
  type Transport,
} from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import type { AppRecord, Upstream } from './relay-app.js';

export type { Upstream } from './relay-app.js';

const script = fileURLToPath(new URL('./durable-server-process.ts', import.meta.url));
const standbyScript = fileURLToPath(new URL('./durable-server-standby.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../..', import.meta.url));

/** A record a server process wrote to its log; `p` is the process id. */
export type ServerLine = AppRecord & { p: number };

/**
 * Every record the server processes wrote to `log`, in order. A process SIGKILLed inside its
 * `writeSync` may leave a torn record (Linux ends a write to a file early when a fatal signal is
 * pending), which the next process's record then follows on the same line: the torn fragment was
 * never written as a record, so it is dropped, and the record after it is kept.
 */
export function readServerLog(log: string): ServerLine[] {
  const records: ServerLine[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (line === '') continue;
    try {
      records.push(JSON.parse(line) as ServerLine);
    } catch (error) {
      const next = line.lastIndexOf('{"t":');
      if (next <= 0) {
        // A torn last record with nothing after it: the process died writing it.
        if (line === readFileSync(log, 'utf8').trimEnd().split('\n').at(-1)) continue;
        throw error;
      }
      records.push(JSON.parse(line.slice(next)) as ServerLine);
    }
  }
  return records;
}

export interface DurableServerOptions {
  /** 'sqlite:PATH' or 'redis:URL'. */
  readonly store: string;
  readonly upstream: Upstream;
  /** The file the processes append their records to (see {@link readServerLog}). */
  readonly log: string;
  /** @default 0 (any) */
  readonly port?: number;
  /**
   * The application: `'relay'` (records client messages, relays the upstream) or `'echo'`
   * (answers each client message `cN` with `eN`; see relay-app.ts). @default 'relay'
   */
  readonly app?: 'relay' | 'echo';
  /**
   * Replay limits of the server (the process defaults to a 4,096-message window), and the Redis
   * store's operation timeout (the process leaves the store's default, 5 s). @default none
   */
  readonly serverOptions?: {
    readonly maxReplayMessages?: number;
    readonly maxWaitingMessages?: number;
    readonly redisTimeoutMs?: number;
  };
}

/** One server process; {@link kill} with SIGKILL, then start another on the same port. */
export class DurableServer {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static start(options: DurableServerOptions): Promise<DurableServer> {
    return DurableServer.listening(spawnServer(options, false));
  }

  /**
   * A process that loads its code and waits: `ready` resolves once it is loaded (rejects if it
   * exits first or takes over `timeoutMs`); `go()` (after `ready`) makes it open the store and
   * listen, within milliseconds (a fresh process takes a second or more to load), so a test
   * controls how long the server stays down. `cancel()` kills a standby that was not used.
   */
  static standby(
    options: DurableServerOptions,
    timeoutMs = 60_000,
  ): { ready: Promise<void>; go(): Promise<DurableServer>; cancel(): Promise<void> } {
    const child = spawnServer(options, true);
    const exited = once(child, 'exit');
    const ready = firstLine(child, timeoutMs).then(() => {});
    // Observed by go(); a standby cancelled before it was ready must not become an unhandled rejection.
    ready.catch(() => {});
    return {
      ready,
      go: async () => {
        await ready;
        child.stdin!.end('go\n');
        return DurableServer.listening(child);
      },
      cancel: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGKILL');
        await exited;
      },
    };
  }

  private static async listening(child: ChildProcess): Promise<DurableServer> {
    const lines = createInterface({ input: child.stdout! });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.once('exit', (code, signal) =>
          reject(new Error(`server process exited (${code ?? signal}) before listening`)),
        );
        lines.once('line', (text) => resolve((JSON.parse(text) as { port: number }).port));
      });
      return new DurableServer(child, port);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    } finally {
      lines.close();
      child.stdout!.resume();
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** The next line `child` prints; rejects if it exits first or takes over `timeoutMs`. */
export function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise<string>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.close();
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`process exited (${code ?? signal}) before printing a line`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no line from the process within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', onExit);
    lines.once('line', (text) => {
      done();
      resolve(text);
    });
  });
}

/** A server process; a `standby` one (durable-server-standby.ts) waits for a line on stdin before it listens. */
function spawnServer(options: DurableServerOptions, standby: boolean): ChildProcess {
  const { upstream } = options;
  const args = [
    '--conditions=@lifeline/source',
    '--import',
    'tsx',
    standby ? standbyScript : script,
    String(options.port ?? 0),
    options.store,
    String(upstream.total),
    String(upstream.rate),
    String(upstream.start),
    options.log,
    options.app ?? 'relay',
    JSON.stringify(options.serverOptions ?? {}),
  ];
  return spawn(process.execPath, args, {
    cwd: root,
    stdio: [standby ? 'pipe' : 'ignore', 'pipe', 'inherit'],
  });
}

/**
 * What the server application processed of the client's numbered messages `${prefix}1..N`, by the
 * protocol's exactly-once contract (docs/protocol.md, "redelivered"): a message handed over again
 * flagged `redelivered` (an earlier server, or an earlier session object of the same process after
 * a store failure, may have handed it over before its acknowledgement was stored) is one an
 * idempotent consumer absorbs, counted as `redelivered`; handed over again unflagged, it is a
 * duplicate, whichever process delivered it.
 */
export class ProcessedLedger {
  processed = 0;
  redelivered = 0;
  duplicated = 0;
  outOfOrder = 0;

  constructor(readonly prefix: string) {}

  add(data: string, redelivered: boolean): void {
    const n = Number(data.slice(this.prefix.length));
    if (n === this.processed + 1) this.processed = n;
    else if (n > this.processed) this.outOfOrder++;
    else if (redelivered) this.redelivered++;
    else this.duplicated++;
  }

  /** Counts against `sent` messages. */
  tally(sent: number) {
    return {
      sent,
      processed: this.processed,
      lost: sent - this.processed,
      duplicated: this.duplicated,
      outOfOrder: this.outOfOrder,
      redelivered: this.redelivered,
    };
  }
}

/** Median and 99th percentile (nearest rank) of a sample. */
export function percentiles(values: readonly number[]): { median: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { median: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
}

/** The client of the durable soaks: a resumable session over `inner` with room for the pacer's backlog. */
export function durableClient(
  inner: Transport<LinkData, LinkData>,
  options: { backoff: BackoffOptions; maxAttemptsPerFailure: number },
): { conn: HAConnection<LinkData, LinkData>; events: SessionEvent[] } {
  const transport = resumable(inner, {
    maxReplayMessages: 8_192,
    // The pacer keeps up to 20,000 sends unacknowledged: beyond the window they wait.
    maxWaitingMessages: 20_000,
  });
  const events: SessionEvent[] = [];
  transport.session$.subscribe((event) => events.push(event));
  const conn = attach(transport, {
    backoff: options.backoff,
    maxAttemptsPerFailure: options.maxAttemptsPerFailure,
    maxRecoveries: 1_000,
    minUptimeMs: 0,
    queue: { maxMessages: 100_000 },
  });
  return { conn, events };
}

/**
 * Sends c1, c2... as they fall due by the clock (`due()` is how many should have been sent by now),
 * at most `maxUnacknowledged` unacknowledged; counts the acknowledgements and rejections until stopped.
 */
export function pace(
  conn: HAConnection<LinkData, LinkData>,
  due: () => number,
  poke: () => void,
  maxUnacknowledged = 20_000,
) {
  let sent = 0;
  let acknowledged = 0;
  let rejected = 0;
  let sending = true;
  const timer = setInterval(() => {
    for (const target = due(); sending && sent < target && sent - acknowledged < maxUnacknowledged; ) {
      conn.send(`c${++sent}`).then(
        () => {
          acknowledged++;
          poke();
        },
        () => rejected++,
      );
    }
  }, 5);
  return {
    counts: () => ({ sent, acknowledged, rejected }),
    stop: () => {
      sending = false;
      clearInterval(timer);
    },
  };
}
