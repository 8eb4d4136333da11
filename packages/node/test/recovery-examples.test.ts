// Runs each recovery example as a user would (its own process, real servers on port 0 or a free
// port, servers killed with SIGKILL) and checks the counts it prints: an example that did not see
// what it claims exits non-zero, and its counts are asserted here too.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const examples = `${root}examples/`;

/** Runs a command and returns its exit code and output, bounded by a SIGKILL after `timeoutMs`. */
async function run(command: string, args: string[], cwd: string, timeoutMs = 90_000) {
  const child = spawn(command, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: '1' },
  });
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

const example = (script: string) =>
  run(process.execPath, ['--conditions=@lifeline/source', '--import', 'tsx', script], examples);

/** The number printed after `label:`; NaN when the line is missing. */
const count = (output: string, label: string) =>
  Number(new RegExp(`^\\s*${label.replace(/[()]/g, '\\$&')}:\\s+(\\d+)`, 'm').exec(output)?.[1]);

/** Asserts every label is printed with 0 (NaN when missing fails too). */
function expectZero(output: string, labels: string[]) {
  for (const label of labels) expect([label, count(output, label)]).toEqual([label, 0]);
}

describe('recovery examples', () => {
  it('token refresh: each 4401 expiry and each HTTP 401 is cured by exactly one new token', async () => {
    const { code, output } = await example('token-refresh.ts');
    expect(output).toContain('Token refresh');
    const expired = count(output, 'expired (closed with 4401)');
    const refused = count(output, 'refused (HTTP 401)');
    expect(expired).toBeGreaterThanOrEqual(2);
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(count(output, 'tokens fetched')).toBe(1 + expired + refused);
    expect(count(output, 'server restarts')).toBe(1);
    expect(count(output, 'links that carried ticks')).toBe(count(output, 'links opened'));
    expect(code).toBe(0);
  });

  it('resubscribe: hello and the current subscriptions are renewed after each SIGKILL, no gap, no duplicate', async () => {
    const { code, output } = await example('resubscribe.ts');
    expect(count(output, 'server kills (SIGKILL)')).toBe(2);
    expect(count(output, 'welcomes')).toBe(3);
    expect(count(output, 'subscriptions renewed by recover')).toBe(4);
    for (const channel of ['prices', 'news', 'alerts']) {
      expect(count(output, `${channel} received`)).toBeGreaterThanOrEqual(100);
      expectZero(output, [`${channel} lost`, `${channel} duplicated`, `${channel} out of order`]);
    }
    expectZero(output, ['news events after unsubscribe']);
    expect(code).toBe(0);
  });

  it('region failover: the health check skips a draining region and a dead one, the feed continues exactly', async () => {
    const { code, output } = await example('region-failover.ts');
    expect(output).toMatch(/regions, in order:\s+eu -> ap -> us/);
    expect(count(output, 'region kills (SIGKILL)')).toBe(2);
    expect(count(output, 'skipped, unhealthy (503)')).toBeGreaterThanOrEqual(1);
    expect(count(output, 'skipped, unreachable')).toBeGreaterThanOrEqual(1);
    expect(count(output, 'events received')).toBeGreaterThanOrEqual(300);
    expectZero(output, ['lost', 'duplicated', 'out of order']);
    expect(code).toBe(0);
  });

  for (const [name, script] of [
    ['graphql-ws', 'graphql-ws-client.ts'],
    ['tRPC', 'trpc-client.ts'],
  ] as const) {
    it(`${name} over HAWebSocket: one subscription survives two SIGKILLs of the server, exactly once`, async () => {
      const { code, output } = await example(script);
      expect(output).toContain(`${name} over HAWebSocket`);
      expect(count(output, 'server kills (SIGKILL)')).toBe(2);
      expect(count(output, 'renegotiations')).toBe(2);
      expect(count(output, 'events received')).toBeGreaterThanOrEqual(300);
      expectZero(output, ['lost', 'duplicated', 'out of order', 'subscription errors']);
      expect(code).toBe(0);
    });
  }

  it('SSE through haFetch in Deno: the body resumes with Last-Event-ID after each SIGKILL, exactly once', async () => {
    const deno = `${root}node_modules/.bin/deno`;
    const { code, output } = await run(
      deno,
      [
        'run',
        '--allow-net',
        '--allow-run',
        '--allow-read',
        '--allow-env',
        '--conditions=@lifeline/source',
        'examples/deno-sse-feed.ts',
      ],
      root,
    );
    expect(output).toContain('SSE through haFetch in Deno');
    expect(count(output, 'server kills (SIGKILL)')).toBe(2);
    expect(count(output, 'resumes')).toBeGreaterThanOrEqual(2);
    expect(count(output, 'events received')).toBeGreaterThanOrEqual(300);
    expectZero(output, ['lost', 'duplicated', 'out of order', 'body errors']);
    expect(code).toBe(0);
  });
});
