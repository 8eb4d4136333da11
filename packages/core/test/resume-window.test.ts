import { type LinkData, ReplayWindowFullError } from '@lifeline/core';
import { encodeAck, encodeData, resumable } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, test } from 'vitest';
import { ScriptedServer } from './resume-peer.js';

async function openScripted(options: Parameters<typeof resumable>[1]) {
  const transport = createMemoryTransport<LinkData>();
  let server: ScriptedServer | undefined;
  transport.connections$.subscribe((peer) => {
    server = new ScriptedServer(peer);
  });
  const client = resumable(transport, options);
  const link = await client.open();
  link.messages$.subscribe();
  return { client, link, server: server! };
}

describe('replay window', () => {
  test("full window, policy 'wait': sends wait for acks and resolve in order", async () => {
    const { link, server, client } = await openScripted({ maxReplayMessages: 3 });
    const resolved: number[] = [];
    const sends = [1, 2, 3, 4, 5].map((n) => link.send(`m${n}`).then(() => resolved.push(n)));
    expect(server.data.map(([seq]) => seq)).toEqual([1, 2, 3]);
    expect(client.session).toMatchObject({ lastSent: 5, pending: 5 });

    server.send(encodeAck(2));
    await Promise.resolve();
    await Promise.resolve();
    expect(resolved).toEqual([1, 2]);
    expect(server.data.map(([seq]) => seq)).toEqual([1, 2, 3, 4, 5]);

    server.send(encodeAck(5));
    await Promise.all(sends);
    expect(resolved).toEqual([1, 2, 3, 4, 5]);
    expect(server.data.map(([, data]) => data)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    client.close();
  });

  test('full window by bytes waits too', async () => {
    const { link, server, client } = await openScripted({ maxReplayBytes: 10 });
    const sends = ['aaaa', 'bbbb', 'cccc'].map((text) => link.send(text));
    expect(server.data.map(([, data]) => data)).toEqual(['aaaa', 'bbbb']);
    server.send(encodeAck(1));
    await sends[0];
    expect(server.data.map(([, data]) => data)).toEqual(['aaaa', 'bbbb', 'cccc']);
    server.send(encodeAck(3));
    await Promise.all(sends);
    client.close();
  });

  test("full window, policy 'reject': the overflowing send rejects at once with ReplayWindowFullError", async () => {
    const { link, server, client } = await openScripted({ maxReplayMessages: 2, onWindowFull: 'reject' });
    const first = link.send('a');
    const second = link.send('b');
    const error = await link.send('c').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplayWindowFullError);
    expect(error).toMatchObject({ code: 'ERR_REPLAY_WINDOW_FULL', limit: 'messages' });
    // The refused message took no sequence number: the stream has no hole.
    expect(server.data.map(([seq]) => seq)).toEqual([1, 2]);
    server.send(encodeAck(2));
    await Promise.all([first, second]);
    const last = link.send('d');
    server.send(encodeAck(3));
    await last;
    expect(server.data).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'd'],
    ]);
    client.close();
  });

  test('a message larger than the byte window is refused in both modes', async () => {
    for (const onWindowFull of ['wait', 'reject'] as const) {
      const { link, client } = await openScripted({ maxReplayBytes: 8, onWindowFull });
      await expect(link.send('123456789')).rejects.toMatchObject({
        code: 'ERR_REPLAY_WINDOW_FULL',
        limit: 'bytes',
      });
      client.close();
    }
  });

  test('a resume answered with another session is a protocol error and a reported loss', async () => {
    const transport = createMemoryTransport<LinkData>();
    const servers: ScriptedServer[] = [];
    transport.connections$.subscribe((peer) => {
      servers.push(new ScriptedServer(peer, { resumed: servers.length > 0, lastReceived: 0 }));
    });
    const client = resumable(transport);
    const lost: unknown[] = [];
    client.session$.subscribe((event) => event.type === 'lost' && lost.push(event.unacknowledged));
    const link = await client.open();
    link.messages$.subscribe({ error: () => {} });
    servers[0]!.send(encodeData(1, 0, 'from server').frame);
    transport.current!.fail();
    const pending = link.send('while down');
    expect(client.session).toMatchObject({ connected: false, pending: 1, lastReceived: 1 });
    // Each scripted server makes up its own session id, so the resume is answered with another one.
    const second = await client.open().catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'ERR_PROTOCOL' });
    await expect(pending).rejects.toMatchObject({ code: 'ERR_SESSION_LOST', reason: 'protocol-error' });
    // Sent while no link was up: it never left the process.
    expect(lost).toEqual([[{ seq: 1, data: 'while down', maybeDelivered: false }]]);
    expect(client.session).toBeUndefined();
  });
});
