// Client session store benchmark (issue 15): `pnpm bench client-store`.
//
// The cost of keeping a resumable client's session in a store: 64 B messages through a resume
// server (in this process, memory store), client -> server (each message stored before its frame
// goes out) and server -> client (each message's watermark stored before it is acknowledged, the
// "delivered" mark before it is delivered), with no store, MemoryClientSessionStore and
// FileClientSessionStore (fsync on, the default; and off), alternating A B C D D C B A, medians.
// "writes/1k msgs" counts store writes per 1,000 messages: the batching (one write per tick, or
// per write in flight), not one per message.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attach, type HAConnection, type LinkData } from '@lifeline/core';
import {
  type ClientSessionChange,
  type ClientSessionStore,
  MemoryClientSessionStore,
  resumable,
} from '@lifeline/core/resume';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { createResumeServer, type ServerSession } from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { fmt, measure, row, type Sample } from './bench-utils.js';

const MESSAGES = 20_000;
const ROUNDS = 2;
const PAYLOAD = 'x'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'lifeline-client-store-bench-'));

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

const server = createResumeServer({ maxReplayMessages: 4_096 });
let current: ServerSession | undefined;
let received = 0;
server.sessions$.subscribe((session) => {
  current = session;
  session.messages$.subscribe(() => received++);
});
const { port } = await server.listen();
const url = `ws://127.0.0.1:${port}`;

type Kind = 'none' | 'memory' | 'file' | 'file-nofsync';
let fileRun = 0;
function storeOf(kind: Kind): Counted | undefined {
  if (kind === 'none') return undefined;
  if (kind === 'memory') return new Counted(new MemoryClientSessionStore());
  return new Counted(new FileClientSessionStore(join(dir, `s${fileRun++}.json`), { fsync: kind === 'file' }));
}

async function run(kind: Kind, direction: 'up' | 'down'): Promise<Sample & { writes: number }> {
  const store = storeOf(kind);
  const conn: HAConnection<LinkData, LinkData> = attach(resumable(wsTransport(url), store ? { store } : {}));
  let got = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  conn.messages$.subscribe(() => {
    if (++got === MESSAGES) done();
  });
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const writesBefore = store?.writes ?? 0;
  received = 0;
  const sample = await measure(MESSAGES, async () => {
    if (direction === 'up') {
      const sends: Promise<void>[] = [];
      for (let i = 0; i < MESSAGES; i++) sends.push(conn.send(PAYLOAD));
      await Promise.all(sends);
    } else {
      const session = current!;
      // Bounded by the server's window: send as acknowledgements make room.
      let sent = 0;
      const pump = () => {
        while (sent < MESSAGES && session.pending < 2_048) {
          sent++;
          session.send(PAYLOAD).catch(() => {});
        }
        if (sent < MESSAGES) setTimeout(pump, 1);
      };
      pump();
      await all;
    }
  });
  const writes = (store?.writes ?? 0) - writesBefore;
  conn.close();
  return { ...sample, writes };
}

const kinds: Kind[] = ['none', 'memory', 'file', 'file-nofsync'];
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
await server.close();
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
]);
row(['---', '---:', '---:', '---:', '---:', '---:']);
const memoryUp = median(results.get('memory:up')!.map((s) => s.perSecond));
for (const kind of kinds) {
  const up = results.get(`${kind}:up`)!;
  const down = results.get(`${kind}:down`)!;
  const upRate = median(up.map((s) => s.perSecond));
  row([
    names[kind],
    fmt(upRate),
    kind === 'none' ? '-' : fmt((median(up.map((s) => s.writes)) / MESSAGES) * 1000, 1),
    fmt(median(down.map((s) => s.perSecond))),
    kind === 'none' ? '-' : fmt((median(down.map((s) => s.writes)) / MESSAGES) * 1000, 1),
    `${fmt(upRate / memoryUp, 2)}x`,
  ]);
}
