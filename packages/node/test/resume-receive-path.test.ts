/**
 * The receive path of a resuming HAWebSocket (issue 13: idle memory per connection, client CPU per
 * ACK): the connection reads the session's virtual link through the link read seam
 * (`Link.read_`), and the session reads its WebSocket link the same way, so neither hop is an
 * rxjs subscription. Before, the engine subscribed to the virtual link's `messages$` and
 * `pongs$`, the session to the WebSocket link's `messages$`, and the session's diagnostics to its
 * events: four subscriptions per connection (a subscriber, an observer, closures and a teardown
 * list each, about 1.3 KB of an idle connection) and an rxjs hop on every frame and every ACK.
 * The server runs in a child process, so the count is the client's alone: none, from the
 * constructor through the handshake, 100 messages each way, ACKs, heartbeats and the close.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodePing } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { Observable } from 'rxjs';
import { expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';

const script = fileURLToPath(new URL('./support/resume-server-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const WAIT = { timeoutMs: 20_000 };

/** The resume server of resume-server-process.ts: it answers each session with "welcome ID" and prints what it receives. */
async function serverProcess(): Promise<{ port: number; received: () => number }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, '0'],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  let received = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server process exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as { port?: number };
      if (parsed.port !== undefined) resolve(parsed.port);
      else received++;
    });
  });
  return { port, received: () => received };
}

it('a resuming HAWebSocket opens, sends, is acknowledged, receives, heartbeats and closes without one rxjs subscription', async () => {
  const server = await serverProcess();
  // The session's PINGs, counted where they leave (no subscription): the heartbeat ran.
  const PING = encodePing()[0];
  let pings = 0;
  const original = WebSocket.prototype.send;
  const send = vi.spyOn(WebSocket.prototype, 'send').mockImplementation(function (
    this: WebSocket,
    ...args: Parameters<WebSocket['send']>
  ) {
    if (args[0] instanceof Uint8Array && args[0][0] === PING) pings++;
    return original.apply(this, args);
  });
  onTestFinished(() => send.mockRestore());
  const subscribe = vi.spyOn(Observable.prototype, 'subscribe');
  onTestFinished(() => subscribe.mockRestore());
  // A short heartbeat: the session's PINGs and the server's PONGs go both ways while measured.
  const socket = new HAWebSocket(`ws://127.0.0.1:${server.port}`, {
    resume: true,
    heartbeat: { intervalMs: 20, timeoutMs: 5_000 },
  });
  onTestFinished(() => socket.close());
  const received: string[] = [];
  socket.onmessage = (event) => received.push(event.data as string);
  await once(socket as unknown as EventTarget, 'open');
  for (let i = 0; i < 100; i++) socket.send(`m${i}`);
  const session = socket.session!;
  await waitFor(
    () => server.received() === 100 && session.peerAcked === 100 && received.length === 1 && pings >= 3,
    WAIT,
  );
  expect(received[0]).toBe(`welcome ${session.id}`);
  expect(session.pending).toBe(0);
  const closed = once(socket as unknown as EventTarget, 'close');
  socket.close();
  await closed;
  expect(subscribe.mock.calls.length).toBe(0);
}, 40_000);
