// examples/client-session.ts, run as a user would: a worker SIGKILLed three times mid-stream
// resumes its one session from its file store each time; the server gets every job once, in order.
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { runScript } from './support/run-script.js';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

test('examples/client-session.ts: three SIGKILLs, one session, every job once and in order', async () => {
  const { code, output } = await runScript('client-session.ts', { cwd: examples, timeoutMs: 110_000 });
  expect(output.match(/resumed session/g)).toHaveLength(3);
  expect(output).toContain('server received: 600 jobs');
  expect(output).toContain('missing: 0');
  expect(output).toContain('duplicated: 0');
  expect(output).toContain('in order: true');
  expect(output).toContain('server sessions: 1');
  expect(code).toBe(0);
});
