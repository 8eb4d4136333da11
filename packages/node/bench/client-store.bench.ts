// Client session store benchmark (issue 15): `pnpm bench client-store`.
//
// The cost of keeping a resumable client's session in a store: 64 B messages through a resume
// server (a child process: this file with --server; memory store), client -> server (each message stored before its frame
// goes out) and server -> client (each message's watermark stored before it is acknowledged, the
// "delivered" mark before it is delivered), with no store, MemoryClientSessionStore and
// FileClientSessionStore (fsync on, the default; and off), alternating A B C D D C B A, medians.
// "writes/1k msgs" counts store writes per 1,000 messages: the batching (one write per tick, or
// per write in flight), not one per message.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { attach, type HAConnection, type LinkData } from '@lifeline/core';
import {
  type ClientSessionChange,
  type ClientSessionStore,
  MemoryClientSessionStore,
  resumable,
} from '@lifeline/core/resume';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { createResumeServer } from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { fmt, measure, row, type Sample } from './bench-utils.js';

const MESSAGES = 20_000;
const ROUNDS = 2;
const payload = new Uint8Array(64).fill(42);

/** Counts the writes a store gets. */
class Counted implements ClientSessionStore {
  writes = 0;
  constructor(private readonly inner: ClientSessionStore) {}
  open() {
    return this.inner.open();
  }
  write(change: ClientSessionChange) {
    this.writes++;
    return this.inner.write(change);
  }
  close() {
    return this.inner.close();
  }
}

if (process.argv.includes('--server')) await serve();
else await main();

/** Child: a resume server. "up:N" from a session: answers "done" after N more messages; "down:N": sends N. */
async function serve(): Promise<void> {
  const server = createResumeServer({ maxReplayMessages: 4_096 });
  server.sessions$.subscribe((session) => {
    let expected = Number.POSITIVE_INFINITY;
    let count = 0;
    session.messages$.subscribe(({ data }) => {
      if (typeof data === 'string') {
        const n = Number(data.slice(data.indexOf(':') + 1));
        if (data.startsWith('up:')) {
          expected = n;
          count = 0;
        } else if (data.startsWith('down:')) {
          let sent = 0;
          const pump = () => {
            while (sent < n && session.pending < 2_048) {
              sent++;
              session.send(payload).catch(() => {});
            }
            if (sent < n) setTimeout(pump, 1);
          };
          pump();
        }
        return;
      }
      if (++count === expected) session.send('done').catch(() => {});
    });
  });
  const { port } = await server.listen();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

type Kind = 'none' | 'memory' | 'file' | 'file-nofsync';

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-client-store-bench-'));
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--server'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const url = `ws://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
  const kinds: Kind[] = ['none', 'memory', 'file', 'file-nofsync'];
  const connections = new Map<Kind, { conn: HAConnection<LinkData, LinkData>; store: Counted | undefined }>();
  for (const kind of kinds) {
    const store =
      kind === 'none'
        ? undefined
        : new Counted(
            kind === 'memory'
              ? new MemoryClientSessionStore()
              : new FileClientSessionStore(join(dir, `${kind}.json`), { fsync: kind === 'file' }),
          );
    const conn = attach(resumable(wsTransport(url), store ? { store } : {}));
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    connections.set(kind, { conn, store });
  }

  const run = async (kind: Kind, direction: 'up' | 'down'): Promise<Sample & { writes: number }> => {
    const { conn, store } = connections.get(kind)!;
    const before = store?.writes ?? 0;
    let got = 0;
    const sample = await measure(MESSAGES, async () => {
      if (direction === 'up') {
        const done = firstValueFrom(conn.messages$.pipe(filter((message) => message === 'done')));
        void conn.send(`up:${MESSAGES}`);
        for (let i = 0; i < MESSAGES; i++) void conn.send(payload);
        await done;
      } else {
        const all = new Promise<void>((resolve) => {
          const subscription = conn.messages$.subscribe(() => {
            if (++got === MESSAGES) {
              subscription.unsubscribe();
              resolve();
            }
          });
        });
        void conn.send(`down:${MESSAGES}`);
        await all;
      }
    });
    // Unmeasured: everything acknowledged before the next run.
    await conn.send('sync');
    return { ...sample, writes: (store?.writes ?? 0) - before };
  };

  const results = new Map<string, (Sample & { writes: number })[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const order of [kinds, [...kinds].reverse()]) {
      for (const kind of order) {
        for (const direction of ['up', 'down'] as const) {
          const key = `${kind}:${direction}`;
          const list = results.get(key) ?? [];
          list.push(await run(kind, direction));
          results.set(key, list);
        }
      }
    }
  }
  for (const { conn } of connections.values()) conn.close();
  child.stdin!.end();
  await once(child, 'exit');
  rmSync(dir, { recursive: true, force: true });

  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const names: Record<Kind, string> = {
    none: 'no store',
    memory: 'MemoryClientSessionStore',
    file: 'FileClientSessionStore (fsync)',
    'file-nofsync': 'FileClientSessionStore (fsync: false)',
  };
  console.log(
    `64 B messages, ${fmt(MESSAGES)} per run, ${ROUNDS * 2} runs per store and direction (A B C D D C B A), medians.\n`,
  );
  row([
    'client store',
    'client → server msg/s',
    'writes/1k msgs',
    'server → client msg/s',
    'writes/1k msgs',
    'client → server vs memory',
    'server → client vs memory',
  ]);
  row(['---', '---:', '---:', '---:', '---:', '---:', '---:']);
  const rate = (key: string) => median(results.get(key)!.map((s) => s.perSecond));
  for (const kind of kinds) {
    const writes = (key: string) =>
      fmt((median(results.get(key)!.map((s) => s.writes)) / MESSAGES) * 1000, 1);
    row([
      names[kind],
      fmt(rate(`${kind}:up`)),
      kind === 'none' ? '-' : writes(`${kind}:up`),
      fmt(rate(`${kind}:down`)),
      kind === 'none' ? '-' : writes(`${kind}:down`),
      `${fmt(rate(`${kind}:up`) / rate('memory:up'), 2)}x`,
      `${fmt(rate(`${kind}:down`) / rate('memory:down'), 2)}x`,
    ]);
  }
}
