// The engine's own cost: messages through `attach()` over the in-memory transport against the
// same messages on a bare in-memory link, in the same run, alternated A B B A and repeated.
// The memory transport does almost nothing, so this isolates what the HA layer adds per message
// (queue entry, promise, write bookkeeping on the way out; one more hop on the way in).
//   pnpm bench attach
import { attach, type HAConnection, type Link } from '@lifeline/core';
import { createMemoryTransport, type MemoryPeer } from '@lifeline/core/testing';

const MESSAGES = 100_000;
const ROUNDS = 8;
/** Sends are issued in bursts of this many before waiting for the last one, as an app under load would. */
const BURST = 1_000;
const DEADLINE = performance.now() + 50_000;

interface Sample {
  perSecond: number;
  cpuMicrosPerMessage: number;
}

async function measure(fn: () => Promise<void>): Promise<Sample> {
  globalThis.gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await fn();
  const seconds = (performance.now() - start) / 1_000;
  const used = process.cpuUsage(cpu);
  return { perSecond: MESSAGES / seconds, cpuMicrosPerMessage: (used.user + used.system) / MESSAGES };
}

/** One side of the comparison: a way to send, a way to receive, and the server end. */
interface Subject {
  send(data: string): Promise<void>;
  subscribe(listener: (data: string) => void): void;
  peer: MemoryPeer<string>;
  close(): void;
}

async function haSubject(): Promise<Subject> {
  const transport = createMemoryTransport<string>();
  const conn: HAConnection<string, string> = attach(transport, { minUptimeMs: 0 });
  const peer = await transport.waitForPeer(1);
  await new Promise<void>((resolve) => {
    const sub = conn.state$.subscribe((state) => {
      if (state.status === 'open') {
        queueMicrotask(() => sub.unsubscribe());
        resolve();
      }
    });
  });
  return {
    send: (data) => conn.send(data),
    subscribe: (listener) => conn.messages$.subscribe(listener),
    peer,
    close: () => conn.close(),
  };
}

async function bareSubject(): Promise<Subject> {
  const transport = createMemoryTransport<string>();
  const link: Link<string, string> = await transport.open();
  return {
    send: (data) => link.send(data),
    subscribe: (listener) => link.messages$.subscribe({ next: listener, error: () => undefined }),
    peer: transport.current!,
    close: () => link.close(),
  };
}

/**
 * The bare link with a reaction on every send's promise: the least any layer that tells each
 * send's outcome apart must pay (one promise reaction per send), which the bare loop does not.
 */
async function observedBareSubject(): Promise<Subject> {
  const transport = createMemoryTransport<string>();
  const link: Link<string, string> = await transport.open();
  const onWritten = () => undefined;
  return {
    send: (data) => {
      const written = link.send(data);
      written.then(onWritten, onWritten);
      return written;
    },
    subscribe: (listener) => link.messages$.subscribe({ next: listener, error: () => undefined }),
    peer: transport.current!,
    close: () => link.close(),
  };
}

const payloads = Array.from({ length: BURST }, (_, i) => `message ${i} ${'x'.repeat(48)}`);

async function sending(make: () => Promise<Subject>): Promise<Sample> {
  const subject = await make();
  // The server end keeps every message it received; count through it.
  const sample = await measure(async () => {
    for (let sent = 0; sent < MESSAGES; ) {
      let last: Promise<void> | undefined;
      for (let i = 0; i < BURST && sent < MESSAGES; i++, sent++) last = subject.send(payloads[i]!);
      await last;
    }
  });
  if (subject.peer.received.length !== MESSAGES) {
    throw new Error(`sent ${MESSAGES}, server received ${subject.peer.received.length}`);
  }
  subject.close();
  return sample;
}

async function receiving(make: () => Promise<Subject>): Promise<Sample> {
  const subject = await make();
  let received = 0;
  subject.subscribe(() => {
    received++;
  });
  const sample = await measure(async () => {
    for (let sent = 0; sent < MESSAGES; ) {
      for (let i = 0; i < BURST && sent < MESSAGES; i++, sent++) subject.peer.send(payloads[i]!);
      // Delivery is synchronous; yield between bursts as a real event loop would.
      await Promise.resolve();
    }
  });
  if (received !== MESSAGES) throw new Error(`server sent ${MESSAGES}, client received ${received}`);
  subject.close();
  return sample;
}

async function alternate(a: () => Promise<Sample>, b: () => Promise<Sample>) {
  const as: Sample[] = [];
  const bs: Sample[] = [];
  for (let round = 0; round < ROUNDS && performance.now() < DEADLINE; round++) {
    as.push(await a());
    bs.push(await b());
    bs.push(await b());
    as.push(await a());
  }
  return { a: medianOf(as), b: medianOf(bs), runs: as.length };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianOf(samples: Sample[]): Sample {
  return {
    perSecond: median(samples.map((s) => s.perSecond)),
    cpuMicrosPerMessage: median(samples.map((s) => s.cpuMicrosPerMessage)),
  };
}

const fmt = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const row = (cells: (string | number)[]) => console.log(`| ${cells.join(' | ')} |`);

// Warm both paths up so the first measured round is not the JIT's.
await sending(bareSubject);
await sending(observedBareSubject);
await sending(haSubject);
await receiving(bareSubject);
await receiving(haSubject);

const results: [string, string, Awaited<ReturnType<typeof alternate>>][] = [
  [
    'send (client → server)',
    'bare link',
    await alternate(
      () => sending(bareSubject),
      () => sending(haSubject),
    ),
  ],
  [
    'send (client → server)',
    'bare link, each send observed',
    await alternate(
      () => sending(observedBareSubject),
      () => sending(haSubject),
    ),
  ],
  [
    'receive (server → client)',
    'bare link',
    await alternate(
      () => receiving(bareSubject),
      () => receiving(haSubject),
    ),
  ],
];

console.log(`${fmt(MESSAGES)} messages per run, bursts of ${BURST}, ${ROUNDS} x (A B B A), medians\n`);
row([
  'direction',
  'baseline (A)',
  'A msg/s',
  'attach() msg/s',
  'ratio',
  'A CPU µs/msg',
  'attach() CPU µs/msg',
  'runs each',
]);
row(['---', '---', '---', '---', '---', '---', '---', '---']);
for (const [name, baseline, { a: bare, b: ha, runs }] of results) {
  row([
    name,
    baseline,
    fmt(bare.perSecond),
    fmt(ha.perSecond),
    `${fmt(ha.perSecond / bare.perSecond, 2)}x`,
    fmt(bare.cpuMicrosPerMessage, 3),
    fmt(ha.cpuMicrosPerMessage, 3),
    runs,
  ]);
}
