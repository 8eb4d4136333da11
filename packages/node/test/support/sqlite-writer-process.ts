// Writes batches into a SqliteSessionStore until it is killed, for the SIGKILL test. argv: the
// database path, the number of sessions. Each tick appends message n to every session and raises
// both watermarks (received = n, peerAcked = n - 10) in the same batch, so a committed batch
// leaves every session with lastSent = received = n and replay n-9..n; after each commit it
// prints {"committed":n}. On start it continues from what the database holds.
import { SqliteSessionStore } from '@lifeline/node/server';

const [path, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 20);
const store = new SqliteSessionStore({ path: path! });
const ids = Array.from({ length: count }, (_, i) => i.toString(16).padStart(32, '0'));
const payload = new Uint8Array(512).fill(0x61);

let next = 1;
const first = await store.load(ids[0]!);
if (first) next = first.lastSent + 1;
else {
  await Promise.all(
    ids.map((id) =>
      store.save({
        id,
        tokenHash: new Uint8Array(32),
        retiredTokenHash: null,
        tokenConfirmed: true,
        createdAt: Date.now(),
        expiresAt: null,
        lastSent: 0,
        peerAcked: 0,
        received: 0,
        replay: [],
      }),
    ),
  );
}
process.stdout.write(`${JSON.stringify({ start: next })}\n`);
for (;;) {
  const seq = next++;
  const writes: Promise<void>[] = [];
  for (const id of ids) {
    writes.push(store.append(id, [{ seq, kind: 'binary', payload }]));
    writes.push(store.acknowledge(id, { received: seq, peerAcked: Math.max(0, seq - 10) }));
  }
  await Promise.all(writes);
  process.stdout.write(`${JSON.stringify({ committed: seq })}\n`);
}
