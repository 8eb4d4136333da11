// `@lifeline/core/internal/server`: the part of `@lifeline/core/internal` that the platform
// packages' server halves use (`@lifeline/node/server`, its stores and adapters). Not a public
// API, as `./internal` is not. It exists for start-up time: `./internal` loads every client module
// and, through them, rxjs's index (its CommonJS build loads every operator), which a resume
// server never runs; this graph loads only the server's modules and the rxjs classes they use.
export { enableDiagnostics } from './diagnostics/connection-diagnostics.js';
export * from './engine/clock.js';
export * from './engine/errors.js';
export * from './tcp/frame-dispatcher.js';
export * from './tcp/length-prefixed-framing.js';
