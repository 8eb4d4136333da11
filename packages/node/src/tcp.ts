// `@lifeline/node/tcp`: HA TCP over `node:net`, framed or as a byte stream, plus the server-side
// helper for the framed protocol. The frame codec itself is runtime-neutral and lives in core.
export { DEFAULT_MAX_FRAME_SIZE, encodeFrame, FrameDecoder, FrameType } from '@lifeline/core/internal';
export * from './tcp/connect-tcp.js';
export * from './tcp/create-framed-server.js';
export * from './tcp/framed-socket.js';
export * from './tcp/ha-tcp-socket.js';
export * from './tcp/node-byte-stream.js';
export * from './tcp/tcp-link.js';
export * from './tcp/tcp-transport.js';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics, enableSharedHeartbeats } from '@lifeline/core/internal';

enableDiagnostics();
// Heartbeats run by default on Node (ws ping frames): one timer for all of them, not one each.
enableSharedHeartbeats();
