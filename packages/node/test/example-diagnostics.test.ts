// examples/diagnostics.ts, run as a user would: the logger, diagnostics_channel and the
// OpenTelemetry metrics it wires up all report the two recoveries it causes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

test('examples/diagnostics.ts: two recoveries, seen by the logger, diagnostics_channel and OpenTelemetry', async () => {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', 'diagnostics.ts'],
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
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  expect(output.match(/^lifeline: recovered /gm)).toHaveLength(2);
  expect(output.match(/^\[diagnostics_channel\] \{"event":"retry"/gm)).toHaveLength(2);
  expect(output).toContain('[opentelemetry] lifeline.connection.recoveries = 2');
  expect(output).toContain('diagnostics: 2 recoveries seen by OpenTelemetry');
  expect(code).toBe(0);
});
