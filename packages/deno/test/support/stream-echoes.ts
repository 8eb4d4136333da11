import type { HAConnection } from '@lifeline/core';
import { SequenceCounter } from '@lifeline/core/testing';

/** How a stream test writes sequence number `n` and reads one back from a message. */
export interface EchoCodec<In, Out> {
  encode(n: number): Out;
  /** The sequence numbers in a message (none for messages that are not echoes). */
  decode(message: In): number[];
}

/**
 * Streams 0..total-1 through `conn` against an echo server, keeping at most `window` sends ahead of
 * the highest echo seen (reads interleave with writes, as in a real app), and counts the echoes.
 * `beforeSend(n)` runs before message n is sent: tests inject faults there. Bounded: fails when no
 * echo arrives for `stallMs`.
 */
export async function streamEchoes<In, Out>(
  conn: HAConnection<In, Out>,
  codec: EchoCodec<In, Out>,
  total: number,
  window: number,
  beforeSend: (sent: number) => void | Promise<void>,
  stallMs = 20_000,
): Promise<SequenceCounter> {
  const echoes = new SequenceCounter();
  let highest = -1;
  let sentSoFar = 0;
  let wake: (() => void) | undefined;
  // Plain mode loses the sends a dead server had read but not echoed, so a recovered link also
  // opens the window: the sender does not wait for echoes that can never come.
  const links = conn.events$.subscribe((event) => {
    if (event.type === 'link-open' && event.recovered) {
      highest = Math.max(highest, sentSoFar - 1);
      wake?.();
    }
  });
  const messages = conn.messages$.subscribe((message) => {
    for (const n of codec.decode(message)) {
      echoes.record(n);
      highest = Math.max(highest, n);
    }
    wake?.();
  });
  const progress = (what: () => string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(what())), stallMs);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  try {
    for (let sent = 0; sent < total; sent++) {
      while (sent - highest > window)
        await progress(() => `no echo progress at ${sent} (highest ${highest})`);
      await beforeSend(sent);
      sentSoFar = sent + 1;
      conn.send(codec.encode(sent)).catch(() => {});
    }
    while (!echoes.has(total - 1)) await progress(() => `last echo missing (highest ${highest})`);
  } finally {
    messages.unsubscribe();
    links.unsubscribe();
  }
  return echoes;
}

/** Text messages "n", echoed as "n" or "echo:n"; "tick:k" messages are not echoes. */
export const textCodec: EchoCodec<unknown, string> = {
  encode: (n) => String(n),
  decode(message) {
    const text = String(message);
    if (text.startsWith('tick:')) return [];
    const n = Number(text.startsWith('echo:') ? text.slice(5) : text);
    return Number.isNaN(n) ? [] : [n];
  },
};

/** Framed binary messages: each a 4-byte big-endian sequence number. */
export const u32FrameCodec: EchoCodec<Uint8Array, Uint8Array> = {
  encode(n) {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, n);
    return bytes;
  },
  decode: (message) => [new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(0)],
};

/**
 * A byte stream of 4-byte big-endian sequence numbers, cut anywhere by the network: reassembles
 * the numbers across chunks. A new link starts a new stream (`reset()`), since a link that broke
 * may have delivered part of a number.
 */
export function u32StreamCodec(): EchoCodec<Uint8Array, Uint8Array> & { reset(): void } {
  let partial = new Uint8Array(0);
  return {
    encode: u32FrameCodec.encode,
    decode(chunk) {
      const bytes = new Uint8Array(partial.length + chunk.length);
      bytes.set(partial);
      bytes.set(chunk, partial.length);
      const whole = bytes.length - (bytes.length % 4);
      const view = new DataView(bytes.buffer);
      const numbers: number[] = [];
      for (let offset = 0; offset < whole; offset += 4) numbers.push(view.getUint32(offset));
      partial = bytes.slice(whole);
      return numbers;
    },
    reset() {
      partial = new Uint8Array(0);
    },
  };
}
