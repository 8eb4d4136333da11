// The root entry re-exports the core only: each transport lives behind its own sub-path
// (`@lifeline/node/ws`, `/tcp`, `/fetch`, `/server`, `/testing`) so `ws` and `undici` load only when asked for.
export * from '@lifeline/core';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics, enableSharedHeartbeats } from '@lifeline/core/internal';

enableDiagnostics();
// Heartbeats run by default on Node (ws ping frames): one timer for all of them, not one each.
enableSharedHeartbeats();
