/**
 * `socket.connection.close()` (and `.detach()`) called on an `HAWebSocket` directly, instead of
 * `socket.close()`: the same end as the socket's own close. Counted at a real server (`ws`, and a
 * resume server): ten sends (five `send()`, five `sendAsync()`) made while connecting, written on
 * the open link and not yet confirmed, or confirmed, then the close; the tally of each closer is
 * the tally of `socket.close()`: every `sendAsync` settled once (resolved when written before the
 * close, else rejected with `ClosedByUserError`), no `dropped` event (docs/websocket.md, Events:
 * "Not after your own close()"), one `close` event with the code and reason given (1000 and ''
 * by default; 1005 for a detach, whose link is handed back open), no `error`, CLOSING at once
 * and a later `send()` refused with `InvalidStateError`. Before, `connection.close()` fired
 * `dropped` (with `ClosedByUserError`) for each `send()` still queued, left `readyState` OPEN
 * until the close event (a `send()` there threw `ClosedByUserError`) and reported 1005 and no
 * reason whatever code it was given; `detach()` fired `dropped` with `DetachedError`.
 */
import { once } from 'node:events';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket } from '@lifeline/node/ws';
import { describe, expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { countingWsServer } from './support/ws-servers.js';

const WAIT = { timeoutMs: 15_000 };
const EACH = 5;

type Kind = 'ws' | 'resume';
type Phase = 'connecting' | 'written' | 'confirmed';
type Socket = InstanceType<typeof HAWebSocket>;

interface Server {
  url: string;
  /** What the server's application received, in order. */
  received: string[];
  /** Connections (`ws`) or sessions (resume) the server saw end. */
  ended(): number;
}

/** A ws server on 127.0.0.1:0 that records what it receives and counts the connections that close. */
async function wsServer(): Promise<Server> {
  const { url, received, closed } = await countingWsServer();
  return { url, received, ended: closed };
}

/** A resume server on 127.0.0.1:0 that records what its sessions receive and counts the sessions that end. */
async function resumeServer(): Promise<Server> {
  const server = createResumeServer();
  const received: string[] = [];
  let ended = 0;
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe((message) => received.push(String(message.data)));
    session.events$.subscribe((event) => {
      if (event.type === 'close') ended++;
    });
  });
  const { url } = await server.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => server.close({ goAway: false }));
  return { url, received, ended: () => ended };
}

const CLOSERS = {
  'socket.close()': (socket: Socket) => socket.close(),
  'connection.close()': (socket: Socket) => socket.connection.close(),
  'socket.close(4000, "bye")': (socket: Socket) => socket.close(4000, 'bye'),
  'connection.close(4000, "bye")': (socket: Socket) => socket.connection.close(4000, 'bye'),
  'connection.detach()': (socket: Socket) => socket.connection.detach(),
} as const;
type Closer = keyof typeof CLOSERS;

const nameOf = (error: unknown) => (error instanceof Error ? error.name : String(error));
const add = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

