// Node builds its events in JavaScript: a `MessageEvent` gets its hidden class (V8's "map") by a
// chain of transitions, one per field its constructors add (Event's six private fields and three
// symbol-keyed slots, then MessageEvent's five). V8 holds those transitions weakly: a full
// (mark-compact) GC that finds no event alive, the usual case between two messages, drops the
// maps, and with them every piece of optimized code compiled against them (V8 deoptimizes it,
// "reason: weak objects"): the event's constructors, `dispatchEvent`'s checks, the socket's
// receive method and the application's listeners. The next messages then ran unoptimized until
// V8 had seen them again and compiled them again, on the process's CPU: after every full GC.
//
// One `MessageEvent` kept for the life of the process keeps its maps, so the receive path stays
// compiled across full GCs. In the ws bench (a full GC before each run of 10,000 messages) that was
// 11.0 against 7.3 µs of CPU per 4 KiB message, medians of 22 runs (docs/benchmarks.md, "Client CPU
// per 4 KiB receive", branch h19-recv). It costs one event per process, none per socket.
//
// Held in a variable this module's function reads: V8 keeps such a variable in the module's
// context, alive while any function of the module is (a module-level constant read by no
// function could be a local of the module's body, gone once it ran).
let kept: MessageEvent | undefined;

/**
 * Keeps one `MessageEvent` alive for the rest of the process, so that a full GC does not drop the
 * hidden classes every `MessageEvent` shares (see above). Idempotent; does nothing where the
 * runtime has no `MessageEvent` (Node 15 and older).
 */
export function keepMessageEventMaps(): void {
  if (kept === undefined && typeof MessageEvent === 'function')
    kept = new MessageEvent('message', { data: null, origin: '' });
}

// The same holds for the object `TextEncoder.encodeInto` returns (`{ read, written }`, made in
// Node's JavaScript): the resume client encodes a text message into its frame with it (core's
// `encodeDataFrame`), and the frame encoder, compiled against that object's map, was deoptimized
// ("weak objects") by a full GC that found none alive, and compiled again, though its binary sends
// never made one. In the ws bench (one text command and 20,000 binary sends per run, a full GC
// before each run) that was every third run (docs/benchmarks.md, branch h19-rdeopt). One result
// kept for the life of the process keeps the map.
let keptEncodeResult: TextEncoderEncodeIntoResult | undefined;

/**
 * Keeps one `TextEncoder.encodeInto` result alive for the rest of the process, so that a full GC
 * does not drop the hidden class every such result shares (see above). Idempotent.
 */
export function keepEncodeIntoMaps(): void {
  if (keptEncodeResult === undefined) keptEncodeResult = new TextEncoder().encodeInto('', new Uint8Array(0));
}
