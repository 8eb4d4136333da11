// `@lifeline/core/tcp`: the length-prefixed framing of Lifeline's TCP links (docs/tcp.md), the
// options every platform's TCP transport shares, and the one TCP link, written over a small
// byte-stream seam that each runtime's socket implements (Node `net.Socket`, `Deno.Conn`).
export * from './byte-stream.js';
export * from './frame-dispatcher.js';
export * from './length-prefixed-framing.js';
export * from './tcp-link.js';
export * from './tcp-options.js';
