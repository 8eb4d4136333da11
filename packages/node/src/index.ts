// The root entry re-exports the core only: each transport lives behind its own sub-path
// (`@lifeline/node/ws`, `/tcp`, `/fetch`, `/server`, `/testing`) so `ws` and `undici` load only when asked for.
export * from '@lifeline/core';
