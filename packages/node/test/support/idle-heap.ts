// Runs support/idle-heap-child.ts (from the sources, through tsx) against a server on `port` and
// returns the JS heap its idle HAWebSockets hold per connection, after GC: the measure of
// ws-idle-memory.test.ts and resume-idle-memory.test.ts.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, onTestFinished } from 'vitest';

export async function idleHeapPerConnection(
  port: number,
  connections: number,
  mode?: 'resume',
): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      // V8 drops the bytecode of functions idle for a few GCs (tsx's own among them), which from
      // Node 22 on frees more during the measured phase than 200 connections hold.
      '--no-flush-bytecode',
      '--conditions=@lifeline/source',
      '--import',
      'tsx',
      fileURLToPath(new URL('./idle-heap-child.ts', import.meta.url)),
      String(port),
      String(connections),
      ...(mode === undefined ? [] : [mode]),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  onTestFinished(() => {
    clearTimeout(killer);
    child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code, output).toBe(0);
  const { perConnection } = JSON.parse(output) as { perConnection: number };
  expect(perConnection).toBeGreaterThan(0);
  return perConnection;
}
