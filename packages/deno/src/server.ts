// `@lifeline/deno/server`: the server half of the resume protocol (docs/protocol.md) on Deno's
// sockets: the runtime-neutral server from `@lifeline/core/resume/server` with adapters for
// `Deno.upgradeWebSocket` (inside `Deno.serve`) and framed TCP on `Deno.listen`.
export * from '@lifeline/core/resume/server';
export * from './server/create-resume-server.js';
export * from './server/listener-adapter.js';
export * from './server/web-socket-adapter.js';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics } from '@lifeline/core/internal';

enableDiagnostics();
