// Memory a peer can drive: the resume server runs in a child process (support/memory-server-process.ts)
// and reports its memory every 50 ms after a GC; the attacker runs here, bounded in count and time,
// and the test asserts the server's growth stays under a stated bound.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeFrame, encodeHello, encodePing, FrameType } from '@lifeline/core/internal';
import { afterEach, expect, test } from 'vitest';
import WebSocket from 'ws';

const script = fileURLToPath(new URL('./support/memory-server-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const MiB = 1024 * 1024;

interface Sample {
  readonly heap: number;
  readonly rss: number;
  readonly ab: number;
  readonly stats: Record<string, number>;
}

interface MemoryServer {
  readonly port: number;
  readonly samples: Sample[];
  /** The first sample, taken once listening. */
  readonly baseline: Sample;
  /** Resolves with the first sample reported after now. */
  next(): Promise<Sample>;
  /** Largest growth over the baseline seen so far, per measure. */
  peak(): { heap: number; rss: number; ab: number };
}

const children = new Set<ChildProcess>();
const sockets = new Set<Socket | WebSocket>();
afterEach(async () => {
  for (const socket of sockets) socket instanceof WebSocket ? socket.terminate() : socket.destroy();
  sockets.clear();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  children.clear();
});

async function startServer(
  mode: 'ws' | 'tcp' | 'ws-attach',
  options: object = {},
  greeting = 0,
): Promise<MemoryServer> {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--conditions=@lifeline/source',
      '--import',
      'tsx',
      script,
      mode,
      JSON.stringify(options),
      String(greeting),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(child);
  const samples: Sample[] = [];
  let waiters: ((sample: Sample) => void)[] = [];
  let port = 0;
  const first = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line);
      if ('port' in parsed) {
        port = parsed.port;
        return;
      }
      samples.push(parsed);
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake(parsed);
      resolve();
    });
  });
  await first;
  const baseline = samples[0]!;
  return {
    port,
    samples,
    baseline,
    next: () => new Promise<Sample>((resolve) => waiters.push(resolve)),
    peak: () => ({
      heap: Math.max(...samples.map((s) => s.heap)) - baseline.heap,
      rss: Math.max(...samples.map((s) => s.rss)) - baseline.rss,
      ab: Math.max(...samples.map((s) => s.ab)) - baseline.ab,
    }),
  };
}

/** A TCP connection that never reads. */
async function silentTcp(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  sockets.add(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.pause();
  return socket;
}

/** Writes `chunk` repeatedly, honouring our own backpressure, until `count` writes, `ms` elapsed or the socket closes. */
async function flood(socket: Socket, chunk: Uint8Array, count: number, ms: number): Promise<number> {
  const deadline = performance.now() + ms;
  let written = 0;
  while (written < count && performance.now() < deadline && !socket.destroyed) {
    written++;
    if (!socket.write(chunk)) {
      // Until drained, closed or out of time; the listeners go with the wait.
      const drained = await new Promise<boolean>((resolve) => {
        const done = (result: boolean) => {
          clearTimeout(timer);
          socket.off('drain', onDrain);
          socket.off('close', onClose);
          resolve(result);
        };
        const onDrain = () => done(true);
        const onClose = () => done(false);
        const timer = setTimeout(() => done(false), Math.max(1, deadline - performance.now()));
        socket.on('drain', onDrain);
        socket.on('close', onClose);
      });
      if (!drained) break;
    }
  }
  return written;
}

/** A WebSocket connection made by hand: the upgrade written raw, so frames can be written in batches. */
async function rawWebSocket(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  sockets.add(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    head += chunk.toString('latin1');
  }
  expect(head.startsWith('HTTP/1.1 101')).toBe(true);
  return socket;
}

/** One binary WebSocket frame from a client (payload < 126 bytes), masked with the zero key. */
function wsFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(6 + payload.length);
  frame[0] = 0x82;
  frame[1] = 0x80 | payload.length;
  frame.set(payload, 6);
  return frame;
}

/** A framed resume frame, as the TCP transport writes it. */
function tcpFrame(frame: Uint8Array): Uint8Array {
  return encodeFrame(frame, FrameType.Data);
}

test('TCP: framing-level pings with 1 MiB payloads before any handshake are refused, not echoed (server RSS bounded)', async () => {
  const server = await startServer('tcp');
  const attacker = await silentTcp(server.port);
  const ping = encodeFrame(new Uint8Array(MiB - 64), FrameType.Ping);
  const written = await flood(attacker, ping, 400, 4_000);
  await server.next();
  const sample = await server.next();
  const peak = server.peak();
  // Before the fix each ping was echoed into a socket that is never read: ~1 MiB held per ping.
  expect(peak.rss, `${written} pings written, peak growth ${JSON.stringify(peak)}`).toBeLessThan(96 * MiB);
  expect(sample.stats.oversizedFrames).toBe(1);
}, 30_000);

