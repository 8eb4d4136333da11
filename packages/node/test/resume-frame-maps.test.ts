/**
 * V8 holds the hidden classes ("maps") an object reaches by adding fields weakly: a full GC that
 * finds no object of such a map alive drops it and deoptimizes every function compiled against it
 * ("reason: weak objects" in `node --trace-deopt`), which then runs unoptimized until compiled
 * again, after every full GC (docs/benchmarks.md, branch h19-rdeopt). Counted here in a fresh
 * process each, after four full GCs:
 * - the frame reader kept its cursor in an object per frame (a class with two fields); now module
 *   state (core's resume-frame.ts). Before the change 7 of its functions were deoptimized, in each
 *   of 3 runs (`Reader`, `varint`, `rest`, `text`, `end`, `remaining`, `decodeServerSent`);
 * - the frame encoder (`encodeDataFrame`) is compiled against the map of Node's
 *   `TextEncoder.encodeInto` result; `@lifeline/node/ws` keeps one result for the life of the
 *   process (src/message-event-maps.ts). Before the change it was deoptimized in each of 3 runs.
 */
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runScript } from './support/run-script.js';

/** The functions of the trace's "weak objects" deoptimizations after the child's "### GC" line. */
async function deoptimizedAfterGc(child: string, done: string): Promise<string[]> {
  const run = await runScript(fileURLToPath(new URL(`./support/${child}`, import.meta.url)), {
    timeoutMs: 30_000,
  });
  expect(run.code, run.output).toBe(0);
  expect(run.output).toContain(done);
  const afterGc = run.output.slice(run.output.indexOf('### GC'));
  return [
    ...afterGc.matchAll(
      /<SharedFunctionInfo ?([^>]*)>\) \(opt id \d+\) for deoptimization, reason: weak objects/g,
    ),
  ].map((match) => match[1]!);
}

/** The frame reader's functions, before and after the change (names as V8 prints them). */
const READER =
  /^(Reader|<instance_members_initializer>|get remaining|u8|fixed|varint|rest|text|end|readFlags|decodeHello|decodeServerSent|decodeFrame)$/;

it('a full GC between frames does not deoptimize the resume frame reader', async () => {
  const names = await deoptimizedAfterGc('frame-reader-maps-child.ts', '### DECODED 201000');
  expect(names.filter((name) => READER.test(name))).toEqual([]);
}, 40_000);

it('a full GC with no encodeInto result alive does not deoptimize the frame encoder', async () => {
  const names = await deoptimizedAfterGc('frame-encoder-maps-child.ts', '### ENCODED true');
  expect(names.filter((name) => name === 'encodeDataFrame' || name === 'encodeData')).toEqual([]);
}, 40_000);
