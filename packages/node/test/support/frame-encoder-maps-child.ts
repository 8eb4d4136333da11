// Child of resume-frame-maps.test.ts: with `@lifeline/node/ws` imported (as a resumable socket has
// it), encodes DATA frames as the ws bench sends them (binary, and a text command once in 50,000)
// until V8 has optimized the frame encoder, runs full GCs with no `encodeInto` result alive,
// encodes again, and prints V8's deoptimization trace (`--trace-deopt`, set here). With a text
// frame in every 1,000 the deoptimization did not show even without the kept result (something
// else then holds the map, presumably V8's allocation site for the literal in Node's `encodeInto`).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import '@lifeline/node/ws';
import { encodeDataFrame } from '@lifeline/core/internal';

setFlagsFromString('--expose-gc');
setFlagsFromString('--trace-deopt');
const gc = runInNewContext('gc') as () => void;

const binary = new Uint8Array(64);
let bytes = 0;
const encodeAll = (count: number) => {
  for (let i = 0; i < count; i++)
    bytes += encodeDataFrame(i + 1, 0, i % 50_000 === 0 ? 'count:20000' : binary, true).length;
};
encodeAll(200_000);
// Several full GCs: V8 keeps a map that optimized code uses for a few GCs before it may drop it.
console.log('### GC');
for (let i = 0; i < 4; i++) gc();
encodeAll(1_000);
console.log(`### ENCODED ${bytes > 0}`);
