import { ok as assert, deepStrictEqual as assertEquals } from 'node:assert/strict';
import { attach, type HAConnection, type LinkData } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { type NumberedClientCounts, runNumberedClient } from '../../../e2e/clients/numbered-client.ts';
import { denoWebSocketTransport, tcpTransport } from '../src/index.ts';

const root = new URL('../../../', import.meta.url).pathname;
const serverScript = `${root}e2e/fixtures/deno-resume-server.ts`;
const nodeClientScript = `${root}e2e/clients/node-numbered-client.ts`;
const TOTAL = 400;
const KILLS = 3;

/** The Deno resume server (e2e/fixtures/deno-resume-server.ts) in a child process, SQLite store. */
class ChildDenoResumeServer {
  private child: Deno.ChildProcess | undefined;
  ws = 0;
  tcp = 0;
  starts = 0;

  constructor(
    private readonly db: string,
    private readonly log: string,
  ) {}

  async start(): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        'run',
        '--allow-net',
        '--allow-read',
        '--allow-write',
        '--allow-env',
        '--conditions=@lifeline/source',
        serverScript,
        String(this.ws),
        String(this.tcp),
        this.db,
        this.log,
        String(TOTAL),
        '5',
      ],
      stdout: 'piped',
      stderr: 'inherit',
      stdin: 'null',
      env: { DENO_NO_UPDATE_CHECK: '1' },
    }).spawn();
    this.child = child;
    const line = await firstLine(child.stdout);
    const ports = JSON.parse(line) as { ws: number; tcp: number };
    this.ws = ports.ws;
    this.tcp = ports.tcp;
    this.starts++;
  }

  /** SIGKILL: the store keeps what was committed; nothing else is said. Resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    try {
      child.kill('SIGKILL');
    } catch {
      // Exited already.
    }
    await child.status;
  }
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while (!text.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the child ended before printing a line: ${text}`);
    text += value;
  }
  // The rest of its output is not read: release the stream so the child does not block on it.
  void reader.cancel().catch(() => {});
  return text.slice(0, text.indexOf('\n'));
}

/**
 * A Node client (e2e/clients/node-numbered-client.ts under tsx) in a child process: `progress` is
 * called with each progress line, `done` resolves with its counts.
 */
function nodeClient(
  url: string,
  name: string,
  onProgress: (received: number) => void,
): { done: Promise<NumberedClientCounts> } {
  const child = new Deno.Command('node', {
    args: ['--import', 'tsx', '--conditions=@lifeline/source', nodeClientScript, url, name, String(TOTAL)],
    cwd: root,
    stdout: 'piped',
    stderr: 'inherit',
    stdin: 'null',
  }).spawn();
  const done = (async () => {
    let buffered = '';
    let counts: NumberedClientCounts | undefined;
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const report = JSON.parse(buffered.slice(0, end)) as
          | { type: 'progress'; received: number }
          | { type: 'done'; counts: NumberedClientCounts }
          | { type: 'error'; message: string };
        buffered = buffered.slice(end + 1);
        if (report.type === 'progress') onProgress(report.received);
        else if (report.type === 'done') counts = report.counts;
        else throw new Error(`${name}: ${report.message}`);
      }
    }
    const status = await child.status;
    if (!counts) throw new Error(`${name}: exited with ${status.code} without counts`);
    return counts;
  })();
  return { done };
}

const fast = {
  backoff: { initialDelayMs: 10, maxDelayMs: 100 },
  maxAttemptsPerFailure: 1_000,
  maxRecoveries: 1_000,
  minUptimeMs: 0,
} as const;

