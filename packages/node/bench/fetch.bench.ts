// Download throughput of a 64 MiB body over loopback: haFetch (bytes mode, resumable body) against
// plain undici fetch, in the same run, alternated A B B A and repeated. The server runs in a child
// process so that process.cpuUsage() here measures the client alone.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createHAFetch } from '@lifeline/node/fetch';
import { Agent, fetch } from 'undici';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const ROUNDS = 20;
const TIME_LIMIT_MS = 45_000;

if (process.argv[2] === 'serve') {
  // The child: one 64 MiB body with a strong ETag, served whole.
  const body = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4) body.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  const server = createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(SIZE),
      etag: '"bench-1"',
      'accept-ranges': 'bytes',
    });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

interface Sample {
  readonly ms: number;
  readonly cpuMs: number;
}

async function main(): Promise<void> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['serve'], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  const url = `http://127.0.0.1:${message.port}/big.bin`;
  const dispatcher = new Agent({ connections: 1 });
  const haFetch = createHAFetch();

  const variants = {
    'undici fetch': (): Promise<Response> => fetch(url, { dispatcher }) as unknown as Promise<Response>,
    haFetch: (): Promise<Response> => haFetch(url, { dispatcher } as RequestInit),
  } as const;
  type Name = keyof typeof variants;
  const samples: Record<Name, Sample[]> = { 'undici fetch': [], haFetch: [] };

  async function once_(name: Name): Promise<Sample> {
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const response = await variants[name]();
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let bytes = 0;
    for (let i = 0; i < 10_000_000; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
    }
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    if (bytes !== SIZE) throw new Error(`${name} delivered ${bytes} bytes, not ${SIZE}`);
    return { ms, cpuMs: (used.user + used.system) / 1000 };
  }

  // Warm-up: connections, JIT.
  await once_('undici fetch');
  await once_('haFetch');

  const begin = performance.now();
  let rounds = 0;
  // Per round, haFetch's time over fetch's: pairs taken side by side cancel the drift of a
  // machine shared with other work better than medians over the whole run do.
  const pairedSpeed: number[] = [];
  const pairedCpu: number[] = [];
  for (; rounds < ROUNDS && performance.now() - begin < TIME_LIMIT_MS; rounds++) {
    const round: Record<Name, Sample[]> = { 'undici fetch': [], haFetch: [] };
    for (const name of ['undici fetch', 'haFetch', 'haFetch', 'undici fetch'] as const) {
      const sample = await once_(name);
      samples[name].push(sample);
      round[name].push(sample);
    }
    const sum = (list: Sample[], key: keyof Sample) => list.reduce((total, sample) => total + sample[key], 0);
    pairedSpeed.push(sum(round['undici fetch'], 'ms') / sum(round.haFetch, 'ms'));
    pairedCpu.push(sum(round.haFetch, 'cpuMs') / sum(round['undici fetch'], 'cpuMs'));
  }

  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  };
  const mbps = (sample: Sample) => SIZE / 1e6 / (sample.ms / 1000);
  const rows = (Object.keys(samples) as Name[]).map((name) => {
    const list = samples[name];
    return {
      name,
      runs: list.length,
      median: median(list.map(mbps)),
      min: Math.min(...list.map(mbps)),
      max: Math.max(...list.map(mbps)),
      cpuPerMiB: median(list.map((sample) => sample.cpuMs / (SIZE / MiB))),
    };
  });
  const base = rows.find((row) => row.name === 'undici fetch') ?? rows[0];
  console.log(`64 MiB downloads over loopback, ${rounds} rounds of A B B A (A: undici fetch, B: haFetch)\n`);
  console.log(
    '| client | runs | MB/s (median) | MB/s (min–max) | client CPU ms/MiB (median) | throughput vs fetch (median) | throughput vs fetch (paired rounds) | CPU vs fetch (paired rounds) |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    const isBase = row === base;
    console.log(
      `| ${row.name} | ${row.runs} | ${row.median.toFixed(0)} | ${row.min.toFixed(0)}–${row.max.toFixed(0)} | ${row.cpuPerMiB.toFixed(3)} | ${(row.median / (base?.median ?? row.median)).toFixed(3)}x | ${isBase ? '1.000x' : `${median(pairedSpeed).toFixed(3)}x`} | ${isBase ? '1.000x' : `${median(pairedCpu).toFixed(3)}x`} |`,
    );
  }

  await dispatcher.close();
  child.disconnect();
  await once(child, 'exit');
}
