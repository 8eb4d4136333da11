/**
 * Every documented resume-server example (README.md, docs/*.md) run as a user would run it, in a
 * process of its own, against clients that close at once: one that closes right after the
 * server's reply arrived (before acknowledging it, so the reply's send can never be
 * acknowledged), then one that completes a round trip, which proves the process survived. A
 * fire-and-forget `session.send()` whose promise rejected unhandled would have killed it (Node
 * ends the process on an unhandled rejection) — issue 16.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  decodeFrame,
  encodeAck,
  encodeClose,
  encodeData,
  encodeHello,
  frameBytes,
  type Link,
  type LinkData,
  type ResumeFrame,
} from '@lifeline/core/internal';
import { tcpTransport } from '@lifeline/node/tcp';
import { wsTransport } from '@lifeline/node/ws';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The server part of each ```ts block of `file` that creates a resume server and sends from it. */
function serverExamples(file: string): { name: string; code: string }[] {
  const text = readFileSync(join(root, file), 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks
    .filter((code) => code.includes('createResumeServer(') && /session\.send(Async)?\(/.test(code))
    .map((code, index) => {
      const lines = code.split('\n');
      // The server half ends with its listen(); what follows is the client's.
      const end = lines.findIndex((line) => line.includes('server.listen('));
      return { name: `${file} #${index + 1}`, code: lines.slice(0, end + 1).join('\n') };
    });
}

const examples = ['README.md', 'docs/websocket.md', 'docs/tcp.md', 'docs/protocol.md'].flatMap(
  serverExamples,
);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs an example with port 0 and a scratch SQLite path; resolves with its address once it listens. */
async function start(code: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-docs-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const program = code
    .replace(/port: 8080/g, 'port: 0')
    .replace(/'\.\/sessions\.db'/g, JSON.stringify(join(dir, 'sessions.db')))
    .replace(
      /server\.listen\(([^)]*)\)/,
      'server.listen($1).then((address) => (console.log(JSON.stringify(address)), address))',
    );
  // Inside @lifeline/node, so that `@lifeline/node/...` resolves to this workspace.
  const file = fileURLToPath(
    new URL(`../.docs-server-${process.pid}-${cleanups.length}.mts`, import.meta.url),
  );
  writeFileSync(file, program);
  cleanups.push(() => rmSync(file, { force: true }));
  const child = spawn(process.execPath, ['--conditions=@lifeline/source', '--import', 'tsx', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address within 60 s: ${stderr}`)), 60_000);
    child.once('exit', (exitCode) => {
      clearTimeout(timer);
      reject(new Error(`the example exited (${exitCode}) before listening: ${stderr}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  child.stdout!.resume();
  return { child, url, stderr: () => stderr };
}

/** A link speaking resume frames by hand, over the example's own transport. */
class ScriptedClient {
  readonly frames: ResumeFrame[] = [];
  private wake = () => {};

  private constructor(readonly link: Link<LinkData, LinkData>) {
    link.messages$.subscribe({
      next: (message) => {
        this.frames.push(decodeFrame(frameBytes(message), 1 << 20));
        this.wake();
      },
      error: () => this.wake(),
      complete: () => this.wake(),
    });
  }

  static async open(url: string): Promise<ScriptedClient> {
    const { hostname, port } = new URL(url);
    const transport = url.startsWith('tcp:')
      ? tcpTransport({ host: hostname, port: Number(port), mode: 'framed' })
      : wsTransport(url);
    const client = new ScriptedClient(await transport.open());
    cleanups.push(() => client.link.close());
    return client;
  }

  send(frame: Uint8Array): void {
    void this.link.send(frame).catch(() => {});
  }

  async next<T extends ResumeFrame['type']>(type: T): Promise<Extract<ResumeFrame, { type: T }>> {
    const deadline = performance.now() + 10_000;
    for (;;) {
      const found = this.frames.find((frame) => frame.type === type);
      if (found) return found as Extract<ResumeFrame, { type: T }>;
      if (performance.now() > deadline) throw new Error(`no ${type.toUpperCase()} within 10 s`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  }
}

describe('documented resume-server examples survive a client that closes at once', () => {
  it('finds the examples', () => {
    expect(examples.map((example) => example.name)).toEqual([
      'README.md #1',
      'docs/websocket.md #1',
      'docs/tcp.md #1',
      'docs/protocol.md #1',
    ]);
  });

  it.each(examples)(
    '$name',
    async ({ code }) => {
      const { child, url, stderr } = await start(code);

      // 20 clients, each closing its session the moment the reply arrived, without acknowledging it.
      for (let i = 0; i < 20; i++) {
        const quitter = await ScriptedClient.open(url);
        quitter.send(encodeHello(undefined, 0));
        await quitter.next('welcome');
        quitter.send(encodeData(1, 0, `hello ${i}`).frame);
        await quitter.next('data');
        quitter.send(encodeClose(0, 'bye'));
        quitter.link.close();
      }

      // The process still serves: a full round trip, acknowledged.
      const survivor = await ScriptedClient.open(url);
      survivor.send(encodeHello(undefined, 0));
      await survivor.next('welcome');
      survivor.send(encodeData(1, 0, 'still there?').frame);
      const reply = await survivor.next('data');
      survivor.send(encodeAck(reply.seq));
      expect(child.exitCode).toBeNull();
      expect(child.signalCode).toBeNull();
      expect(stderr()).not.toMatch(/Unhandled|SessionLostError|ClosedByUserError/);
    },
    120_000,
  );
});
