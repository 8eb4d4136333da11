// Session diagnostics are plugged in like connection diagnostics (engine/diagnostics-hook.ts), not
// imported by the resume client: a browser bundle with `resume()` but no diagnostics does not carry
// them. A logger given before `enableDiagnostics()` is refused loudly, never ignored; after it,
// the session's records flow.
import { attach, enableDiagnostics, InvalidOptionError, type LinkData, type LogFields } from '@lifeline/core';
import { resumable } from '@lifeline/core/internal';
import { createMemoryTransport, waitFor } from '@lifeline/core/testing';
import { filter } from 'rxjs';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';

test('a session logger before enableDiagnostics() throws InvalidOptionError; after it, the session records flow', async () => {
  const transport = createMemoryTransport<LinkData>();
  const records: string[] = [];
  const logger = { info: (_message: string, fields: LogFields) => records.push(String(fields.event)) };
  expect(() => resumable(transport, { logger })).toThrow(InvalidOptionError);
  expect(() => resumable(transport, { logger })).toThrow(/enableDiagnostics\(\)/);

  enableDiagnostics();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const conn = attach(resumable(transport, { logger, ackDelayMs: 0 }), { backoff: { initialDelayMs: 0 } });
  try {
    await waitFor(conn.state$.pipe(filter((state) => state.status === 'open')), { what: 'open' });
    await waitFor(() => records.includes('new'), { what: "the session's 'new' record" });
    transport.current!.fail();
    await waitFor(() => records.includes('resumed'), { what: "the session's 'resumed' record" });
  } finally {
    conn.close();
    peer.stop();
  }
});
