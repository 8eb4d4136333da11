import { attach, type LinkData } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { filter, firstValueFrom } from 'rxjs';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';

test("attach's heartbeat over a half-open resumable link: the link is abandoned, the session resumed, nothing lost", async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const client = resumable(transport, { ackDelayMs: 0 });
  const events: SessionEvent['type'][] = [];
  client.session$.subscribe((event) => events.push(event.type));
  const conn = attach(client, {
    heartbeat: { intervalMs: 10, timeoutMs: 40 },
    backoff: { initialDelayMs: 0 },
    minUptimeMs: 0,
  });
  try {
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    await conn.send('before');
    transport.current!.halfOpen();
    const during = conn.send('during'); // written into the void
    // The heartbeat times out, attach abandons the link (not close: that would end the session)...
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'recovering')));
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    // ...and the resumed session replays what the half-open link swallowed.
    await during;
    expect(peer.session.received.map((entry) => entry.data)).toEqual(['before', 'during']);
    expect(events).toEqual(['new', 'resumed']);
    expect(transport.peers).toHaveLength(2);
  } finally {
    conn.close();
    peer.stop();
  }
});

test('attach.close() ends the session: a CLOSE frame, and unacknowledged sends reject with ClosedByUserError', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const client = resumable(transport);
  const conn = attach(client);
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  await conn.send('acked');
  transport.current!.halfOpen();
  const pending = conn.send('never acked');
  conn.close();
  await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED_BY_USER' });
  expect(client.session).toBeUndefined();
  peer.stop();
});

test("a resumable link's ping() is a protocol PING; the PONG (and any ACK) shows on pongs$", async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const client = resumable(transport);
  const link = await client.open();
  link.messages$.subscribe();
  let pongs = 0;
  link.pongs$!.subscribe(() => pongs++);
  link.ping!();
  expect(peer.frames.at(-1)).toEqual({ type: 'ping' });
  expect(pongs).toBe(1);
  await link.send('acked'); // the ACK for it counts as a sign of life too
  expect(pongs).toBe(2);
  client.close();
  peer.stop();
});
