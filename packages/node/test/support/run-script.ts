// Runs a script as a user would (`node --conditions=@lifeline/source --import tsx <script>`), for
// the tests of examples and docs, bounded by a SIGKILL timer.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface ScriptRun {
  /** The exit code, `null` when a signal ended it (the timer's SIGKILL). */
  readonly code: number | null;
  /** stdout and stderr, interleaved as they arrived. */
  readonly output: string;
}

/** Runs `script` (a path, or a name relative to `cwd`) with `args`; killed with SIGKILL after `timeoutMs`. */
export async function runScript(
  script: string,
  { args = [], cwd, timeoutMs = 60_000 }: { args?: readonly string[]; cwd?: string; timeoutMs?: number } = {},
): Promise<ScriptRun> {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, ...args],
    {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { code, output };
}
