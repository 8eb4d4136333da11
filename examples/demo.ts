// The crash demo. A client streams both ways to a server process that is killed with SIGKILL
// every few seconds and restarted; a live status line shows the connection's state, and the
// summary counts every message sent, received, lost and duplicated, in both directions, with the
// recovery times.
//
//   pnpm demo                              resume protocol + embedded durable store (SQLite)
//   pnpm demo --replicas 3                 three replicas sharing Redis; the replica the client is on is killed
//   pnpm demo --mode plain                 plain reconnection, no resume protocol: honest losses
//   pnpm demo --web                        the same in a browser page, with buttons (demo-web.ts)
//   options: --duration 20 --kill-every 3 --rate 500 (client msg/s) --upstream 200 (server events/s)
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { attach, failoverTransport, type LinkData, type Transport } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { SequenceCounter } from '@lifeline/core/testing';
import { wsTransport } from '@lifeline/node/ws';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'durable' },
    replicas: { type: 'string', default: '1' },
    duration: { type: 'string' },
    'kill-every': { type: 'string', default: '3' },
    rate: { type: 'string', default: '500' },
    upstream: { type: 'string', default: '200' },
    web: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
  },
});
const USAGE =
  'usage: pnpm demo [--mode durable|plain] [--replicas N] [--web] [--duration S] [--kill-every S] [--rate N] [--upstream N] [--port P]';
/** A bad option value is a usage error (exit 2), never a demo run with NaN in it. */
function usage(problem: string): never {
  console.error(`${problem}\n${USAGE}`);
  process.exit(2);
}
if (values.mode !== 'durable' && values.mode !== 'plain') {
  usage(`--mode must be durable or plain, got ${JSON.stringify(values.mode)}`);
}
for (const [name, min] of [
  ['replicas', 1],
  ['duration', 1],
  ['kill-every', 1],
  ['rate', 1],
  ['upstream', 1],
  ['port', 0],
] as const) {
  const text = values[name];
  if (text === undefined) continue;
  const value = Number(text);
  if (
    !/^\d+(\.\d+)?$/.test(text) ||
    !(value >= min) ||
    (name === 'port' && value > 65_535) ||
    (name !== 'duration' && name !== 'kill-every' && !Number.isInteger(value))
  ) {
    usage(
      `--${name} must be a number >= ${min}${name === 'duration' || name === 'kill-every' ? '' : ' (an integer)'}, got ${JSON.stringify(text)}`,
    );
  }
}
if (values.web) {
  const { runWebDemo } = await import('./demo-web.js');
  // The terminal demo's defaults (500 msg/s, 200 events/s) make a busy page; the page's are lower.
  const given = (name: string) => process.argv.includes(`--${name}`);
  await runWebDemo({
    port: Number(values.port),
    killEverySeconds: Number(values['kill-every']),
    rate: given('rate') ? Number(values.rate) : undefined,
    upstream: given('upstream') ? Number(values.upstream) : undefined,
    durationSeconds: values.duration === undefined ? undefined : Number(values.duration),
  });
  process.exit(0);
}
const plain = values.mode === 'plain';
const replicaCount = plain ? 1 : Math.max(1, Number(values.replicas));
const durationMs = Number(values.duration ?? 20) * 1000;
const killEveryMs = Number(values['kill-every']) * 1000;
const ratePerSecond = Number(values.rate);
const upstreamRate = Number(values.upstream);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const children = new Set<ChildProcess>();

/** A free loopback port, for processes that must come back on the same one. */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

async function startRedis(): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(redis);
  const lines = createInterface({ input: redis.stdout! });
  for await (const line of lines) if (line.includes('Ready to accept connections')) break;
  return { url: `redis://127.0.0.1:${port}`, stop: () => redis.kill('SIGKILL') };
}

/**
 * The replica that holds the client's session: the last to report the session attached
 * (demo-server.ts --report-links), and not detached or killed since. The client's side cannot
 * say: its link is the resumed session, which names no URL. Reports of two processes arrive in
 * any order, so a replica's late "detached" does not clear its successor's "attached".
 */
let attachedTo: ServerProcess | undefined;

/** One server process; `kill()` is SIGKILL, `start()` brings it back on the same port. */
class ServerProcess {
  private child: ChildProcess | undefined;
  port = 0;
  /** Listening: started, and not killed since. */
  up = false;
  constructor(private readonly args: () => string[]) {}

