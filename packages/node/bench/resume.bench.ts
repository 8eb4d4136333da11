// Resume protocol benchmark: `pnpm bench resume`.
//
// 1. Throughput at 64 B: attach(resumable(wsTransport)) against createResumeServer, versus a raw
//    `ws` client against a raw `ws` sink, in the same run, A B B A, repeated. The servers run in a
//    child process (this file with --server), so the client's CPU time per message is its own.
// 2. Recovery: with 1,000 messages pending (written, never acknowledged), the time from a link
//    reset to the first replayed message delivered to the server application, over 50 resets.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach, type HAConnection, type LinkData } from '@lifeline/core';
import { resumable, webSocketTransport } from '@lifeline/core/internal';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { HAWebSocket, wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import WebSocket, { WebSocketServer } from 'ws';

// Inside the default outgoing queue (16 MiB, 512 B accounted per message): none is acknowledged
// before the loop ends.
const MESSAGES = 20_000;
const ROUNDS = 3;
const SIZE = 64;
const RESETS = 50;
const PENDING = 1_000;
const DEADLINE = Date.now() + 55_000;

/** `ws` with its TCP socket corked until the end of the tick in which it first writes. */
class CorkingWebSocket extends WebSocket {
  private corked = false;
  override send(data: any, options?: any, callback?: any): void {
    const socket = (this as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (socket && !this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    super.send(data, options, callback);
  }
}

if (process.argv.includes('--server')) await serve();
else await main();

/** Child process: a raw ws sink and a resume server; each answers "done" after N messages. */
async function serve(): Promise<void> {
  const raw = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  raw.on('connection', (socket) => {
    let expected = Number.POSITIVE_INFINITY;
    let count = 0;
    socket.on('message', (data, isBinary) => {
      if (!isBinary) {
        if (!String(data).startsWith('start:')) return;
        expected = Number(String(data).slice('start:'.length));
        count = 0;
        return;
      }
      if (++count === expected) socket.send('done');
    });
  });
  await once(raw, 'listening');
  const server = createResumeServer();
  server.sessions$.subscribe((session) => {
    let expected = Number.POSITIVE_INFINITY;
    let count = 0;
    session.messages$.subscribe(({ data }) => {
      if (typeof data === 'string') {
        if (!data.startsWith('start:')) return;
        expected = Number(data.slice('start:'.length));
        count = 0;
        return;
      }
      if (++count === expected) session.send('done').catch(() => {});
    });
  });
  const { port } = await server.listen();
  process.stdout.write(
    `${JSON.stringify({ raw: (raw.address() as { port: number }).port, resume: port })}\n`,
  );
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

interface Run {
  readonly perSecond: number;
  readonly cpuMicrosPerMessage: number;
}

async function main(): Promise<void> {
  const child = spawn(
    process.execPath,
    // From the builds, as users get them (the sources through tsx inflate every figure).
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--server'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    const ports = JSON.parse(line) as { raw: number; resume: number };
    const payload = new Uint8Array(SIZE).fill(42);

    const rawSocket = new WebSocket(`ws://127.0.0.1:${ports.raw}`);
    await once(rawSocket, 'open');
    const resumeUrl = `ws://127.0.0.1:${ports.resume}`;
    const conn = attach(resumable(wsTransport(resumeUrl)));
    // The same, on the core WebSocket transport without `ws`'s per-message write confirmation
    // (a callback and a promise per message), which the resume layer does not need: acks confirm.
    const unconfirmed = attach(
      resumable(
        webSocketTransport({
          url: resumeUrl,
          WebSocket: WebSocket as unknown as Parameters<typeof webSocketTransport>[0]['WebSocket'],
          binaryType: 'nodebuffer',
        }),
      ),
    );
    // A prototype, not shipped: the same transport on a `ws` socket that corks its TCP socket for
    // the rest of the tick, so a burst of frames leaves in one write instead of one write each.
    const corked = attach(
      resumable(
        webSocketTransport({
          url: resumeUrl,
          WebSocket: CorkingWebSocket as unknown as Parameters<typeof webSocketTransport>[0]['WebSocket'],
          binaryType: 'nodebuffer',
        }),
      ),
    );
    for (const connection of [conn, unconfirmed, corked]) {
      await firstValueFrom(connection.state$.pipe(filter((state) => state.status === 'open')));
    }

    const runRaw = async (): Promise<Run> => {
      const done = once(rawSocket, 'message');
      return measure(async () => {
        rawSocket.send(`start:${MESSAGES}`);
        for (let i = 0; i < MESSAGES; i++) rawSocket.send(payload);
        await done;
      });
    };
    const runLifeline = (connection: HAConnection<LinkData, LinkData>) => async (): Promise<Run> => {
      const done = firstValueFrom(connection.messages$.pipe(filter((message) => message === 'done')));
      const run = await measure(async () => {
        void connection.send(`start:${MESSAGES}`);
        for (let i = 0; i < MESSAGES; i++) void connection.send(payload);
        await done;
      });
      // Unmeasured: every send acknowledged, so none is pending when the connection closes.
      await connection.send('sync');
      return run;
    };
    const paths = [
      { name: 'raw ws', run: runRaw, runs: [] as Run[] },
      { name: 'attach(resumable(wsTransport))', run: runLifeline(conn), runs: [] as Run[] },
      {
        name: 'attach(resumable(webSocketTransport, unconfirmed writes))',
        run: runLifeline(unconfirmed),
        runs: [] as Run[],
      },
      { name: 'same, socket corked per tick (prototype)', run: runLifeline(corked), runs: [] as Run[] },
    ];

    // Warm-up, unmeasured: JIT and socket buffers.
    for (const path of paths) await path.run();
    for (let round = 0; round < ROUNDS && Date.now() < DEADLINE - 30_000; round++) {
      // A B C D D C B A: drift in machine load falls on every path alike.
      for (const path of [...paths, ...[...paths].reverse()]) path.runs.push(await path.run());
    }
    conn.close();
    unconfirmed.close();
    corked.close();
    rawSocket.close();

    const rawRate = median(paths[0]!.runs.map((run) => run.perSecond));
    console.log(
      `### Throughput, ${SIZE} B messages, ${MESSAGES} per run, ${paths[0]!.runs.length} runs each (A B C D D C B A), medians\n`,
    );
    console.log('| path | messages/s | client CPU µs/message | ratio |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const path of paths) {
      const rate = median(path.runs.map((run) => run.perSecond));
      const cpu = median(path.runs.map((run) => run.cpuMicrosPerMessage));
      console.log(`| ${path.name} | ${fmt(rate)} | ${cpu.toFixed(2)} | ${(rate / rawRate).toFixed(2)}x |`);
    }
    console.log('');
    for (const path of paths) {
      console.log(
        `- ${path.name}, every run: ${path.runs.map((run) => fmt(run.perSecond)).join(', ')} messages/s`,
      );
    }
  } finally {
    child.stdin!.end();
    await once(child, 'exit');
  }
  await recovery();
  await manyConnections();
}

/**
 * Client CPU per 64 B send with CONNECTIONS connections open at once, each sending one message
 * per tick: raw `ws` (one socket write per send) and HAWebSocket with `resume` (DATA frames, and
 * the ACKs of the server's messages). Servers in a child process (peer-server.mjs, from the builds).
 */
async function manyConnections(): Promise<void> {
  const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 5_000);
  const PER_CONNECTION = 10;
  const child = spawn(process.execPath, [fileURLToPath(new URL('./peer-server.mjs', import.meta.url))], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const ports = JSON.parse(line) as { raw: number; resume: number };
  const payload = Buffer.alloc(SIZE, 7);
  type Many = { send(data: Buffer | string): void; done: () => Promise<void>; close(): void };
  const openRaw = async (): Promise<Many> => {
    const socket = new WebSocket(`ws://127.0.0.1:${ports.raw}`, { perMessageDeflate: false });
    await once(socket, 'open');
    let wake: (() => void) | undefined;
    socket.on('message', (_data, isBinary) => {
      if (!isBinary) wake?.();
    });
    return {
      send: (data) => socket.send(data),
      done: () => new Promise<void>((resolve) => (wake = resolve)),
      close: () => socket.close(),
    };
  };
  const openResume = async (): Promise<Many> => {
    const socket = new HAWebSocket(`ws://127.0.0.1:${ports.resume}`, { resume: true });
    await once(socket as unknown as EventTarget, 'open');
    let wake: (() => void) | undefined;
    socket.addEventListener('message', (event) => {
      if (typeof event.data === 'string') wake?.();
    });
    return {
      send: (data) => socket.send(data),
      done: () => new Promise<void>((resolve) => (wake = resolve)),
      close: () => socket.close(),
    };
  };
  const openAll = async (open: () => Promise<Many>) => {
    const all: Many[] = [];
    for (let i = 0; i < CONNECTIONS; i += 250) {
      all.push(...(await Promise.all(Array.from({ length: Math.min(250, CONNECTIONS - i) }, open))));
    }
    return all;
  };
  const run = async (clients: Many[]): Promise<number> => {
    const done = Promise.all(clients.map((client) => client.done()));
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    for (const client of clients) client.send(`count:${PER_CONNECTION}`);
    for (let i = 0; i < PER_CONNECTION; i++) {
      for (const client of clients) client.send(payload);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / (clients.length * PER_CONNECTION);
  };
  try {
    const raw = await openAll(openRaw);
    const resumed = await openAll(openResume);
    await run(raw);
    await run(resumed);
    const rawRuns: number[] = [];
    const resumeRuns: number[] = [];
    for (let round = 0; round < ROUNDS && Date.now() < DEADLINE + 120_000; round++) {
      rawRuns.push(await run(raw));
      resumeRuns.push(await run(resumed));
      resumeRuns.push(await run(resumed));
      rawRuns.push(await run(raw));
    }
    for (const client of [...raw, ...resumed]) client.close();
    const span = (runs: number[]) =>
      `${median(runs).toFixed(2)} (${Math.min(...runs).toFixed(2)}–${Math.max(...runs).toFixed(2)})`;
    console.log(
      `\n### Client CPU per ${SIZE} B send, ${fmt(CONNECTIONS)} connections each, ${PER_CONNECTION} sends per connection per run (one per tick), ${rawRuns.length} runs each (A B B A), median (min–max)\n`,
    );
    console.log('| client | client CPU µs/send | vs raw ws |');
    console.log('| --- | ---: | ---: |');
    console.log(`| raw ws | ${span(rawRuns)} | 1.00x |`);
    console.log(
      `| HAWebSocket, resume | ${span(resumeRuns)} | ${(median(resumeRuns) / median(rawRuns)).toFixed(2)}x |`,
    );
  } finally {
    child.stdin!.end();
    await once(child, 'exit');
  }
}

async function measure(body: () => Promise<void>): Promise<Run> {
  (globalThis as { gc?: () => void }).gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await body();
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return {
    perSecond: (MESSAGES * 1_000) / elapsed,
    cpuMicrosPerMessage: (used.user + used.system) / MESSAGES,
  };
}

/** Reset-to-first-replay latency with PENDING messages unacknowledged, through a fault proxy. */
async function recovery(): Promise<void> {
  const server = createResumeServer();
  let delivered = 0;
  let replayMark = Number.POSITIVE_INFINITY;
  let firstReplay: (() => void) | undefined;
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ seq }) => {
      delivered = seq;
      if (seq > replayMark && firstReplay) {
        firstReplay();
        firstReplay = undefined;
      }
    });
  });
  const { port } = await server.listen();
  const proxy = await FaultProxy.start({ target: { port } });
  const conn = attach(resumable(wsTransport(`ws://127.0.0.1:${proxy.port}`)), {
    backoff: { initialDelayMs: 0 },
    minUptimeMs: 0,
    maxAttemptsPerFailure: 100,
  });
  const samples: number[] = [];
  try {
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    const payload = new Uint8Array(SIZE).fill(7);
    for (let i = 0; i < RESETS && Date.now() < DEADLINE; i++) {
      await conn.send(payload); // the link is up and the session current
      proxy.blackhole();
      const discarded = proxy.bytesDiscarded;
      const sends = Array.from({ length: PENDING }, () => conn.send(payload));
      // Written and swallowed by the black hole: pending, unacknowledged, to be replayed.
      while (proxy.bytesDiscarded - discarded < PENDING * SIZE) await once(proxy, 'discard');
      proxy.pass();
      const replayed = new Promise<void>((resolve) => {
        firstReplay = resolve;
      });
      // pass() and resetAll() run in one tick: nothing is forwarded between them.
      replayMark = delivered;
      const start = performance.now();
      proxy.resetAll();
      await replayed;
      samples.push(performance.now() - start);
      await Promise.all(sends);
    }
  } finally {
    conn.close();
    await proxy.close();
    await server.close();
  }
  samples.sort((a, b) => a - b);
  console.log(
    `\n### Recovery: link reset to first replayed message delivered, ${PENDING} pending, ${samples.length} resets\n`,
  );
  console.log('| median | p99 | min | max |');
  console.log('| ---: | ---: | ---: | ---: |');
  console.log(
    `| ${percentile(samples, 0.5).toFixed(2)} ms | ${percentile(samples, 0.99).toFixed(2)} ms | ${samples[0]!.toFixed(2)} ms | ${samples[samples.length - 1]!.toFixed(2)} ms |`,
  );
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
