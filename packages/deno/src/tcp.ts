// `@lifeline/deno/tcp`: TCP through `Deno.connect` (the root has `connectTcp` and `tcpTransport`
// too), plus the pieces under it for a link of one's own (a `Deno.connectTls` connection, a
// connection accepted by `Deno.listen`): the core's one TCP link over a `Deno.Conn`
// (`createTcpLink`), the byte stream it reads and writes through (`denoByteStream`) and their
// buffer sizes. The same seam as `@lifeline/node/tcp` (`createTcpLink`, `nodeByteStream`).
export { type ConnectTcpOptions, connectTcp } from './connect-tcp.js';
export { DENO_WRITE_HIGH_WATER_BYTES, denoByteStream } from './deno-byte-stream.js';
export {
  createTcpLink,
  TCP_CLOSE_LINGER_MS,
  TCP_READ_BUFFER_BYTES,
  type TcpLink,
  type TcpLinkOptions,
  type TcpMode,
} from './tcp-link.js';
export {
  DEFAULT_TCP_CONNECT_TIMEOUT_MS,
  DEFAULT_TCP_HOST,
  DEFAULT_TCP_MODE,
  DEFAULT_TCP_NO_DELAY,
  type TcpTransportOptions,
  tcpTransport,
} from './tcp-transport.js';

// Node and Deno have diagnostics_channel: connections report to it (and to a logger) without a call.
import { enableDiagnostics, enableSharedHeartbeats } from '@lifeline/core/internal';

enableDiagnostics();
// Resumed sessions ping by default (and TCP links when asked): one heartbeat timer for all, not one each.
enableSharedHeartbeats();
