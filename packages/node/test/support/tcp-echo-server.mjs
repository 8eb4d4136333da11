// A TCP echo server for tests and benchmarks, run as a child process so it can be killed with
// SIGKILL mid-stream and started again on the same port. It implements Lifeline's frame format by
// hand (independently of the package's codec):
//   frame = u32 big-endian payload length, u8 type (0 data, 1 ping, 2 pong), payload
// framed mode: data frames are echoed unchanged, pings are answered with a pong of the same payload.
// stream mode: every byte is echoed.
// Usage: node tcp-echo-server.mjs <port|0> <framed|stream>. Prints {"port": P} on stdout once listening.
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'framed';
const HEADER = 5;

function framedEcho(socket) {
  // Bytes of an incomplete frame, kept as a list so a large frame is joined once, not per chunk.
  let held = [];
  let heldBytes = 0;
  let needed = HEADER;
  socket.on('data', (chunk) => {
    if (heldBytes > 0) {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes < needed) return;
      chunk = Buffer.concat(held, heldBytes);
      held = [];
      heldBytes = 0;
    }
    let offset = 0;
    let runStart = 0;
    while (chunk.length - offset >= HEADER) {
      const end = offset + HEADER + chunk.readUInt32BE(offset);
      if (end > chunk.length) break;
      const type = chunk[offset + 4];
      if (type !== 0) {
        // Echo the run of data frames before this one unchanged, in one write.
        if (offset > runStart) socket.write(chunk.subarray(runStart, offset));
        if (type === 1) {
          const pong = Buffer.from(chunk.subarray(offset, end));
          pong[4] = 2;
          socket.write(pong);
        } else if (type !== 2) {
          socket.destroy();
          return;
        }
        runStart = end;
      }
      offset = end;
    }
    if (offset > runStart) socket.write(chunk.subarray(runStart, offset));
    if (offset < chunk.length) {
      const rest = chunk.subarray(offset);
      held = [rest];
      heldBytes = rest.length;
      needed = rest.length >= HEADER ? HEADER + rest.readUInt32BE(0) : HEADER;
    }
  });
}

const server = createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  if (mode === 'stream') socket.on('data', (chunk) => socket.write(chunk));
  else framedEcho(socket);
});
server.listen({ host: '127.0.0.1', port }, () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
