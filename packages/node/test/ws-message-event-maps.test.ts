/**
 * Node builds MessageEvents in JavaScript, and V8 drops their hidden classes at a full GC that
 * finds none alive, deoptimizing the receive path compiled against them (the event's constructors,
 * dispatchEvent's checks, the socket's receive method, the listeners): it then ran unoptimized and
 * was compiled again after every full GC: 11.0 against 7.3 µs per 4 KiB message in the ws bench
 * (docs/benchmarks.md, "Client CPU per 4 KiB receive", branch h19-recv). `@lifeline/node/ws`
 * keeps one MessageEvent for the life of the process (src/message-event-maps.ts): counted here in
 * a fresh process, none before the import, one after it, and still one after a socket received
 * 200 messages (no event kept per message or per socket).
 */
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runScript } from './support/run-script.js';

it('importing @lifeline/node/ws keeps exactly one MessageEvent alive, whatever the traffic', async () => {
  const run = await runScript(
    fileURLToPath(new URL('./support/message-event-maps-child.ts', import.meta.url)),
    {
      timeoutMs: 30_000,
    },
  );
  expect(run.code, run.output).toBe(0);
  const line = run.output.split('\n').find((l) => l.startsWith('{'));
  expect(JSON.parse(line!)).toEqual({ before: 0, imported: 1, afterTraffic: 1, received: 200 });
}, 40_000);
