import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

/** Runs an example as a user would and returns its exit code and output (bounded by a kill timer). */
async function run(script: string, args: string[] = [], timeoutMs = 60_000) {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, ...args],
    {
      cwd: examples,
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

describe('examples', () => {
  it('quickstart recovers twice and exits on its own', async () => {
    const { code, output } = await run('quickstart.ts', [], 30_000);
    expect(output).toContain('echo message 1');
    expect(output).toContain('echo message 2');
    expect(output.match(/recovered/g)).toHaveLength(2);
    expect(code).toBe(0);
  });

  it('the crash demo kills its server, recovers every time and reports the counts', async () => {
    const { code, output } = await run('demo.ts', [
      '--duration',
      '5',
      '--kill-every',
      '1.5',
      '--rate',
      '300',
    ]);
    expect(code).toBe(0);
    const number = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1]);
    const kills = number('server kills \\(SIGKILL\\)');
    expect(kills).toBeGreaterThanOrEqual(2);
    // A kill that lands while the client is still reconnecting (a slow restart on a loaded
    // machine) is survived within the same recovery, so recoveries can be fewer than kills.
    expect(number('recoveries')).toBeGreaterThanOrEqual(1);
    expect(number('recoveries')).toBeLessThanOrEqual(kills);
    expect(number('out of order')).toBe(0);
    expect(number('echoed back \\(unique\\)') + number('lost')).toBe(number('client -> server sent'));
  });
});
