// What the recovery examples share: a server process that can be killed with SIGKILL and brought
// back on the same port, and one bounded wait-until. Not part of Lifeline's API.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

// A server process must not outlive the example, even one that fails and exits with an error.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A server run as its own process (the example's file in its `serve` mode), so it can be killed
 * with SIGKILL. It prints `{"port": P}` once listening; `start()` after `kill()` brings it back on
 * the same port.
 */
export class ServerProcess {
  private child: ChildProcess | undefined;
  port = 0;
  starts = 0;
  kills = 0;

  /**
   * @param script the file to run with tsx
   * @param args arguments after the port, read at each start
   * @param mode arguments before the port @default ['serve']
   */
  constructor(
    private readonly script: string,
    private readonly args: () => string[] = () => [],
    private readonly mode: string[] = ['serve'],
  ) {}

  async start(): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@lifeline/source',
        '--import',
        'tsx',
        this.script,
        ...this.mode,
        String(this.port),
        ...this.args(),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    const lines = createInterface({ input: child.stdout! });
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`${this.script} exited (${code}) before listening`);
    });
    try {
      const [line] = (await Promise.race([once(lines, 'line'), exited])) as [string];
      this.port = (JSON.parse(line) as { port: number }).port;
    } finally {
      lines.close();
      exited.catch(() => {}); // only a process that died before listening is an error here
    }
    this.starts++;
  }

  /** SIGKILL: no close frame, no FIN handshake of the application, nothing flushed. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.kills++;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }
}

/**
 * Resolves once `check()` holds, re-checking every 10 ms; rejects after `timeoutMs` naming `what`,
 * so an example that does not see what it claims fails instead of hanging.
 */
export async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Prints `label: value` lines, aligned, as the tests read them. */
export function report(title: string, counts: Record<string, number | string>): void {
  console.log(title);
  const width = Math.max(...Object.keys(counts).map((label) => label.length)) + 1;
  for (const [label, value] of Object.entries(counts)) console.log(`  ${`${label}:`.padEnd(width)} ${value}`);
}
