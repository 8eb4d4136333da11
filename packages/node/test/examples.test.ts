import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runScript } from './support/run-script.js';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

/** Runs an example as a user would and returns its exit code and output (bounded by a kill timer). */
function run(script: string, args: string[] = [], timeoutMs = 60_000) {
  return runScript(script, { args, cwd: examples, timeoutMs });
}

describe('examples', () => {
  it('quickstart recovers twice and exits on its own', async () => {
    const { code, output } = await run('quickstart.ts', [], 30_000);
    expect(output).toContain('echo message 1');
    expect(output).toContain('echo message 2');
    expect(output.match(/recovered/g)).toHaveLength(2);
    expect(code).toBe(0);
  });

  const number = (output: string, label: string) =>
    Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1]);

  it('the crash demo (durable store) loses and repeats nothing across SIGKILLs, both ways', async () => {
    // A kill waits for the client's recovery from the previous one (a restart of the server
    // process, which takes seconds on a loaded machine): 10 s for two of them.
    const { code, output } = await run(
      'demo.ts',
      ['--duration', '10', '--kill-every', '2', '--rate', '300'],
      90_000,
    );
    expect(code).toBe(0);
    const kills = number(output, 'server kills \\(SIGKILL\\)');
    expect(kills).toBeGreaterThanOrEqual(2);
    // Each kill is one recovery, timed to the first message on a link opened after it.
    expect(number(output, 'recoveries')).toBe(kills);
    expect(number(output, 'client -> server sent')).toBeGreaterThan(1_000);
    expect(number(output, 'echoed back \\(unique\\)')).toBe(number(output, 'client -> server sent'));
    for (const label of [
      'lost',
      'duplicated',
      'out of order',
      'upstream lost',
      'upstream duplicated',
      'upstream out of order',
      'sessions lost',
    ]) {
      expect([label, number(output, label)]).toEqual([label, 0]);
    }
  });

  it('the crash demo with three replicas sharing Redis fails over with nothing lost', async () => {
    const { code, output } = await run('demo.ts', [
      '--replicas',
      '3',
      '--duration',
      '6',
      '--kill-every',
      '2',
      '--rate',
      '300',
    ]);
    expect(code).toBe(0);
    expect(output).toContain('3 replicas sharing Redis');
    // Each kill hit the replica the client was on (a kill of another one would leave the client
    // where it was, and the demo waiting for a recovery that never comes): one recovery each.
    const kills = number(output, 'server kills \\(SIGKILL\\)');
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(number(output, 'recoveries')).toBe(kills);
    for (const label of ['lost', 'duplicated', 'upstream lost', 'upstream duplicated', 'sessions lost']) {
      expect([label, number(output, label)]).toEqual([label, 0]);
    }
  });

  it('the crash demo in plain mode reports its losses honestly: every message echoed or counted lost', async () => {
    const { code, output } = await run('demo.ts', [
      '--mode',
      'plain',
      '--duration',
      '6',
      '--kill-every',
      '2',
      '--rate',
      '300',
    ]);
    expect(code).toBe(0);
    const kills = number(output, 'server kills \\(SIGKILL\\)');
    expect(kills).toBeGreaterThanOrEqual(2);
    // A kill that lands while the client is still reconnecting (a slow restart on a loaded
    // machine) is survived within the same recovery, so recoveries can be fewer than kills.
    expect(number(output, 'recoveries')).toBeGreaterThanOrEqual(1);
    expect(number(output, 'out of order')).toBe(0);
    expect(number(output, 'echoed back \\(unique\\)') + number(output, 'lost')).toBe(
      number(output, 'client -> server sent'),
    );
  });
});