test('TCP: framing-level pings of 125 bytes from a client that never reads get at most one pong in flight (server memory bounded)', async () => {
  // The attacker never sends a HELLO: at the default 10 s handshake timeout the server drops it,
  // which on a loaded machine (Node 24 under a load of 11) ended the flood before the 400,000 pings
  // the bound is asserted over. A longer timeout makes the attack longer, not the test weaker.
  const server = await startServer('tcp', { handshakeTimeoutMs: 60_000 });
  const attacker = await silentTcp(server.port);
  const one = encodeFrame(new Uint8Array(125), FrameType.Ping);
  const batch = new Uint8Array(one.length * 500);
  for (let i = 0; i < 500; i++) batch.set(one, i * one.length);
  // Bounded: 1,000 x 500 pings (66 MB), or 50 s on a loaded machine (the count assertion below needs them all).
  const pings = 500 * (await flood(attacker, batch, 1_000, 50_000));
  for (let i = 0; i < 10; i++) await server.next();
  const peak = server.peak();
  // Before the fix every ping was echoed into the unread socket: its bytes and a write request each.
  expect(pings).toBeGreaterThanOrEqual(400_000);
  expect(peak.rss, `${pings} pings, peak growth ${JSON.stringify(peak)}`).toBeLessThan(96 * MiB);
  expect(peak.heap, `${pings} pings, peak growth ${JSON.stringify(peak)}`).toBeLessThan(16 * MiB);
  expect(peak.ab, `${pings} pings, peak growth ${JSON.stringify(peak)}`).toBeLessThan(16 * MiB);
}, 120_000);

for (const transport of ['ws', 'tcp'] as const) {
  test(`${transport}: resume-level PINGs from a client that stopped reading a stream get at most one PONG in flight (server heap bounded)`, async () => {
    // The application streams 24 MB at once (a replay window of 32 MiB holds it): more than the
    // kernel's socket buffers, so the output is backed up, as for any client that stops reading.
    const server = await startServer(transport, { maxReplayBytes: 32 * MiB }, 24_000_000);
    const hello = encodeHello(undefined, 0);
    const ping = encodePing();
    let sent = 0;
    let minimum = 1_000_000;
    if (transport === 'ws') {
      // A hand-made WebSocket client, so the attacker writes its pings in batches.
      const socket = await rawWebSocket(server.port);
      const welcome = once(socket, 'data');
      socket.write(wsFrame(hello));
      await welcome;
      socket.pause();
      const one = wsFrame(ping);
      const batch = new Uint8Array(one.length * 10_000);
      for (let i = 0; i < 10_000; i++) batch.set(one, i * one.length);
      // Bounded: 40 x 10,000 pings, or 50 s on a loaded machine.
      sent = 10_000 * (await flood(socket, batch, 40, 50_000));
      minimum = 300_000;
    } else {
      const socket = connect({ port: server.port, host: '127.0.0.1' });
      sockets.add(socket);
      socket.on('error', () => {});
      await once(socket, 'connect');
      const welcome = once(socket, 'data');
      socket.write(tcpFrame(hello));
      await welcome;
      socket.pause();
      const one = tcpFrame(ping);
      const batch = new Uint8Array(one.length * 10_000);
      for (let i = 0; i < 10_000; i++) batch.set(one, i * one.length);
      // Bounded: 150 x 10,000 pings, or 50 s on a loaded machine.
      sent = 10_000 * (await flood(socket, batch, 150, 50_000));
    }
    // The server reads what the kernel still holds of our pings: a second's worth of samples.
    for (let i = 0; i < 20; i++) await server.next();
    const peak = server.peak();
    // Before the fix each PING queued a PONG behind the unread output: hundreds of MB of heap.
    expect(peak.heap, `${sent} PINGs sent, peak growth ${JSON.stringify(peak)}`).toBeLessThan(16 * MiB);
    // Enough PINGs that, before the fix, their PONGs would have passed the bound many times.
    expect(sent).toBeGreaterThanOrEqual(minimum);
    expect(server.samples.at(-1)!.stats.backpressureCloses ?? 0).toBe(0);
  }, 120_000);
}

test('TCP: 2,000 connections each sending a header that announces a large frame cost memory for the bytes sent', async () => {
  const server = await startServer('tcp');
  // A 5-byte header announcing ~1 MB, and one byte of body.
  const header = encodeFrame(new Uint8Array(1_000_000)).subarray(0, 6);
  const attackers = await Promise.all(Array.from({ length: 2_000 }, () => silentTcp(server.port)));
  for (const socket of attackers) socket.write(header);
  // Wait until the server read them all: its arrayBuffers settle (two equal samples in a row).
  let previous = -1;
  for (let i = 0; i < 100; i++) {
    const sample = await server.next();
    if (sample.ab === previous && i > 4) break;
    previous = sample.ab;
  }
  const peak = server.peak();
  // Before the fix: 2,000 x 64 KiB = 125 MiB reserved for 12 KB received.
  expect(peak.ab, `peak growth ${JSON.stringify(peak)}`).toBeLessThan(16 * MiB);
}, 60_000);

test('attach(wss) with ws defaults: a 60 MiB message is refused from its header, not buffered first', async () => {
  const server = await startServer('ws-attach');
  const client = new WebSocket(`ws://127.0.0.1:${server.port}`);
  sockets.add(client);
  client.on('error', () => {});
  await once(client, 'open');
  const closed = once(client, 'close');
  client.send(new Uint8Array(60 * MiB));
  const [code] = await closed;
  await server.next();
  await server.next();
  const peak = server.peak();
  expect(code).toBe(1009);
  // Refused by ws, still reported as the resume server's own refusal was.
  expect(server.samples.at(-1)!.stats.oversizedFrames).toBe(1);
  // Before the fix ws (maxPayload 100 MiB) buffered all 60 MiB before the resume server refused it.
  expect(peak.ab, `peak growth ${JSON.stringify(peak)}`).toBeLessThan(24 * MiB);
}, 60_000);
