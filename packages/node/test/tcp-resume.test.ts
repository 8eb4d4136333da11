import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createResumeServer } from '@lifeline/node/server';
import { HATcpSocket } from '@lifeline/node/tcp';
import { FaultProxy } from '@lifeline/node/testing';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';

describe('HATcpSocket with resume', () => {
  it('a byte stream piped through resets arrives exactly once, in order: same length and SHA-256 both ways', async () => {
    const server = createResumeServer();
    cleanups.push(() => server.close());
    // The server echoes every message back on the same session.
    server.sessions$.subscribe((session) => {
      session.messages$.subscribe(({ data }) => {
        session.send(data).catch(() => {});
      });
    });
    const { port } = await server.listen({ transport: 'tcp' });
    const proxy = await FaultProxy.start({ target: { port } });
    cleanups.push(() => proxy.close());

    const socket = new HATcpSocket({
      port: proxy.port,
      mode: 'framed',
      resume: true,
      backoff: { initialDelayMs: 10, maxDelayMs: 100 },
      minUptimeMs: 50,
      maxAttemptsPerFailure: 50,
    });
    cleanups.push(() => socket.destroy());
    await once(socket, 'connect');

    const CHUNKS = 400;
    const CHUNK_BYTES = 1_000;
    const sentHash = createHash('sha256');
    const receivedHash = createHash('sha256');
    let received = 0;
    const allEchoed = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        receivedHash.update(chunk);
        received += chunk.length;
        if (received >= CHUNKS * CHUNK_BYTES) resolve();
      });
    });
    let resets = 0;
    for (let i = 0; i < CHUNKS; i++) {
      const chunk = Buffer.alloc(CHUNK_BYTES, i % 251);
      chunk.writeUInt32BE(i, 0);
      sentHash.update(chunk);
      if (!socket.write(chunk)) await once(socket, 'drain');
      if (i % 50 === 25) {
        proxy.resetAll();
        resets++;
      }
    }
    await allEchoed;
    expect(resets).toBe(8);
    expect(received).toBe(CHUNKS * CHUNK_BYTES);
    expect(receivedHash.digest('hex')).toBe(sentHash.digest('hex'));
    expect(socket.session?.stats.resumes).toBeGreaterThanOrEqual(1);
    expect(socket.session?.stats.sessionsLost).toBe(0);
  });
});

describe('HATcpSocket resume option, as HAWebSocket takes it', () => {
  it('resume() from @lifeline/core/resume is accepted with its options, and the session handle is flat from the start', async () => {
    const { resume } = await import('@lifeline/core/resume');
    const server = createResumeServer();
    cleanups.push(() => server.close());
    server.sessions$.subscribe((session) =>
      session.messages$.subscribe(({ data }) => void session.send(data)),
    );
    const { port } = await server.listen({ transport: 'tcp' });
    const socket = new HATcpSocket({ port, mode: 'framed', resume: resume({ ackEvery: 4 }) });
    cleanups.push(() => socket.destroy());
    expect(socket.session?.state).toBe('connecting');
    const events: string[] = [];
    socket.session?.events$.subscribe((event) => events.push(event.type));
    const echoed = once(socket, 'data');
    await once(socket, 'connect');
    socket.write(Buffer.from('hello'));
    expect(String((await echoed)[0])).toBe('hello');
    expect(socket.session?.id).toMatch(/^[0-9a-f]{32}$/);
    expect(socket.session?.state).toBe('open');
    expect(events).toEqual(['new']);
  });
});
