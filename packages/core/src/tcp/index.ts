// `@lifeline/core/tcp`: the length-prefixed framing of Lifeline's TCP links (docs/tcp.md) and the
// options every platform's TCP transport shares.
export * from './length-prefixed-framing.js';
export * from './tcp-options.js';
