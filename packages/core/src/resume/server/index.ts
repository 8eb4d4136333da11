// `@lifeline/core/resume/server`: the runtime-neutral server half of the resume protocol. It speaks
// to sockets through `ServerLinkPort`; `@lifeline/node/server` (ws, net) and `@lifeline/deno/server`
// adapt their runtime's sockets to it. Durable stores live in the platform packages.
export * from './fenced-session-store.js';
export * from './memory-session-store.js';
export * from './resume-server.js';
export * from './server-session.js';
export * from './session-store.js';
