// A Node client for the Deno resume server test, run as a subprocess with tsx:
//   node --import tsx --conditions=@lifeline/source e2e/clients/node-numbered-client.ts <ws://...|tcp://...> <name> <total>
// Streams through a resumable connection (@lifeline/node/ws or /tcp) and reports on stdout as JSON lines:
//   {"type":"progress","received":n} every 20 upstream messages
//   {"type":"done","counts":NumberedClientCounts} (or {"type":"error","message":...}), then exits.
import { attach } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { tcpTransport } from '@lifeline/node/tcp';
import { wsTransport } from '@lifeline/node/ws';
import { runNumberedClient } from './numbered-client.js';

const [url, name, total] = process.argv.slice(2);
if (!url || !name || !total) throw new Error('usage: node-numbered-client.ts <url> <name> <total>');
const where = new URL(url);
const transport =
  where.protocol === 'tcp:'
    ? tcpTransport({ host: where.hostname, port: Number(where.port), connectTimeoutMs: 2_000 })
    : wsTransport(url, { connectTimeoutMs: 2_000 });
const conn = attach(resumable(transport), {
  backoff: { initialDelayMs: 10, maxDelayMs: 100 },
  maxAttemptsPerFailure: 1_000,
  maxRecoveries: 1_000,
  minUptimeMs: 0,
});
try {
  const counts = await runNumberedClient(conn, name, Number(total), {
    onProgress: (received) => {
      if (received % 20 === 0) process.stdout.write(`${JSON.stringify({ type: 'progress', received })}\n`);
    },
  });
  process.stdout.write(`${JSON.stringify({ type: 'done', counts })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ type: 'error', message: String(error) })}\n`);
  process.exitCode = 1;
} finally {
  conn.close();
  await conn.closed;
}
