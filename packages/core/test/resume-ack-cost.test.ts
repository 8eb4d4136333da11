// What the client does per ACK frame it receives (issue 13): at one message per connection per
// tick, the server's delayed ACK (ackDelayMs) goes out about once per message, so the client reads
// about one ACK frame per message it sends. It releases what the ack covers without making a list
// (ReplayBuffer.acknowledge's `each`) and tells the heartbeat through a fan-out, not a Subject.
import { type LinkData, MalformedFrameError } from '@lifeline/core';
import { encodeAck, ReplayBuffer, resumable } from '@lifeline/core/internal';
import { createMemoryTransport, waitFor } from '@lifeline/core/testing';
import { describe, expect, test } from 'vitest';
import { ScriptedServer } from './resume-peer.js';

describe('ReplayBuffer.acknowledge', () => {
  test('calls `each` with every released entry, in order, once the buffer is in its new state; returns the count', () => {
    const buffer = new ReplayBuffer<{ seq: number; size: number }>({ maxReplayMessages: 2 });
    for (let seq = 1; seq <= 5; seq++) buffer.push({ seq, size: 1 });
    expect(buffer.admittedEnd).toBe(2);
    const seen: { seq: number; acked: number; admittedEnd: number; size: number }[] = [];
    const count = buffer.acknowledge(2, (entry) =>
      seen.push({ seq: entry.seq, acked: buffer.acked, admittedEnd: buffer.admittedEnd, size: buffer.size }),
    );
    expect(count).toBe(2);
    // Released after the ack applied and the waiting entries were admitted.
    expect(seen).toEqual([
      { seq: 1, acked: 2, admittedEnd: 4, size: 3 },
      { seq: 2, acked: 2, admittedEnd: 4, size: 3 },
    ]);
    // A stale ack releases nothing.
    expect(buffer.acknowledge(1, () => expect.unreachable())).toBe(0);
    // `each` may push: the next entry is numbered after the ones held.
    const pushed: number[] = [];
    buffer.acknowledge(5, (entry) => {
      pushed.push(entry.seq);
      if (entry.seq === 3) buffer.push({ seq: buffer.nextSeq, size: 1 });
    });
    expect(pushed).toEqual([3, 4, 5]);
    expect(buffer.lastSeq).toBe(6);
    expect(buffer.size).toBe(1);
    expect(buffer.get(6)).toEqual({ seq: 6, size: 1 });
  });

  test('releases across the compaction of a long buffer (over 1,024 acknowledged), each entry once', () => {
    const buffer = new ReplayBuffer<{ seq: number; size: number }>({ maxReplayMessages: 4_000 });
    for (let seq = 1; seq <= 3_000; seq++) buffer.push({ seq, size: 1 });
    const released: number[] = [];
    for (let ack = 100; ack <= 3_000; ack += 100)
      buffer.acknowledge(ack, (entry) => released.push(entry.seq));
    expect(released).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1));
    expect(buffer.size).toBe(0);
  });
});

describe('the client reading ACK frames', () => {
  async function connect() {
    const transport = createMemoryTransport<LinkData>();
    let server: ScriptedServer | undefined;
    transport.connections$.subscribe((peer) => {
      server = new ScriptedServer(peer);
    });
    const client = resumable(transport);
    const link = await client.open();
    return { client, link, server: server!, transport };
  }

  test('one ACK per message: each releases its message (the send resolves), and each is a sign of life on pongs$', async () => {
    const { client, link, server } = await connect();
    const COUNT = 500;
    let pongs = 0;
    link.pongs$!.subscribe(() => pongs++);
    let resolved = 0;
    const sends = Array.from({ length: COUNT }, (_, i) => link.send(`m${i}`).then(() => resolved++));
    await waitFor(() => server.data.length === COUNT);
    for (let ack = 1; ack <= COUNT; ack++) {
      server.send(encodeAck(ack));
      expect(client.session).toMatchObject({ pending: COUNT - ack });
    }
    await Promise.all(sends);
    expect(resolved).toBe(COUNT);
    expect(pongs).toBe(COUNT);
    client.close();
  });

  test('a malformed ACK (a trailing byte, a padded varint) closes the link with MalformedFrameError and keeps the session', async () => {
    for (const bytes of [Uint8Array.of(0x20, 1, 0), Uint8Array.of(0x20, 0x81, 0)]) {
      const { client, link, server, transport } = await connect();
      const failure = new Promise<unknown>((resolve) => link.messages$.subscribe({ error: resolve }));
      const pending = link.send('kept');
      server.send(bytes);
      expect(await failure).toBeInstanceOf(MalformedFrameError);
      expect(transport.current!.open).toBe(false);
      expect(client.session).toMatchObject({ connected: false, pending: 1 });
      client.close();
      await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED_BY_USER' });
    }
  });
});
