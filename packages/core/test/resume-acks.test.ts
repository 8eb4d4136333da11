import type { LinkData } from '@lifeline/core';
import { encodeData, MAX_TIMER_MS, resumable } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, test } from 'vitest';
import { ScriptedServer } from './resume-peer.js';

async function setup(ackEvery: number, ackDelayMs: number) {
  const scheduler = new VirtualTimeScheduler();
  const transport = createMemoryTransport<LinkData>();
  let server: ScriptedServer | undefined;
  transport.connections$.subscribe((peer) => {
    server = new ScriptedServer(peer);
  });
  const client = resumable(transport, { ackEvery, ackDelayMs, scheduler });
  const link = await client.open();
  const received: LinkData[] = [];
  link.messages$.subscribe((message) => received.push(message));
  /** Runs every timer due up to `ms` from the start. */
  const advanceTo = (ms: number) => {
    scheduler.maxFrames = ms;
    scheduler.flush();
    // Timers set from now on count from `ms` (flush leaves the frame at the last timer run).
    scheduler.frame = ms;
  };
  return { client, link, server: server!, received, advanceTo };
}

describe('acknowledgements', () => {
  test(`a standalone ACK goes out after ackEvery messages, at once`, async () => {
    const { server, received, client } = await setup(4, 1_000);
    for (let seq = 1; seq <= 3; seq++) server.send(encodeData(seq, 0, `m${seq}`).frame);
    expect(received).toHaveLength(3);
    expect(server.acks).toEqual([]);
    server.send(encodeData(4, 0, 'm4').frame);
    expect(server.acks).toEqual([4]);
    for (let seq = 5; seq <= 12; seq++) server.send(encodeData(seq, 0, `m${seq}`).frame);
    expect(server.acks).toEqual([4, 8, 12]);
    client.close();
  });

  test('a standalone ACK goes out ackDelayMs after the first unacknowledged delivery', async () => {
    const { server, advanceTo, client } = await setup(32, 1_000);
    server.send(encodeData(1, 0, 'm1').frame);
    server.send(encodeData(2, 0, 'm2').frame);
    advanceTo(999);
    expect(server.acks).toEqual([]);
    advanceTo(1_000);
    expect(server.acks).toEqual([2]);
    advanceTo(5_000);
    expect(server.acks).toEqual([2]);
    client.close();
  });

  test('acks ride on outgoing DATA frames, and then no standalone ACK is sent', async () => {
    const { server, link, advanceTo, client } = await setup(32, 1_000);
    server.send(encodeData(1, 0, 'm1').frame);
    server.send(encodeData(2, 0, 'm2').frame);
    void link.send('reply').catch(() => {});
    const data = server.frames.filter((frame) => frame.type === 'data');
    expect(data).toEqual([{ type: 'data', seq: 1, ack: 2, data: 'reply', lazy: false }]);
    advanceTo(10_000);
    expect(server.acks).toEqual([]);
    client.close();
  });

  test('messages flagged "the ack may wait" are acknowledged 20 x ackDelayMs later, or at once by an unflagged one', async () => {
    const { server, advanceTo, client } = await setup(32, 100);
    server.send(encodeData(1, 0, 'm1', false, true).frame);
    server.send(encodeData(2, 0, 'm2', false, true).frame);
    advanceTo(1_999);
    expect(server.acks).toEqual([]);
    advanceTo(2_000);
    expect(server.acks).toEqual([2]);
    // An unflagged message cuts the longer timer short: ackDelayMs after it, for everything.
    server.send(encodeData(3, 0, 'm3', false, true).frame);
    advanceTo(2_050);
    server.send(encodeData(4, 0, 'm4').frame);
    advanceTo(2_149);
    expect(server.acks).toEqual([2]);
    advanceTo(2_150);
    expect(server.acks).toEqual([2, 4]);
    advanceTo(10_000);
    expect(server.acks).toEqual([2, 4]);
    client.close();
  });

  test('the longer delay stops under the longest timer (2^31 - 1 ms): above it a timer fires at once', async () => {
    // ackDelayMs may be up to 2^31 - 1; 20 times more overflows setTimeout, which Node and browsers
    // run after 1 ms (Node also warns): the ack that may wait would go at once, not later.
    const max = MAX_TIMER_MS;
    const { server, advanceTo, client } = await setup(32, 200_000_000);
    server.send(encodeData(1, 0, 'm1', false, true).frame);
    advanceTo(max - 1);
    expect(server.acks).toEqual([]);
    advanceTo(max);
    expect(server.acks).toEqual([1]);
    client.close();
  });

  test('flagged messages still count toward ackEvery', async () => {
    const { server, client } = await setup(4, 100);
    for (let seq = 1; seq <= 4; seq++) server.send(encodeData(seq, 0, `m${seq}`, false, true).frame);
    expect(server.acks).toEqual([4]);
    client.close();
  });

  test('duplicates are dropped and not delivered twice', async () => {
    const { server, received, client } = await setup(32, 1_000);
    server.send(encodeData(1, 0, 'm1').frame);
    server.send(encodeData(1, 0, 'm1').frame);
    server.send(encodeData(2, 0, 'm2').frame);
    expect(received).toEqual(['m1', 'm2']);
    expect(client.stats.duplicatesDropped).toBe(1);
    client.close();
  });
});
