/**
 * Issue 15, Node: a client process streaming both ways (~300 msg/s each way) through a resumable
 * HAWebSocket with a FileClientSessionStore is SIGKILLed 10 times mid-stream and started again on
 * the same file. Counted by the server (client to server) and across the client's incarnations
 * (server to client): nothing lost, nothing duplicated beyond the repeat window the store
 * announces (`restored.deliveredUpTo`), nothing reordered, one server session throughout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { ClientProcess, streamingServer, tallyAcrossRestarts } from './support/client-store-harness.js';

const RATE = 300;
const KILLS = 10;

test('a client SIGKILLed 10 times mid-stream resumes its one session from the file: 0 lost, 0 duplicated, 0 reordered both ways', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-client-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'session.json');
  const server = await streamingServer(RATE);
  const runs: {
    restored: { lastReceived: number; deliveredUpTo: number; pendingOutgoing: number } | null;
    received: [number, number][];
    sessionId: string;
  }[] = [];
  let client: ClientProcess | undefined;
  for (let run = 0; run <= KILLS; run++) {
    client = ClientProcess.start(server.url, file, RATE);
    const open = await client.line((line) => 'restored' in line, 'opening');
    const serverBefore = server.sessions[0]?.received.length ?? 0;
    if (run === KILLS) break;
    // Mid-stream both ways: this incarnation received and sent a random amount, then dies.
    const atLeast = 30 + Math.floor(Math.random() * 120);
    const current = client;
    await current.line(() => current.received.length >= atLeast, `receiving ${atLeast}`);
    const sending = 40 + Math.floor(Math.random() * 120);
    await current.line(
      (line) => 'sent' in line && (server.sessions[0]?.received.length ?? 0) > serverBefore + sending,
      `sending ${sending}`,
    );
    await current.kill();
    runs.push({
      restored: open.restored as (typeof runs)[number]['restored'],
      received: current.received,
      sessionId: open.sessionId as string,
    });
  }
  // The last incarnation: stop both streams, wait until each side has everything the other sent.
  const last = client!;
  const open = last.lines.find((line) => 'restored' in line)!;
  server.stopSending();
  last.child.stdin!.write('stop\n');
  const done = await last.line((line) => line.done === true, 'acknowledging everything');
  const lastSent = done.lastSent as number;
  const sessionRecord = server.sessions[0]!;
  await last.line(() => last.received.at(-1)?.[1] === server.sent, `receiving all ${server.sent}`);
  runs.push({
    restored: open.restored as (typeof runs)[number]['restored'],
    received: last.received,
    sessionId: open.sessionId as string,
  });

  // Client to server, counted by the server: c:1..c:lastSent, each once, in order, seq = k.
  const got = sessionRecord.received;
  const clientToServer = { lost: 0, duplicated: 0, reordered: 0 };
  let expected = 1;
  for (const { seq, data } of got) {
    const k = Number(data.slice(2));
    if (k !== seq || seq < expected) clientToServer.duplicated++;
    else if (seq > expected) {
      clientToServer.reordered++;
      clientToServer.lost += seq - expected;
    }
    expected = Math.max(expected, seq + 1);
  }
  clientToServer.lost += lastSent - (expected - 1);
  const serverToClient = tallyAcrossRestarts(runs);
  const pendingRestored = runs.map((r) => r.restored?.pendingOutgoing ?? 0);
  console.log(
    `client-store crash: ${KILLS} SIGKILLs; client→server ${lastSent} sent, ${got.length} received, ` +
      `${JSON.stringify(clientToServer)}; server→client ${server.sent} sent, ${JSON.stringify(serverToClient)}; ` +
      `restored pending per restart ${JSON.stringify(pendingRestored.slice(1))}`,
  );
  expect(server.sessions).toHaveLength(1);
  expect(new Set(runs.map((r) => r.sessionId)).size).toBe(1);
  expect(runs.slice(1).every((r) => r.restored?.pendingOutgoing !== undefined)).toBe(true);
  expect(clientToServer).toEqual({ lost: 0, duplicated: 0, reordered: 0 });
  expect(got).toHaveLength(lastSent);
  expect(serverToClient).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, payloadMismatch: 0 });
  expect(serverToClient.highest).toBe(server.sent);
  expect(lastSent).toBeGreaterThan(KILLS * 20);
});