Deno.test({
  name: 'Deno resume server (ws + framed TCP, SQLite store) killed with SIGKILL 3 times: Deno and Node clients lose, duplicate and reorder nothing, both ways',
  // The Node clients are child processes whose output this test reads to the end.
  sanitizeResources: true,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: 'lifeline-deno-resume-' });
    const server = new ChildDenoResumeServer(`${dir}/sessions.db`, `${dir}/server.log`);
    await server.start();
    const wsUrl = `ws://127.0.0.1:${server.ws}`;
    const tcpUrl = `tcp://127.0.0.1:${server.tcp}`;
    let denoWs: HAConnection<LinkData, LinkData> | undefined;
    let denoTcp: HAConnection<LinkData, LinkData> | undefined;
    try {
      // The kills follow the slowest client: each kill comes once every client received 1/4, 2/4,
      // 3/4 of the stream, and once every client still streaming received a message from the
      // server process started after the last kill, so every client streams through every kill.
      // (Without the second condition a client ahead of the slowest, still reconnecting after one
      // kill, could sleep through the next: the Deno clients stream the next quarter in 0.5 s.)
      const progress = new Map<string, number>();
      let atStart = new Map<string, number>();
      let kills = 0;
      let restarting = false;
      let killing: Promise<void> = Promise.resolve();
      const progressOf = (name: string) => (received: number) => {
        progress.set(name, Math.max(received, progress.get(name) ?? 0));
        if (progress.size < 4 || restarting || kills >= KILLS) return;
        const slowest = Math.min(...progress.values());
        if (slowest < Math.round(((kills + 1) * TOTAL) / (KILLS + 1))) return;
        for (const [client, count] of progress) {
          if (count < TOTAL && count <= (atStart.get(client) ?? -1)) return;
        }
        kills++;
        restarting = true;
        killing = killing
          .then(() => server.kill())
          .then(() => server.start())
          .then(() => {
            atStart = new Map(progress);
            restarting = false;
          });
      };
      // The Node clients take seconds to start (node + tsx): the Deno clients start once both stream.
      let nodeStreaming!: () => void;
      const bothNodeClientsStream = new Promise<void>((resolve) => {
        nodeStreaming = resolve;
      });
      const nodeProgress = (name: string) => {
        const record = progressOf(name);
        return (received: number) => {
          record(received);
          if (progress.has('node-ws') && progress.has('node-tcp')) nodeStreaming();
        };
      };
      const nodeWs = nodeClient(wsUrl, 'node-ws', nodeProgress('node-ws'));
      const nodeTcp = nodeClient(tcpUrl, 'node-tcp', nodeProgress('node-tcp'));
      // A Node client that fails before streaming fails the test here instead of hanging it.
      await Promise.race([bothNodeClientsStream, nodeWs.done, nodeTcp.done]);
      denoWs = attach(resumable(denoWebSocketTransport(wsUrl)), fast);
      denoTcp = attach(resumable(tcpTransport({ port: server.tcp, connectTimeoutMs: 2_000 })), fast);
      const results = await Promise.all([
        runNumberedClient(denoWs, 'deno-ws', TOTAL, { onProgress: progressOf('deno-ws') }),
        runNumberedClient(denoTcp, 'deno-tcp', TOTAL, { onProgress: progressOf('deno-tcp') }),
        nodeWs.done,
        nodeTcp.done,
      ]);
      await killing;
      assertEquals(kills, KILLS);
      assertEquals(server.starts, KILLS + 1);

      // Server to client, counted by each client.
      for (const counts of results) {
        const { received, unique, lost, duplicated, reordered } = counts.upstream as unknown as Record<
          string,
          number
        >;
        console.info(counts.name, {
          received,
          unique,
          lost,
          duplicated,
          reordered,
          links: counts.links,
          acked: counts.acked,
        });
        assertEquals(
          { name: counts.name, lost, duplicated, reordered, rejected: counts.rejected },
          {
            name: counts.name,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            rejected: 0,
          },
        );
        assertEquals(counts.acked, TOTAL);
        // Every client streamed through every kill.
        assert(counts.links >= KILLS + 1, `${counts.name}: ${counts.links} links`);
      }

      // Client to server, counted in the server's log (written synchronously, across every process)
      // as an idempotent consumer keyed by message number would: a message given again by a new
      // process (given before a kill that came before its delivery was stored) is redelivered, not
      // duplicated; given twice by one process, it is a duplicate.
      const lines = (await Deno.readTextFile(`${dir}/server.log`)).trim().split('\n');
      const ledgers = new Map<
        string,
        {
          processed: number;
          duplicated: number;
          outOfOrder: number;
          redelivered: number;
          by: Map<number, number>;
        }
      >();
      for (const line of lines) {
        const { d, p } = JSON.parse(line) as { d: string; p: number };
        const [name, number] = d.split(':');
        const n = Number(number);
        const ledger = ledgers.get(name!) ?? {
          processed: 0,
          duplicated: 0,
          outOfOrder: 0,
          redelivered: 0,
          by: new Map<number, number>(),
        };
        ledgers.set(name!, ledger);
        const before = ledger.by.get(n);
        ledger.by.set(n, p);
        if (n === ledger.processed) ledger.processed++;
        else if (n > ledger.processed) ledger.outOfOrder++;
        else if (before === p) ledger.duplicated++;
        else ledger.redelivered++;
      }
      for (const name of ['deno-ws', 'deno-tcp', 'node-ws', 'node-tcp']) {
        const ledger = ledgers.get(name);
        assert(ledger, `${name}: nothing reached the server`);
        const { processed, duplicated, outOfOrder, redelivered } = ledger;
        console.info(`${name} -> server`, {
          processed,
          lost: TOTAL - processed,
          duplicated,
          outOfOrder,
          redelivered,
        });
        assertEquals(
          { name, lost: TOTAL - processed, duplicated, outOfOrder },
          { name, lost: 0, duplicated: 0, outOfOrder: 0 },
        );
      }
    } finally {
      denoWs?.close();
      denoTcp?.close();
      await denoWs?.closed;
      await denoTcp?.closed;
      await server.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
