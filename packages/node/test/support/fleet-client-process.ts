// Client processes of the fleet test: `count` resumable sessions through the load balancer, each
// streaming slowly both ways (a message `c1, c2, ...` every `interval` ms, one timer for all), with
// the default reconnection policy (backoff with jitter). argv: balancer URL, count, interval (ms),
// upstream start (epoch ms), sessions opened per second.
//
// IPC to the parent: {"type":"opened"} once every session is open; {"type":"down","at":T} for each
// link lost, {"type":"resumed","at":T,"downAt":D} for each resume (D: when that session's link went down) (T: epoch ms, performance.timeOrigin + performance.now()); {"type":"progressed"} in
// answer to {"type":"progress","each":K} once every session moved K more messages each way;
// {"type":"report","sessions":[...]} in answer to {"type":"stop","target":N} once every session
// has every acknowledgement and the upstream up to u<N> (or after `timeoutMs`);
// {"type":"memory","rss":B,"heapUsed":B,"sessions":N} in answer to {"type":"memory"} (after a GC
// when run with --expose-gc).
import { attach, type HAConnection, type LinkData } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { wsTransport } from '@lifeline/node/ws';
import { NumberedStream } from './resume-tally.js';

const [url, countArg, intervalArg, startArg, rampArg] = process.argv.slice(2);
const count = Number(countArg);
const interval = Number(intervalArg);
const start = Number(startArg);
const ramp = Number(rampArg);

interface Session {
  conn: HAConnection<LinkData, LinkData>;
  id: string | undefined;
  sent: number;
  acknowledged: number;
  rejected: number;
  received: NumberedStream;
  lost: string[];
  news: number;
  resumes: number;
  open: boolean;
  /** The last link failure, for the diagnostics of a run that does not settle. */
  lastError: string | undefined;
  attempts: number;
  /** When the link last went down (epoch ms, as `at`), reported with the resume that follows. */
  downAt: number | undefined;
}

const sessions: Session[] = [];
let checks: (() => void)[] = [];
// A check walks every session: events schedule one walk, at most every 50 ms, not one per event.
let scheduled: ReturnType<typeof setTimeout> | undefined;
const recheck = () => {
  if (scheduled) return;
  scheduled = setTimeout(() => {
    scheduled = undefined;
    for (const check of checks) check();
  }, 50);
};
const send = (message: unknown) => process.send!(message);

function open(): Session {
  const transport = resumable(wsTransport(url!, { connectTimeoutMs: 10_000 }));
  const conn = attach(transport);
  const session: Session = {
    conn,
    id: undefined,
    sent: 0,
    acknowledged: 0,
    rejected: 0,
    received: new NumberedStream('u'),
    lost: [],
    news: 0,
    resumes: 0,
    open: false,
    lastError: undefined,
    attempts: 0,
    downAt: undefined,
  };
  conn.events$.subscribe((event) => {
    if (event.type === 'link-down') {
      session.downAt = performance.timeOrigin + performance.now();
      send({ type: 'down', at: session.downAt });
      const error = event.error as { name?: string; message?: string } | undefined;
      session.lastError = `${error?.name}: ${error?.message?.replace(/[0-9a-f]{32}/g, 'ID').slice(0, 80)}`;
    }
    if (event.type === 'link-open') session.attempts++;
  });
  transport.session$.subscribe((event) => {
    if (event.type === 'new') {
      session.news++;
      session.id ??= event.sessionId;
    } else if (event.type === 'resumed') {
      session.resumes++;
      send({ type: 'resumed', at: performance.timeOrigin + performance.now(), downAt: session.downAt });
    } else if (event.type === 'lost') session.lost.push(event.reason);
    recheck();
  });
  conn.state$.subscribe((state) => {
    session.open = state.status === 'open';
    recheck();
  });
  conn.messages$.subscribe((message) => {
    session.received.add(message);
    recheck();
  });
  return session;
}

let sending = true;
let pacer: ReturnType<typeof setInterval> | undefined;
function startPacer(): void {
  pacer = setInterval(() => {
    if (!sending) return;
    const due = Math.floor((Date.now() - start) / interval);
    for (const session of sessions) {
      // Each session's own phase: the sends spread over the interval instead of one burst.
      for (let bounded = 0; session.sent < due && bounded < 10; bounded++) {
        session.conn.send(`c${++session.sent}`).then(
          () => {
            session.acknowledged++;
            recheck();
          },
          () => {
            session.rejected++;
            recheck();
          },
        );
      }
    }
  }, 100);
}

process.on(
  'message',
  async (message: { type: string; each?: number; target?: number; timeoutMs?: number }) => {
    if (message.type === 'progress') {
      const marks = sessions.map((session) => [session.acknowledged, session.received.received] as const);
      await waitUntil(
        () =>
          sessions.every(
            (session, i) =>
              session.acknowledged - marks[i]![0] >= message.each! &&
              session.received.received - marks[i]![1] >= message.each!,
          ),
        message.timeoutMs ?? 300_000,
      );
      send({ type: 'progressed' });
    } else if (message.type === 'stop') {
      sending = false;
      clearInterval(pacer);
      const target = message.target!;
      await waitUntil(
        () =>
          sessions.every(
            (session) =>
              session.acknowledged + session.rejected === session.sent && session.received.received >= target,
          ),
        message.timeoutMs ?? 300_000,
      );
      send({
        type: 'report',
        sessions: sessions.map((session) => ({
          id: session.id,
          sent: session.sent,
          acknowledged: session.acknowledged,
          rejected: session.rejected,
          down: session.received.tally(target),
          lost: session.lost,
          news: session.news,
          resumes: session.resumes,
        })),
      });
    } else if (message.type === 'status') {
      const states: Record<string, number> = {};
      const errors: Record<string, number> = {};
      for (const session of sessions) {
        const state = session.conn.state$.value.status;
        states[state] = (states[state] ?? 0) + 1;
        if (!session.open && session.lastError)
          errors[session.lastError] = (errors[session.lastError] ?? 0) + 1;
      }
      send({
        type: 'status',
        states,
        errors,
        lost: sessions.filter((session) => session.lost.length > 0).length,
      });
    } else if (message.type === 'memory') {
      // After a GC where the parent gave --expose-gc: what the sessions hold, not garbage.
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      send({ type: 'memory', rss: memory.rss, heapUsed: memory.heapUsed, sessions: sessions.length });
    } else if (message.type === 'close') {
      for (const session of sessions) session.conn.close();
      process.disconnect();
    }
  },
);
// Opened at `ramp` per second, as clients arriving, not all in one instant.
await new Promise<void>((resolve) => {
  const opener = setInterval(() => {
    for (let i = 0; i < Math.max(1, ramp / 10) && sessions.length < count; i++) sessions.push(open());
    if (sessions.length >= count) {
      clearInterval(opener);
      resolve();
    }
  }, 100);
});
await waitUntil(() => sessions.every((session) => session.open && session.id !== undefined), 600_000);
send({ type: 'opened' });

startPacer();

process.on('disconnect', () => {
  for (const session of sessions) session.conn.close();
  setTimeout(() => process.exit(0), 1_000).unref();
});

/** Resolves when `check` holds (re-checked on every event), or after `timeoutMs` regardless. */
function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      checks = checks.filter((entry) => entry !== poke);
      resolve();
    };
    const poke = () => {
      if (check()) done();
    };
    const timer = setTimeout(done, timeoutMs);
    checks.push(poke);
    poke();
  });
}
