// Connection diagnostics are plugged in, not imported by attach (a browser bundle that never asks
// for them does not carry them): a logger without them is refused loudly, never ignored.
import { attach, consoleLogger, enableDiagnostics, InvalidOptionError, type LogFields } from '@lifeline/core';
import { createMemoryTransport, waitFor } from '@lifeline/core/testing';
import { filter } from 'rxjs';
import { expect, test } from 'vitest';

test('a logger before enableDiagnostics() throws InvalidOptionError naming the fix; after it, records flow', async () => {
  const transport = createMemoryTransport<string>();
  const records: string[] = [];
  const logger = { info: (_message: string, fields: LogFields) => records.push(String(fields.event)) };
  expect(() => attach(transport, { logger })).toThrow(InvalidOptionError);
  expect(() => attach(transport, { logger })).toThrow(/enableDiagnostics\(\)/);
  // Without options, nothing is needed and nothing is reported.
  attach(transport).close();

  enableDiagnostics();
  const conn = attach(transport, { logger });
  await waitFor(conn.state$.pipe(filter((state) => state.status === 'open')), { what: 'open' });
  transport.current!.fail();
  await waitFor(() => records.includes('link-down'), { what: 'the link-down record' });
  conn.close();
  expect(records).toContain('state');
  expect(records).toContain('link-down');
});

test('consoleLogger() enables diagnostics by itself', () => {
  const lines: string[] = [];
  const sink = { debug: () => {}, info: (line: string) => lines.push(line), warn: () => {}, error: () => {} };
  const conn = attach(createMemoryTransport<string>(), { logger: consoleLogger('info', sink) });
  conn.close();
  expect(lines.some((line) => line.startsWith('lifeline: connection'))).toBe(true);
});
