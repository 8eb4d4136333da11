import { attach, type LinkData } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, onTestFinished, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';

/** Counts a received stream against the expected 1..n sequence. */
function tally(received: readonly string[], prefix: string, sent: number) {
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  let last = 0;
  for (const message of received) {
    const n = Number(message.slice(prefix.length));
    if (seen.has(n)) duplicated++;
    else seen.add(n);
    if (n < last) outOfOrder++;
    last = n;
  }
  let lost = 0;
  for (let n = 1; n <= sent; n++) if (!seen.has(n)) lost++;
  return { sent, received: received.length, lost, duplicated, outOfOrder };
}

describe('resumable over the memory transport', () => {
  test('exactly once and in order, both ways, through 100 link failures', async () => {
    const transport = createMemoryTransport<LinkData>();
    const peer = new TestResumePeer(transport, { ackDelayMs: 1 });
    const client = resumable(transport, { ackDelayMs: 1 });
    const events: SessionEvent['type'][] = [];
    client.session$.subscribe((event) => events.push(event.type));
    const conn = attach(client, {
      backoff: { initialDelayMs: 0 },
      minUptimeMs: 0,
      queue: { maxMessages: 100_000 },
    });
    onTestFinished(() => peer.stop());
    onTestFinished(() => conn.close());
    const fromServer: string[] = [];
    conn.messages$.subscribe((message) => fromServer.push(String(message)));

    const clientSends: Promise<void>[] = [];
    const serverSends: Promise<void>[] = [];
    let clientCount = 0;
    let serverCount = 0;
    const burst = (n: number) => {
      for (let i = 0; i < n; i++) {
        clientSends.push(conn.send(`c${++clientCount}`));
        // The server sends on the session, whether or not a link is up.
        if (peer.sessions.size > 0) serverSends.push(peer.session.endpoint.send(`s${++serverCount}`));
      }
    };

    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    for (let failure = 1; failure <= 100; failure++) {
      burst(7);
      const link = transport.current!;
      // Every other failure first goes half-open: frames written then vanish, as on a real network.
      if (failure % 2 === 0) {
        link.halfOpen();
        burst(5);
      }
      link.fail();
      burst(3);
      await transport.waitForPeer(failure + 1);
      await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    }
    burst(10);
    await Promise.all(clientSends);
    await Promise.all(serverSends);

    const upstream = tally(
      peer.session.received.map((entry) => String(entry.data)),
      'c',
      clientCount,
    );
    const downstream = tally(fromServer, 's', serverCount);
    expect(upstream).toEqual({
      sent: clientCount,
      received: clientCount,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(downstream).toEqual({
      sent: serverCount,
      received: serverCount,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(clientCount).toBe(100 * 10 + 50 * 5 + 10);
    expect(peer.session.received.map((entry) => entry.seq)).toEqual(
      Array.from({ length: clientCount }, (_, i) => i + 1),
    );
    expect(events.filter((type) => type === 'resumed')).toHaveLength(100);
    expect(events.filter((type) => type === 'lost')).toHaveLength(0);
    expect(transport.peers).toHaveLength(101);
    // Half-open links lost frames in flight, so something was replayed and some duplicates dropped.
    expect(client.stats.replayed).toBeGreaterThan(0);
    expect(peer.errors).toEqual([]);
  });
});
