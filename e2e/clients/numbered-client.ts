// Shared by the Node and Deno clients of the Deno resume server test: numbered messages both ways
// through a resumable HA connection, counted. Platform-free on purpose.
//   server -> client: "u0", "u1"... (the server's upstream, continued after its resume cursor)
//   client -> server: "<name>:0", "<name>:1"... one per upstream message received (lockstep, so
//   both directions span every server kill); the server logs what it is given.
import type { HAConnection, LinkData } from '@lifeline/core';
import { SequenceCounter, type SequenceCounts } from '@lifeline/core/testing';

/** What a numbered client counted. */
export interface NumberedClientCounts {
  readonly name: string;
  /** Server to client: the upstream messages, counted against `total`. */
  readonly upstream: SequenceCounts;
  /** Client to server: sends acknowledged and sends rejected. */
  readonly acked: number;
  readonly rejected: number;
  /** Links opened: the first plus one per recovery. */
  readonly links: number;
}

/**
 * Streams `total` messages each way through `conn` and resolves with the counts once every
 * upstream message arrived and every send settled; rejects after `timeoutMs` without progress.
 * `onProgress` runs on each upstream message (a driver waits on it, never on a sleep).
 */
export function runNumberedClient(
  conn: HAConnection<LinkData, LinkData>,
  name: string,
  total: number,
  options: { timeoutMs?: number; onProgress?: (received: number) => void } = {},
): Promise<NumberedClientCounts> {
  const upstream = new SequenceCounter();
  const decoder = new TextDecoder();
  let sent = 0;
  let acked = 0;
  let rejected = 0;
  let links = 0;
  return new Promise<NumberedClientCounts>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 30_000;
    let stall: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(
        () =>
          finish(
            new Error(
              `${name}: no progress for ${timeoutMs} ms (${upstream.uniqueCount} of ${total} received, ${acked} acked)`,
            ),
          ),
        timeoutMs,
      );
    };
    const events = conn.events$.subscribe((event) => {
      if (event.type === 'link-open') links++;
    });
    const messages = conn.messages$.subscribe({
      next: (message) => {
        const text = typeof message === 'string' ? message : decoder.decode(message as Uint8Array);
        if (!text.startsWith('u')) return;
        upstream.record(Number(text.slice(1)));
        arm();
        options.onProgress?.(upstream.uniqueCount);
        pump();
      },
      error: (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
    });
    const check = () => {
      if (upstream.uniqueCount >= total && acked + rejected === total) finish();
    };
    const pump = () => {
      while (sent < total && sent < upstream.uniqueCount) {
        conn.send(`${name}:${sent++}`).then(
          () => {
            acked++;
            check();
          },
          () => {
            rejected++;
            check();
          },
        );
      }
      check();
    };
    let finished = false;
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(stall);
      events.unsubscribe();
      messages.unsubscribe();
      if (error) reject(error);
      else resolve({ name, upstream: upstream.counts(total), acked, rejected, links });
    };
    if (conn.link !== undefined) links++;
    arm();
  });
}
