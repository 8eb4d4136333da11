// Child of resume-frame-maps.test.ts: decodes resume frames until V8 has optimized the frame
// reader, runs full GCs with no frame being decoded, decodes again, and prints V8's deoptimization
// trace (`--trace-deopt`, set here: the test runner gives the child no V8 flags). The test counts
// the reader's functions deoptimized "reason: weak objects" after the GCs.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeFrame, encodeAck, encodeData } from '@lifeline/core/internal';

setFlagsFromString('--expose-gc');
setFlagsFromString('--trace-deopt');
const gc = runInNewContext('gc') as () => void;

// A binary DATA, a text DATA and an ACK: the frames a client decodes most.
const frames = [encodeData(1, 0, new Uint8Array(64)).frame, encodeData(300, 2, 'hello').frame, encodeAck(77)];
let decoded = 0;
const decodeAll = (count: number) => {
  for (let i = 0; i < count; i++) if (decodeFrame(frames[i % 3]!).type) decoded++;
};
decodeAll(200_000);
// Several full GCs: V8 keeps a map that optimized code uses for a few GCs before it may drop it.
console.log('### GC');
for (let i = 0; i < 4; i++) gc();
decodeAll(1_000);
console.log(`### DECODED ${decoded}`);
