import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Starts a benchmark server script in a child process; resolves with its port and a stop function. */
export async function startChildServer(
  script: string,
  args: string[] = [],
): Promise<{ port: number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return {
    port: (JSON.parse(line) as { port: number }).port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** One measured run: messages (or bytes) per second and client CPU microseconds per message. */
export interface Sample {
  perSecond: number;
  cpuMicrosPerMessage: number;
}

/** Runs `fn` (which processes `count` messages) and measures wall time and this process's CPU. */
export async function measure(count: number, fn: () => Promise<void>): Promise<Sample> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await fn();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { perSecond: count / seconds, cpuMicrosPerMessage: (used.user + used.system) / count };
}

/**
 * Alternates A and B as A B B A, `rounds` times, so drift on a shared, noisy machine hits both
 * equally; returns the medians.
 */
export async function alternate(
  rounds: number,
  a: () => Promise<Sample>,
  b: () => Promise<Sample>,
): Promise<{ a: Sample; b: Sample }> {
  const as: Sample[] = [];
  const bs: Sample[] = [];
  for (let i = 0; i < rounds; i++) {
    as.push(await a());
    bs.push(await b());
    bs.push(await b());
    as.push(await a());
  }
  return { a: medianSample(as), b: medianSample(bs) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianSample(samples: Sample[]): Sample {
  return {
    perSecond: median(samples.map((s) => s.perSecond)),
    cpuMicrosPerMessage: median(samples.map((s) => s.cpuMicrosPerMessage)),
  };
}

/** Prints a markdown table row. */
export function row(cells: (string | number)[]): void {
  console.log(`| ${cells.join(' | ')} |`);
}

export function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