/** Opens a socket to a new server, sends ten messages in `phase`, closes it with `closer`, and counts. */
async function run(kind: Kind, phase: Phase, closer: Closer) {
  const server = kind === 'ws' ? await wsServer() : await resumeServer();
  const socket = new HAWebSocket(server.url, kind === 'resume' ? { resume: true } : {});
  cleanups.push(() => socket.close());
  const tally = {
    sent: 0,
    resolved: 0,
    rejected: {} as Record<string, number>,
    settled: 0,
    dropped: {} as Record<string, number>,
    errors: 0,
    closes: [] as { code: number; reason: string; wasClean: boolean }[],
    bufferedAtClose: -1,
    readyStateAfterClose: -1,
    sendAfterClose: '',
  };
  socket.addEventListener('dropped', (event) => add(tally.dropped, nameOf(event.detail.error)));
  socket.addEventListener('error', () => tally.errors++);
  socket.addEventListener('close', ({ code, reason, wasClean }) =>
    tally.closes.push({ code, reason, wasClean }),
  );
  const sendAll = () => {
    for (let i = 0; i < EACH; i++) {
      tally.sent++;
      socket.send(`send ${i}`);
    }
    for (let i = 0; i < EACH; i++) {
      tally.sent++;
      socket.sendAsync(`sendAsync ${i}`).then(
        () => {
          tally.resolved++;
          tally.settled++;
        },
        (error: unknown) => {
          add(tally.rejected, nameOf(error));
          tally.settled++;
        },
      );
    }
  };
  if (phase !== 'connecting') await once(socket, 'open');
  sendAll();
  if (phase === 'confirmed') {
    await waitFor(() => tally.settled === EACH && socket.bufferedAmount === 0, {
      ...WAIT,
      what: 'every send confirmed',
    });
  }
  tally.bufferedAtClose = socket.bufferedAmount;
  const detached = CLOSERS[closer](socket);
  tally.readyStateAfterClose = socket.readyState;
  try {
    socket.send('after the close');
    tally.sendAfterClose = 'taken';
  } catch (error) {
    tally.sendAfterClose = nameOf(error);
  }
  await waitFor(() => tally.settled === EACH && tally.closes.length > 0, {
    ...WAIT,
    what: 'every sendAsync settled and the close event',
    state: () => tally,
  });
  if (detached) {
    // The link handed back stays open: what was written on it arrives, then it is closed here.
    await waitFor(() => server.received.length === tally.sent, {
      ...WAIT,
      what: 'the sends on the detached link',
    });
    detached.close();
  }
  // The server saw the end: every message written before it is in.
  if (phase !== 'connecting')
    await waitFor(() => server.ended() === 1, { ...WAIT, what: 'the end at the server' });
  // A second close event, or a late dropped, would come within a task.
  await new Promise((resolve) => setImmediate(resolve));
  return { ...tally, received: server.received.length };
}

/** What `socket.close(code, reason)` gives (see the header); `written` under resume is left to the comparison. */
function expected(kind: Kind, phase: Phase, closer: Closer) {
  const detach = closer === 'connection.detach()';
  const withCode = closer.includes('4000');
  const arrived = phase !== 'connecting' && (kind === 'ws' || phase === 'confirmed' || detach);
  return {
    sent: 2 * EACH,
    resolved: arrived ? EACH : 0,
    rejected: arrived ? {} : { [detach ? 'DetachedError' : 'ClosedByUserError']: EACH },
    settled: EACH,
    dropped: {},
    errors: 0,
    closes: [{ code: detach ? 1005 : withCode ? 4000 : 1000, reason: withCode ? 'bye' : '', wasClean: true }],
    // Text counts its UTF-8 bytes: "send 0" and "sendAsync 0" (and the nine more).
    bufferedAtClose: phase === 'confirmed' ? 0 : EACH * 6 + EACH * 11,
    readyStateAfterClose: 2,
    sendAfterClose: 'InvalidStateError',
    received: arrived ? 2 * EACH : 0,
  };
}

describe.each(['ws', 'resume'] as const)('with a %s server', (kind) => {
  it.each(['connecting', 'written', 'confirmed'] as const)(
    'sends made while %s: the connection closed or detached directly ends as socket.close() does',
    async (phase) => {
      const tallies: Record<string, unknown> = {};
      const wanted: Record<string, unknown> = {};
      for (const closer of Object.keys(CLOSERS) as Closer[]) {
        tallies[closer] = await run(kind, phase, closer);
        wanted[closer] = expected(kind, phase, closer);
      }
      if (kind === 'resume' && phase === 'written') {
        // A session closed in the tick its sends were made in: whatever reaches the server, each
        // closer ends it as socket.close() does (the same tally but the close event's code).
        const base = tallies['socket.close()'] as ReturnType<typeof expected>;
        for (const closer of Object.keys(CLOSERS) as Closer[]) {
          if (closer === 'connection.detach()') continue;
          wanted[closer] = { ...base, closes: expected(kind, phase, closer).closes };
        }
        expect(base.resolved + (base.rejected.ClosedByUserError ?? 0)).toBe(EACH);
        expect(base.received).toBeGreaterThanOrEqual(base.resolved);
      }
      expect(tallies).toEqual(wanted);
    },
  );
});
