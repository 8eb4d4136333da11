/**
 * The resume frame reader kept its cursor in an object per frame (a class with two fields). V8
 * holds the hidden classes such an object reaches by adding fields weakly: a full GC that found no
 * reader alive (between two frames, the usual case) dropped them and deoptimized every function
 * compiled against them ("reason: weak objects"), so the resume client's receive path ran
 * unoptimized again after every full GC (docs/benchmarks.md, branch h19-rdeopt). The cursor is
 * now module state (core's resume-frame.ts). Counted here in a fresh process: the reader's
 * functions deoptimized for weak objects after four full GCs: none now; 7 before the change, in
 * each of 3 runs (`Reader`, `varint`, `rest`, `text`, `end`, `remaining`, `decodeServerSent`).
 */
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runScript } from './support/run-script.js';

/** The frame reader's functions, before and after the change (names as V8 prints them). */
const READER =
  /^(Reader|<instance_members_initializer>|get remaining|u8|fixed|varint|rest|text|end|overrun|readFlags|decodeHello|decodeServerSent|decodeFrame)$/;

it('a full GC between frames does not deoptimize the resume frame reader', async () => {
  const run = await runScript(
    fileURLToPath(new URL('./support/frame-reader-maps-child.ts', import.meta.url)),
    { timeoutMs: 30_000 },
  );
  expect(run.code, run.output).toBe(0);
  expect(run.output).toContain('### DECODED 201000');
  const afterGc = run.output.slice(run.output.indexOf('### GC'));
  const deoptimized = [
    ...afterGc.matchAll(
      /<SharedFunctionInfo ?([^>]*)>\) \(opt id \d+\) for deoptimization, reason: weak objects/g,
    ),
  ]
    .map((match) => match[1]!)
    .filter((name) => READER.test(name));
  expect(deoptimized).toEqual([]);
}, 40_000);
