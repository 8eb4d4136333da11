// `@lifeline/node/server`: the server half of the resume protocol (docs/protocol.md) on Node's
// sockets: the runtime-neutral server from `@lifeline/core/resume/server` with `ws` and `net`
// adapters, plus the durable stores (also on their own sub-paths, `@lifeline/node/stores/*`).
export * from '@lifeline/core/resume/server';
export * from './server/create-resume-server.js';
export * from './server/net-adapter.js';
export * from './server/ws-adapter.js';
export * from './stores/redis.js';
export * from './stores/sqlite.js';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics } from '@lifeline/core/internal/server';

enableDiagnostics();
