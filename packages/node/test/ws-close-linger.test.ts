/**
 * Issue 10 item 10: closing or abandoning a half-open WebSocket link does not linger for `ws`'s
 * 30 s closing handshake. The peer is black-holed by the fault proxy (it never answers the close
 * frame, nor anything else); the client runs in a child process that must exit by itself within
 * a bound far below 30 s: the proof that no socket and no timer outlived the close.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createResumeServer } from '@lifeline/node/server';
import { FaultProxy } from '@lifeline/node/testing';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

const script = fileURLToPath(new URL('./support/ws-linger-client-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
// The default linger is 2 s; the rest is slack for a loaded machine. `ws` alone would take 30 s.
const EXIT_BOUND_MS = 10_000;

interface Client {
  readonly child: ChildProcess;
  /** Resolves with the first line that has `key`. */
  line(key: string): Promise<Record<string, unknown>>;
  send(command: string): void;
  /** Milliseconds from now until the process exits by itself, or `undefined` if it is still alive after `boundMs` (then it is killed). */
  exitWithin(boundMs: number): Promise<number | undefined>;
}

function startClient(url: string, mode: string): Client {
  const child = spawn(
    process.execPath,
    ['--conditions=@lifeline/source', '--import', 'tsx', script, url, mode],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines: Record<string, unknown>[] = [];
  const waiting: { key: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    for (const waiter of waiting.filter((w) => w.key in line)) {
      waiting.splice(waiting.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  return {
    child,
    line: (key) =>
      new Promise((resolve, reject) => {
        const found = lines.find((line) => key in line);
        if (found) return resolve(found);
        waiting.push({ key, resolve });
        void exited.then(() => reject(new Error(`client exited before printing ${key}`)));
      }),
    send: (command) => child.stdin!.write(`${command}\n`),
    async exitWithin(boundMs) {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), boundMs);
      });
      const outcome = await Promise.race([exited.then(() => performance.now() - started), late]);
      clearTimeout(timer);
      if (outcome === undefined) child.kill('SIGKILL');
      return outcome;
    },
  };
}

async function blackholedEcho(): Promise<{ proxy: FaultProxy; server: EchoServer }> {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const proxy = await FaultProxy.start({ target: { port: server.port } });
  cleanups.push(() => proxy.close());
  return { proxy, server };
}

test('close() on a link whose peer went silent: the process exits within the linger bound, not after 30 s', async () => {
  const { proxy } = await blackholedEcho();
  const client = startClient(`ws://127.0.0.1:${proxy.port}`, 'close');
  await client.line('open');
  proxy.blackhole();
  client.send('close');
  await client.line('closed');
  const exitMs = await client.exitWithin(EXIT_BOUND_MS);
  expect(exitMs, 'the client process was still alive after the bound').toBeDefined();
  expect(exitMs).toBeLessThan(EXIT_BOUND_MS);
}, 30_000);

// A custom platform that gives `terminate` but not `terminateAfter` (the capability Node's binding
// adds): the close linger still bounds the closing handshake.
test('close() on a silent peer with only the terminate capability: the process exits within the linger bound', async () => {
  const { proxy } = await blackholedEcho();
  const client = startClient(`ws://127.0.0.1:${proxy.port}`, 'custom-terminate');
  await client.line('open');
  proxy.blackhole();
  client.send('close');
  await client.line('closed');
  const exitMs = await client.exitWithin(EXIT_BOUND_MS);
  expect(exitMs, 'the client process was still alive after the bound').toBeDefined();
  expect(exitMs).toBeLessThan(EXIT_BOUND_MS);
}, 30_000);

for (const mode of ['abandon', 'abandon-resumable'] as const) {
  test(`${mode === 'abandon' ? 'a plain link' : 'a resume-protocol link'} the heartbeat declared dead is terminated when abandoned, not left to a closing handshake`, async () => {
    let proxy: FaultProxy;
    if (mode === 'abandon') {
      ({ proxy } = await blackholedEcho());
    } else {
      const server = createResumeServer();
      cleanups.push(() => server.close());
      const { port } = await server.listen({ port: 0 });
      proxy = await FaultProxy.start({ target: { port } });
      cleanups.push(() => proxy.close());
    }
    const client = startClient(`ws://127.0.0.1:${proxy.port}`, mode);
    await client.line('open');
    proxy.blackhole();
    expect(await client.line('down')).toEqual({ down: 'HeartbeatTimeoutError' });
    // The close linger is 60 s in this client: only terminating the abandoned link lets it exit sooner.
    const exitMs = await client.exitWithin(EXIT_BOUND_MS);
    expect(exitMs, 'the client process was still alive after the bound').toBeDefined();
    expect(exitMs).toBeLessThan(EXIT_BOUND_MS);
  }, 30_000);
}
