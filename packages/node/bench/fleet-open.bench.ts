// Opening and streaming resumable sessions at fleet scale, through the fleet test's own processes
// (test/support/fleet-server-process.ts, fleet-client-process.ts): one resume server replica
// with the Redis store (a private redis-server), one client process opening N sessions at
// LIFELINE_OPEN_RAMP per second (default 250; `attach(resumable(wsTransport(url)))` each), then every session streaming both ways
// (a message every 2 s each way) until each moved 2 more messages each way.
//
// Reported per phase: wall time, sessions/s, and the CPU seconds of each process (client, server,
// redis-server, read from /proc: robust to a loaded machine where wall time is not), per session.
//
//   pnpm bench fleet-open                                   (N = 1,000, after a build)
//   node --import tsx packages/node/bench/fleet-open.bench.ts
//   LIFELINE_OPEN_SESSIONS=500 LIFELINE_OPEN_PROF=/tmp/prof node --import tsx packages/node/bench/fleet-open.bench.ts
//
// LIFELINE_OPEN_PROF: a directory, into which both node processes write a --cpu-prof profile.
// The processes import the built packages (run `pnpm build` first; `pnpm bench fleet-open` does),
// or with LIFELINE_OPEN_SOURCE=1 the TypeScript sources through tsx, as the fleet test does.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { RedisServer } from '../test/support/redis-server.js';

const SESSIONS = Number(process.env.LIFELINE_OPEN_SESSIONS ?? 1_000);
const INTERVAL = 2_000;
/** Sessions the client opens per second: a burst beyond what the machine handles measures timeouts, not cost. */
const RAMP = Number(process.env.LIFELINE_OPEN_RAMP ?? 250);
const PROF = process.env.LIFELINE_OPEN_PROF;
/** The processes import the built packages (dist, as `pnpm bench` builds them first), unless LIFELINE_OPEN_SOURCE=1. */
const DIST = process.env.LIFELINE_OPEN_SOURCE !== '1';
const root = fileURLToPath(new URL('../../..', import.meta.url));
const serverScript = fileURLToPath(new URL('../test/support/fleet-server-process.ts', import.meta.url));
const clientScript = fileURLToPath(new URL('../test/support/fleet-client-process.ts', import.meta.url));

/** CPU seconds (user + system) a process used so far, from /proc/PID/stat (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const dir = await mkdtemp(join(tmpdir(), 'lifeline-open-'));
const redis = await RedisServer.start();
const spawnTs = (script: string, args: string[], name: string) =>
  spawn(
    process.execPath,
    [
      ...(PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
      ...(DIST ? [] : ['--conditions=@lifeline/source']),
      '--import',
      'tsx',
      script,
      ...args,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
const start = Date.now();
const server = spawnTs(
  serverScript,
  [redis.url, String(INTERVAL), String(start), join(dir, 'log')],
  'server',
);
const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
server.stdout!.resume();
const { port } = JSON.parse(line) as { port: number };
const client = spawnTs(
  clientScript,
  [`ws://127.0.0.1:${port}`, String(SESSIONS), String(INTERVAL), String(start), String(RAMP)],
  'client',
);
const nextMessage = (type: string, then: (message: unknown) => void = () => {}) =>
  new Promise<void>((resolve) => {
    const on = (message: { type: string }) => {
      if (message.type !== type) return;
      client.off('message', on);
      then(message);
      resolve();
    };
    client.on('message', on);
  });
const pids = { client: client.pid!, server: server.pid!, redis: redis.pid! };
const sample = () => ({
  at: performance.now(),
  cpu: Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)])),
});
// The client process's own start (tsx, module loading) is counted in its open phase.
const s0 = sample();
// While opening, every 10 s: the client's sessions by state and their last link errors (stderr).
const watch = setInterval(() => {
  client.send({ type: 'status' });
  void nextMessage('status', (message) => process.stderr.write(`${JSON.stringify(message)}\n`));
}, 10_000);
await nextMessage('opened');
clearInterval(watch);
const s1 = sample();
client.send({ type: 'progress', each: 2, timeoutMs: 300_000 });
await nextMessage('progressed');
const s2 = sample();

const row = (phase: string, a: ReturnType<typeof sample>, b: ReturnType<typeof sample>, what: string) => {
  const seconds = (b.at - a.at) / 1_000;
  const cpu = Object.keys(pids)
    .map(
      (name) =>
        `${name} ${(b.cpu[name]! - a.cpu[name]!).toFixed(1)} s (${(((b.cpu[name]! - a.cpu[name]!) / SESSIONS) * 1_000).toFixed(2)} ms/session)`,
    )
    .join(', ');
  console.log(`| ${phase} | ${seconds.toFixed(1)} s | ${what} | ${cpu} |`);
};
console.log(
  `${SESSIONS} sessions, one client process, one resume server (Redis store), library from ${DIST ? 'dist' : 'sources (tsx)'}\n`,
);
console.log('| phase | wall | rate | CPU per process |');
console.log('| --- | --- | --- | --- |');
row('open', s0, s1, `${(SESSIONS / ((s1.at - s0.at) / 1_000)).toFixed(0)} sessions/s`);
row('stream 2 each way', s1, s2, `${((SESSIONS * 4) / ((s2.at - s1.at) / 1_000)).toFixed(0)} messages/s`);

// The server's refusals and drops: handshakes shed for load (1013, admission control) and
// sessions dropped because a store write failed (1011), which is what admission control prevents.
const serverStats = new Promise<{ stats: { shed?: number; handshakeTimeouts: number }; storeDrops: number }>(
  (resolve) => server.once('message', resolve),
);
server.send({ type: 'stats' });
const { stats, storeDrops } = await serverStats;
console.log(
  `\nserver: ${stats.shed ?? 0} handshakes shed (1013), ${storeDrops} sessions dropped on store errors (1011), ${stats.handshakeTimeouts} handshake timeouts`,
);

client.send({ type: 'close' });
await once(client, 'exit');
server.disconnect();
await once(server, 'exit');
await redis.stop();
await rm(dir, { recursive: true, force: true });
