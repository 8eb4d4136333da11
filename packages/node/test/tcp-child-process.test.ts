import { type ConnectionState, LinkClosedError, LinkFailedError } from '@lifeline/core';
import { connectTcp } from '@lifeline/node/tcp';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { ChildTcpServer, recordReader, streamEchoes } from './support/tcp-servers.js';

const fast = {
  backoff: { initialDelayMs: 10, maxDelayMs: 100 },
  minUptimeMs: 50,
  maxAttemptsPerFailure: 200,
} as const;

describe.each(['framed', 'stream'] as const)(
  'TCP (%s) against a server process killed with SIGKILL',
  (mode) => {
    it('recovers when the process is killed mid-stream and restarted on the same port, streaming both ways', async () => {
      const server = new ChildTcpServer(mode);
      await server.start();
      cleanups.push(() => server.kill());
      const port = server.port;
      const conn = connectTcp({ port, mode, ...fast });
      cleanups.push(() => conn.close());
      const breakErrors: unknown[] = [];
      conn.events$.subscribe((event) => {
        if (event.type === 'link-down') breakErrors.push(event.error);
      });
      const attempts: number[] = [];
      conn.state$.subscribe((state: ConnectionState) => {
        if (state.status === 'recovering') attempts.push(state.attempt);
      });
      const TOTAL = 4_000;
      const WINDOW = 16;
      const KILLS = 3;
      const restarts: Promise<void>[] = [];
      const result = await streamEchoes(conn, {
        total: TOTAL,
        window: WINDOW,
        reader: mode === 'stream' ? recordReader : undefined,
        beforeSend: (n) => {
          if (restarts.length < KILLS && n === Math.round(((restarts.length + 1) * TOTAL) / (KILLS + 1))) {
            restarts.push(server.kill().then(() => server.start()));
          }
        },
      });
      await Promise.all(restarts);
      const counts = result.echoes.counts(TOTAL);
      console.info(`tcp ${mode} SIGKILL`, {
        ...counts,
        breaks: result.breaks,
        sentWhileDown: result.sentWhileDown,
        lostAfterWrite: result.lostAfterWrite.length,
        attempts: attempts.length,
      });
      expect(server.port).toBe(port);
      expect(server.starts).toBe(KILLS + 1);
      // A reconnect can land in the listen backlog of the dying process and be reset: at least one break per kill.
      expect(result.breaks).toBeGreaterThanOrEqual(KILLS);
      // A killed process's sockets are closed by the kernel: a FIN (close, no code) or a RST.
      for (const error of breakErrors) {
        expect(error instanceof LinkClosedError || error instanceof LinkFailedError, String(error)).toBe(
          true,
        );
      }
      // While the process was down, reconnects were refused and retried under the backoff.
      expect(attempts.length).toBeGreaterThan(KILLS);
      expect(result.resolved).toBe(TOTAL);
      expect(result.rejected).toBe(0);
      expect(counts.reordered).toBe(0);
      expect(result.lostInFlight).toEqual([]);
      expect(counts.lost).toBe(result.lostAfterWrite.length);
      expect(counts.lost).toBeLessThanOrEqual(WINDOW * result.breaks);
      expect(counts.duplicated).toBeLessThanOrEqual(WINDOW * result.breaks);
      expect(result.echoes.has(TOTAL - 1)).toBe(true);
    });
  },
);
