import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach, SessionLostError } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, expect, test } from 'vitest';
import { waiter } from './support/resume-tally.js';

const script = fileURLToPath(new URL('./support/resume-server-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  children.clear();
});

interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly lines: { session: string; seq: number; data: string }[];
  onLine: () => void;
}

async function startServer(port = 0): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, String(port)],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(child);
  const lines: ServerProcess['lines'] = [];
  const reader = createInterface({ input: child.stdout! });
  const server = { child, port: 0, lines, onLine: () => {} };
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server process exited with ${code} before listening`)));
    reader.on('line', (line) => {
      const parsed = JSON.parse(line);
      if ('port' in parsed) resolve(parsed.port);
      else lines.push(parsed);
      server.onLine();
    });
  });
  server.port = await listening;
  return server;
}

test('a server killed with SIGKILL and restarted: the lost session lists exactly the unacknowledged messages, renegotiate runs first', async () => {
  let server = await startServer();
  const port = server.port;
  const order: string[] = [];
  const client = resumable(wsTransport(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 2_000 }), {
    renegotiate: async ({ link, lost }) => {
      order.push(`renegotiate after ${lost.length} lost`);
      await link.send('renegotiated');
    },
  });
  const events: SessionEvent[] = [];
  client.session$.subscribe((event) => events.push(event));
  const conn = attach(client, {
    backoff: { initialDelayMs: 20, maxDelayMs: 200 },
    maxAttemptsPerFailure: 200,
    minUptimeMs: 0,
  });
  const received: string[] = [];
  conn.messages$.subscribe((message) => received.push(String(message)));
  try {
    // Acknowledged: delivered to the server application, which acks them (the ack timer runs).
    await Promise.all(['a1', 'a2', 'a3', 'hold'].map((text) => conn.send(text)));
    // Never acknowledged: the server application stopped reading, so nothing acks them.
    const unacked = ['b5', 'b6', 'b7'].map((text) =>
      conn.send(text).then(
        () => 'resolved',
        (error: unknown) => error,
      ),
    );
    const firstSession = client.session!.id;
    expect(client.session).toMatchObject({ pending: 3, lastSent: 7, peerAcked: 4 });

    server.child.kill('SIGKILL');
    await once(server.child, 'exit');
    server = await startServer(port);
    const next = conn.send('c1');
    const restarted = server;
    const wait = waiter();
    restarted.onLine = wait.poke;
    const arrived = wait.until(() => restarted.lines.length >= 2, 10_000, 'the new session to deliver');
    await next;
    await arrived;

    const lost = events.find((event) => event.type === 'lost');
    const expected = [
      { seq: 5, data: 'b5', maybeDelivered: true },
      { seq: 6, data: 'b6', maybeDelivered: true },
      { seq: 7, data: 'b7', maybeDelivered: true },
    ];
    expect(lost).toMatchObject({
      reason: 'unknown-session',
      sessionId: firstSession,
      unacknowledged: expected,
    });
    for (const outcome of await Promise.all(unacked)) {
      expect(outcome).toBeInstanceOf(SessionLostError);
      expect((outcome as SessionLostError).unacknowledged).toEqual(expected);
    }
    expect(order).toEqual(['renegotiate after 3 lost']);
    // The new process saw the renegotiation first, then the new traffic; nothing of the old session.
    expect(restarted.lines.map((line) => [line.seq, line.data])).toEqual([
      [1, 'renegotiated'],
      [2, 'c1'],
    ]);
    expect(new Set(restarted.lines.map((line) => line.session)).size).toBe(1);
    expect(restarted.lines[0]!.session).not.toBe(firstSession);
    expect(events.map((event) => event.type)).toEqual(['new', 'lost', 'new']);
    expect(received).toHaveLength(2);
    expect(received[0]).toBe(`welcome ${firstSession}`);
    expect(received[1]).toBe(`welcome ${restarted.lines[0]!.session}`);
  } finally {
    conn.close();
  }
}, 60_000);