  async start(): Promise<void> {
    const script = plain ? here('./stream-server.ts') : here('./demo-server.ts');
    const child = spawn(
      process.execPath,
      [
        '--conditions=@lifeline/source',
        '--import',
        'tsx',
        script,
        String(this.port),
        ...this.args(),
        ...(plain ? [] : ['--report-links']),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.add(child);
    child.once('exit', () => children.delete(child));
    this.child = child;
    // Read to the end: the first line is the port, then the link reports (a pipe nobody reads
    // would fill and block the server).
    const lines = createInterface({ input: child.stdout! });
    const listening = new Promise<number>((resolve, reject) => {
      lines.on('line', (line) => {
        const event = JSON.parse(line) as { port?: number; attached?: string; detached?: string };
        if (event.port !== undefined) resolve(event.port);
        else if (event.attached !== undefined && this.child === child) attachedTo = this;
        else if (event.detached !== undefined && attachedTo === this && this.child === child)
          attachedTo = undefined;
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`server exited (${code ?? signal}) before listening`)),
      );
    });
    this.port = await listening;
    this.up = this.child === child;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.up = false;
    if (attachedTo === this) attachedTo = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }
}

const workdir = mkdtempSync(join(tmpdir(), 'lifeline-demo-'));
const redis = !plain && replicaCount > 1 ? await startRedis() : undefined;
const storeSpec = plain ? 'plain' : redis ? `redis:${redis.url}` : `sqlite:${join(workdir, 'sessions.db')}`;
const upstreamStart = Date.now();
const servers = Array.from(
  { length: replicaCount },
  () => new ServerProcess(() => (plain ? ['5'] : [storeSpec, String(upstreamRate), String(upstreamStart)])),
);
await Promise.all(servers.map((server) => server.start()));

const urls = servers.map((server) => server.url);
const base: Transport<LinkData, LinkData> =
  urls.length > 1 ? failoverTransport(urls, (url) => wsTransport(url)) : wsTransport(urls[0]!);
const session = plain ? undefined : resumable(base as Transport<LinkData, Uint8Array>);
let sessionsLost = 0;
let lostReported = 0;
session?.session$.subscribe((event) => {
  if (event.type === 'lost') {
    sessionsLost++;
    lostReported += event.unacknowledged.length;
  }
});
const conn = attach(session ?? base, {
  backoff: { initialDelayMs: 50, maxDelayMs: 1_000 },
  maxAttemptsPerFailure: 100,
  minUptimeMs: 500,
  heartbeat: { intervalMs: 1_000, timeoutMs: 3_000 },
});

const echoes = new SequenceCounter();
const ticks = new SequenceCounter();
let highestTick = -1;
let sent = 0;
let kills = 0;
// A recovery is timed from the kill to the first message on a link opened after it: messages
// already on their way when the server died say nothing about how fast the client got back.
let killedAt: number | undefined;
let reopenedSinceKill = false;
const recoveryTimesMs: number[] = [];
conn.events$.subscribe((event) => {
  if (event.type === 'link-open' && killedAt !== undefined) reopenedSinceKill = true;
});
conn.messages$.subscribe((data) => {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array);
  if (killedAt !== undefined && reopenedSinceKill) {
    recoveryTimesMs.push(performance.now() - killedAt);
    killedAt = undefined;
  }
  if (text.startsWith('echo:')) echoes.record(Number(text.slice(5)));
  else if (text.startsWith('tick:')) {
    const tick = Number(text.slice(5));
    ticks.record(tick);
    highestTick = Math.max(highestTick, tick);
  }
});

const startedAt = performance.now();
const interactive = process.stdout.isTTY;
let lastPrinted = 0;
function status(): string {
  const state = conn.state$.value;
  const detail =
    state.status === 'recovering'
      ? `recovering (attempt ${state.attempt}/${state.maxAttempts})`
      : state.status === 'open'
        ? `open (recoveries ${state.recoveries})`
        : state.status;
  const elapsed = ((performance.now() - startedAt) / 1000).toFixed(1);
  const lastRecovery = recoveryTimesMs.at(-1);
  return `${elapsed.padStart(5)}s  ${detail.padEnd(28)} kills ${kills}  sent ${sent}  echoed ${echoes.uniqueCount}  upstream ${ticks.uniqueCount}  last recovery ${lastRecovery === undefined ? '-' : `${lastRecovery.toFixed(0)} ms`}`;
}
const statusTimer = setInterval(() => {
  if (interactive) process.stdout.write(`\r${status()}\x1b[K`);
  else if (performance.now() - lastPrinted >= 1_000) {
    lastPrinted = performance.now();
    console.log(status());
  }
}, 100);

// Paced sender: `ratePerSecond` messages a second, whatever the connection's state (sends wait
// in the engine's bounded queue while recovering).
// A send the engine refuses is counted by its error code, never dropped silently.
const refused = new Map<string, number>();
const countRefusal = (error: unknown) => {
  const code = (error as { code?: string }).code ?? String(error);
  refused.set(code, (refused.get(code) ?? 0) + 1);
};
const sendTimer = setInterval(() => {
  for (let i = 0; i < ratePerSecond / 100; i++) conn.send(String(sent++)).catch(countRefusal);
}, 10);

