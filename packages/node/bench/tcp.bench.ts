// Framed HA TCP (`attach` over `tcpTransport`) against raw `node:net` with the same length-prefixed
// framing written by hand, one write per frame, and against raw `node:net` that also batches the
// writes of one tick into one writev as the Lifeline link does (so the engine's own cost can be
// told from the batching's gain). All talk to one echo server in a child process on loopback, so
// the client's CPU time is the client's alone. Each run streams N messages with at most WINDOW
// awaiting their echo and counts echoes until the last one. Runs alternate A B C C B A and repeat;
// the table reports medians. Run with `pnpm bench tcp`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectTcp } from '@lifeline/node/tcp';
import { filter, firstValueFrom } from 'rxjs';

const SIZES = [64, 4_096];
const MESSAGES: Record<number, number> = { 64: 100_000, 4096: 30_000 };
const WINDOW = 64;
const ROUNDS = 5;
const HEADER = 5;

interface Sample {
  wallMs: number;
  cpuUs: number;
}

interface Client {
  /** Sends one message; `onEcho` is called once per echoed message. */
  send(payload: Buffer): void;
  close(): Promise<void>;
}

type ClientFactory = (port: number, onEcho: (payload: Uint8Array) => void) => Promise<Client>;

const lifeline: ClientFactory = async (port, onEcho) => {
  const conn = connectTcp({ port });
  conn.messages$.subscribe(onEcho);
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  return {
    send: (payload) => {
      void conn.send(payload);
    },
    close: async () => {
      const link = conn.link as { closed?: Promise<void> } | undefined;
      conn.close();
      await link?.closed;
    },
  };
};

/**
 * What a careful user would write by hand: one buffer per frame, a decoder that joins split
 * frames and hands out each payload. `corked` also batches the writes of one tick into one writev,
 * as the Lifeline link does, so the engine's own cost can be told from the batching's gain.
 */
const rawClient =
  (corked: boolean): ClientFactory =>
  async (port, onEcho) => {
    const socket: Socket = createConnection({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    let held: Buffer[] = [];
    let heldBytes = 0;
    let needed = HEADER;
    socket.on('data', (data: Buffer) => {
      let chunk = data;
      if (heldBytes > 0) {
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes < needed) return;
        chunk = Buffer.concat(held, heldBytes);
        held = [];
        heldBytes = 0;
      }
      let offset = 0;
      while (chunk.length - offset >= HEADER) {
        const end = offset + HEADER + chunk.readUInt32BE(offset);
        if (end > chunk.length) break;
        onEcho(chunk.subarray(offset + HEADER, end));
        offset = end;
      }
      if (offset < chunk.length) {
        const rest = chunk.subarray(offset);
        held = [rest];
        heldBytes = rest.length;
        needed = rest.length >= HEADER ? HEADER + rest.readUInt32BE(0) : HEADER;
      }
    });
    let inTick = false;
    const uncork = () => {
      inTick = false;
      socket.uncork();
    };
    return {
      send: (payload) => {
        if (corked && !inTick) {
          inTick = true;
          socket.cork();
          process.nextTick(uncork);
        }
        const frame = Buffer.allocUnsafe(HEADER + payload.length);
        frame.writeUInt32BE(payload.length, 0);
        frame[4] = 0;
        payload.copy(frame, HEADER);
        socket.write(frame);
      },
      close: async () => {
        const closed = once(socket, 'close');
        socket.destroy();
        await closed;
      },
    };
  };

async function measure(factory: ClientFactory, port: number, size: number, count: number): Promise<Sample> {
  const payload = Buffer.alloc(size, 7);
  let echoed = 0;
  let sent = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  let client!: Client;
  const pump = () => {
    while (sent < count && sent - echoed < WINDOW) {
      sent++;
      client.send(payload);
    }
  };
  client = await factory(port, () => {
    echoed++;
    if (echoed === count) done();
    else pump();
  });
  global.gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  pump();
  const stall = setTimeout(() => {
    throw new Error(`benchmark stalled at ${echoed} of ${count} echoes`);
  }, 30_000);
  await finished;
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  clearTimeout(stall);
  await client.close();
  return { wallMs, cpuUs: used.user + used.system };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const script = fileURLToPath(new URL('../test/support/tcp-echo-server.mjs', import.meta.url));
  const server = spawn(process.execPath, [script, '0', 'framed'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  const { port } = JSON.parse(line) as { port: number };
  const rows: string[] = [];
  const deadline = performance.now() + 55_000;
  try {
    for (const size of SIZES) {
      const count = MESSAGES[size]!;
      // Warm-up: JIT every path before anything is counted.
      for (const factory of [rawClient(false), rawClient(true), lifeline])
        await measure(factory, port, size, count / 4);
      const variants = { raw: rawClient(false), corked: rawClient(true), lifeline } as const;
      type Name = keyof typeof variants;
      const samples: Record<Name, Sample[]> = { raw: [], corked: [], lifeline: [] };
      // A B C C B A: drift on a shared machine hits every variant alike.
      const order: Name[] = ['raw', 'corked', 'lifeline', 'lifeline', 'corked', 'raw'];
      for (let round = 0; round < ROUNDS && performance.now() < deadline; round++) {
        for (const name of order) samples[name].push(await measure(variants[name], port, size, count));
      }
      const rate = (name: Name) => median(samples[name].map((s) => count / (s.wallMs / 1_000)));
      const cpu = (name: Name) => median(samples[name].map((s) => s.cpuUs / count));
      const fmt = (n: number) => Math.round(n).toLocaleString('en');
      rows.push(
        `| ${size} B | ${count} x ${samples.raw.length} | ${fmt(rate('raw'))} | ${fmt(rate('corked'))} | ${fmt(rate('lifeline'))} | **${(rate('lifeline') / rate('raw')).toFixed(2)}x** | ${(rate('lifeline') / rate('corked')).toFixed(2)}x | ${cpu('raw').toFixed(2)} | ${cpu('corked').toFixed(2)} | ${cpu('lifeline').toFixed(2)} | ${(cpu('lifeline') / cpu('raw')).toFixed(2)}x | ${(cpu('lifeline') / cpu('corked')).toFixed(2)}x |`,
      );
    }
  } finally {
    server.kill('SIGKILL');
  }
  console.log(
    `Echo over loopback, window ${WINDOW} messages in flight, medians of A B C C B A x ${ROUNDS}; server in a child process.`,
  );
  console.log(
    'raw: one write per frame; raw corked: the writes of one tick in one writev, as the Lifeline link does.\n',
  );
  console.log(
    '| payload | messages x runs | raw msg/s | raw corked msg/s | Lifeline msg/s | Lifeline / raw | Lifeline / raw corked | raw CPU µs/msg | raw corked CPU µs/msg | Lifeline CPU µs/msg | CPU vs raw | CPU vs raw corked |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
}

await main();
