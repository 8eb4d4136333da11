/**
 * A process racing for a `FileClientSessionStore`'s lock (client-store-file.test.ts): prints
 * `READY` once loaded, reads a wall-clock instant on stdin and spins until it so all racers open
 * together, prints `OWNED` or the error's code, and holds what it got until its stdin closes.
 */
import { createInterface } from 'node:readline';
import { FileClientSessionStore } from '@lifeline/node/client-store';

const store = new FileClientSessionStore(process.argv[2]!, { fsync: false });
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
process.stdout.write('READY\n');
const go = Number((await lines.next()).value);
// A spin, not a timer: timers fire late by different amounts in each process, spreading the race.
while (Date.now() < go) {}
const result = await store.open().then(
  () => 'OWNED',
  (error: unknown) => String((error as { code?: string }).code ?? error),
);
process.stdout.write(`${result}\n`);
input.on('close', () => {
  void store.close().then(() => process.exit(0));
});