// Every `killEveryMs`, kill the server the client is on (with replicas, the one that holds its
// session), and restart it. A kill waits until the client is open and has recovered from the
// previous kill (a message on a new link) and, with replicas, until a replica reports the session
// attached and another one is up to fail over to: each kill is then one recovery, timed on its
// own. A restart runs beside the next kills: with replicas the client does not wait for it.
let stopped = false;
const restarts: Promise<void>[] = [];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const killLoop = (async () => {
  for (let due = performance.now() + killEveryMs; ; due += killEveryMs) {
    const ready = () =>
      performance.now() >= due &&
      killedAt === undefined &&
      conn.state$.value.status === 'open' &&
      (replicaCount === 1 ||
        (attachedTo !== undefined && servers.some((server) => server !== attachedTo && server.up)));
    // Bounded by the run: `stopped` is set when it ends.
    while (!stopped && !ready()) await pause(10);
    if (stopped) return;
    const victim = replicaCount === 1 ? servers[0]! : attachedTo!;
    kills++;
    killedAt = performance.now();
    reopenedSinceKill = false;
    await victim.kill();
    restarts.push(
      victim.start().catch((error) => {
        // A restart the end of the run cut short (its process killed below) is no failure.
        if (!stopped) console.error(`restart failed: ${String(error)}`);
      }),
    );
  }
})();

await pause(durationMs);
stopped = true;
clearInterval(sendTimer);
await killLoop;
// Drain (bounded): until the last echo and every upstream event due by now have arrived, so only
// real losses remain in the counts.
const lastUpstream = Math.floor(((Date.now() - upstreamStart) * upstreamRate) / 1_000);
const drainDeadline = performance.now() + 15_000;
while (
  performance.now() < drainDeadline &&
  conn.state$.value.status !== 'closed' &&
  (!echoes.has(sent - 1) || (!plain && highestTick < lastUpstream))
) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
clearInterval(statusTimer);
if (interactive) process.stdout.write(`\r${status()}\x1b[K\n`);

const out = echoes.counts(sent);
// Upstream events are counted up to the highest one received (plain mode restarts the count on
// each connection, so there only duplicates and order are meaningful).
const upstreamCounts = ticks.counts(highestTick + 1);
const sorted = [...recoveryTimesMs].sort((a, b) => a - b);
const percentile = (p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
const modeName = plain
  ? 'plain mode: reconnect and re-send, no resume protocol'
  : redis
    ? `resume protocol, ${replicaCount} replicas sharing Redis`
    : 'resume protocol, embedded durable store (SQLite)';
console.log(`\nSummary (${modeName})`);
console.log(`  server kills (SIGKILL):     ${kills}`);
console.log(`  recoveries:                 ${recoveryTimesMs.length}`);
console.log(
  `  kill to first message on a new link, median / p99: ${percentile(50).toFixed(0)} ms / ${percentile(99).toFixed(0)} ms`,
);
console.log(`  client -> server sent:      ${out.sent}`);
console.log(`  echoed back (unique):       ${out.unique}`);
console.log(`  lost:                       ${out.lost}`);
console.log(
  `  refused by the engine:      ${[...refused.values()].reduce((a, b) => a + b, 0)}${refused.size ? ` (${[...refused].map(([code, n]) => `${code} ${n}`).join(', ')})` : ''}`,
);
console.log(`  duplicated:                 ${out.duplicated}`);
console.log(`  out of order:               ${out.reordered}`);
if (!plain) {
  console.log(`  upstream events received:   ${upstreamCounts.unique} of ${upstreamCounts.sent}`);
  console.log(`  upstream lost:              ${upstreamCounts.lost}`);
  console.log(`  upstream duplicated:        ${upstreamCounts.duplicated}`);
  console.log(`  upstream out of order:      ${upstreamCounts.reordered}`);
  console.log(
    `  sessions lost:              ${sessionsLost} (${lostReported} unacknowledged messages reported)`,
  );
} else {
  console.log(`  server ticks received:      ${ticks.counts(0).received}`);
  if (out.lost > 0) {
    console.log(
      '  Lost messages were read by a server process that died before answering: plain reconnection',
    );
    console.log('  cannot know. Run without --mode plain for the resume protocol with a durable store.');
  }
}
conn.close();
await Promise.all(servers.map((server) => server.kill()));
// A restart still under way ends with its process: it rejects (reported), it does not linger.
await Promise.all(restarts);
redis?.stop();
for (const child of children) child.kill('SIGKILL');
rmSync(workdir, { recursive: true, force: true });
