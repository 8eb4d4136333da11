// The server application of the durable tests: it records every client message it is given and
// relays an upstream log to each session, continuing a taken-over session after its resumeCursor.
// Used by the server processes (durable-server-process.ts) and by in-process servers.
import { DEFAULT_MAX_REPLAY_MESSAGES } from '@lifeline/core/internal';
import type { ResumeServer } from '@lifeline/node/server';

/** The upstream log: `total` events `u1..uN`, event n due at `start + n / rate` (ms clock). */
export interface Upstream {
  readonly total: number;
  readonly rate: number;
  readonly start: number;
}

/** What the application records (see durable-harness.ts for the process log format). */
export type AppRecord =
  | { t: 'session'; s: string; from: number; restored: boolean }
  | { t: 'in'; s: string; q: number; d: string; r?: 1 }
  | { t: 'store'; s: string; code: string; m?: string }
  | { t: 'refused'; s: string; code: string };

export function relayApp(server: ResumeServer, upstream: Upstream, record: (line: AppRecord) => void): void {
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ seq, data, redelivered }) =>
      record({ t: 'in', s: session.id, q: seq, d: String(data), ...(redelivered && { r: 1 }) }),
    );
    // A new session starts at the beginning; a taken-over one right after the last appended message.
    let next = Number(session.resumeCursor ?? 0) + 1;
    record({ t: 'session', s: session.id, from: next, restored: session.resumeCursor !== undefined });
    // Sends beyond the replay window wait, and past `maxWaitingMessages` they reject: the pump keeps
    // to the window, so every event it hands over is taken.
    const window = server.options.maxReplayMessages ?? DEFAULT_MAX_REPLAY_MESSAGES;
    const pump = setInterval(() => {
      const due = Math.min(
        upstream.total,
        Math.floor(((Date.now() - upstream.start) * upstream.rate) / 1_000),
      );
      // Bounded per tick, and by what the client has not acknowledged yet.
      for (let sent = 0; next <= due && sent < 2_000 && session.pending < window; sent++, next++) {
        session.send(`u${next}`, { cursor: String(next) }).catch(() => {});
      }
      if (next > upstream.total) clearInterval(pump);
    }, 5);
    session.events$.subscribe({
      next: (event) => {
        if (event.type === 'close' && event.by === 'store') {
          const code = (event.error as { code?: string } | undefined)?.code ?? 'unknown';
          record({ t: 'store', s: session.id, code, m: (event.error as Error | undefined)?.message });
        }
      },
      complete: () => clearInterval(pump),
    });
  });
}

/**
 * The request/response application: each client message `cN` is answered with `eN`, and the
 * answer's cursor is the request's seq. A session taken over after a crash skips a request it is
 * handed again whose seq is at most its resumeCursor: that one's answer is in the store already
 * (the crash came after the answer was stored, before the request's acknowledgement was).
 */
export function echoApp(server: ResumeServer, record: (line: AppRecord) => void): void {
  server.sessions$.subscribe((session) => {
    let answered = Number(session.resumeCursor ?? 0);
    record({ t: 'session', s: session.id, from: answered + 1, restored: session.resumeCursor !== undefined });
    session.messages$.subscribe(({ seq, data, redelivered }) => {
      record({ t: 'in', s: session.id, q: seq, d: String(data), ...(redelivered && { r: 1 }) });
      if (seq <= answered) return;
      answered = seq;
      session.send(`e${String(data).slice(1)}`, { cursor: String(seq) }).catch((error: unknown) => {
        // A refusal is recorded, never dropped silently; a session that ended rejects its sends too.
        const code = (error as { code?: string } | undefined)?.code ?? 'unknown';
        if (!session.closed) record({ t: 'refused', s: session.id, code });
      });
    });
    session.events$.subscribe((event) => {
      if (event.type === 'close' && event.by === 'store') {
        const code = (event.error as { code?: string } | undefined)?.code ?? 'unknown';
        record({ t: 'store', s: session.id, code });
      }
    });
  });
}
