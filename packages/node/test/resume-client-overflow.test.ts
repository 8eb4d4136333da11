// A client whose server stops reading overflows its output, drops the link and resumes the
// session on the next one: every send delivered once (counted), none lost, none duplicated.
// (The resume client's LinkOutput port is its ActiveLink since h13-ridle.) With a high-water mark
// below one message, each later link also overflows on its replay and delivers about one message:
// the session still completes, link by link, with nothing lost or duplicated.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { BackpressureError } from '@lifeline/core';
import { createResumeServer, type NodeResumeServer } from '@lifeline/node/server';
import { HAWebSocket, resume } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';

const MiB = 1024 * 1024;

test('a client whose server stops reading overflows, drops the link and resumes: 0 lost, 0 duplicated', async () => {
  const server: NodeResumeServer = createResumeServer({ maxFrameBytes: 2 * MiB });
  cleanups.push(() => server.close());
  const received = new Map<number, number>();
  let allIn!: () => void;
  const all = new Promise<void>((resolve) => {
    allIn = resolve;
  });
  const count = 16;
  server.sessions$.subscribe((session) =>
    session.messages$.subscribe(({ data }) => {
      const index = (data as Uint8Array)[0]! * 256 + (data as Uint8Array)[1]!;
      received.set(index, (received.get(index) ?? 0) + 1);
      if (received.size === count) allIn();
    }),
  );
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  // A proxy whose first connection stops reading from the client after the handshake.
  let connections = 0;
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const first = ++connections === 1;
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let forwarded = 0;
    client.on('data', (chunk) => {
      upstream.write(chunk);
      forwarded += chunk.length;
      if (first && forwarded > 8 * 1024) client.pause();
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        proxy.close(() => resolve());
      }),
  );
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const proxyPort = (proxy.address() as { port: number }).port;
  const ws = new HAWebSocket(`ws://127.0.0.1:${proxyPort}`, {
    queue: { maxBytes: 64 * MiB },
    resume: resume({ outputHighWaterBytes: 2 * MiB, maxReplayBytes: 64 * MiB, maxFrameBytes: 2 * MiB }),
  });
  cleanups.push(() => ws.close());
  let recovered = 0;
  ws.addEventListener('recovered', () => recovered++);
  const causes: unknown[] = [];
  ws.addEventListener('recovering', (event) => causes.push(event.detail.error));
  await new Promise((resolve) => ws.addEventListener('open', resolve, { once: true }));
  for (let i = 0; i < count; i++) {
    const frame = new Uint8Array(MiB);
    frame[0] = i >> 8;
    frame[1] = i & 255;
    ws.send(frame);
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, 40_000)))]);
  clearTimeout(timer);
  await new Promise((resolve) => setImmediate(resolve));
  const duplicated = [...received.values()].filter((n) => n > 1).length;
  expect({ received: received.size, duplicated, lost: count - received.size }).toEqual({
    received: count,
    duplicated: 0,
    lost: 0,
  });
  expect(connections).toBeGreaterThanOrEqual(2);
  expect(recovered).toBeGreaterThanOrEqual(1);
  expect(causes[0]).toBeInstanceOf(BackpressureError);
}, 60_000);
