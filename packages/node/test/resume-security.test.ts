import { attach, LifelineError, type SessionRejectedError } from '@lifeline/core';
import {
  bytesToHex,
  encodeAck,
  encodeHello,
  encodePing,
  newSessionId,
  newSessionToken,
  resumable,
} from '@lifeline/core/internal';
import { createResumeServer, type NodeResumeServer, type ResumeServerEvent } from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { RawResumeClient } from './support/raw-resume-client.js';

let server: NodeResumeServer;
let url: string;
let events: ResumeServerEvent[];
const raws: RawResumeClient[] = [];

beforeEach(async () => {
  server = createResumeServer({ handshakeTimeoutMs: 300 });
  events = [];
  server.events$.subscribe((event) => events.push(event));
  // Messages wait (unacknowledged) until the application reads them: read everything.
  server.sessions$.subscribe((session) => session.messages$.subscribe());
  ({ url } = await server.listen());
});
afterEach(async () => {
  await Promise.all(raws.splice(0).map((raw) => raw.close()));
  await server.close();
});

async function raw(): Promise<RawResumeClient> {
  const client = await RawResumeClient.connect(url);
  raws.push(client);
  return client;
}

/** A new session by hand: returns its id and first token, confirmed. */
async function handshake(client: RawResumeClient) {
  client.send(encodeHello(undefined, 0));
  const welcome = (await client.next('welcome'))!;
  client.send(encodeAck(0));
  return { id: welcome.id, token: welcome.token };
}

/** Every way a token could be written out: hex, base64, the decimal byte list JSON uses. */
function leaks(text: string, token: Uint8Array): boolean {
  return (
    text.includes(bytesToHex(token)) ||
    text.includes(Buffer.from(token).toString('base64')) ||
    text.includes([...token].join(',')) ||
    text.includes(Object.values(JSON.parse(JSON.stringify(token))).join(','))
  );
}

describe('session tokens', () => {
  test('a wrong token is rejected and counted, and never disturbs the session owner', async () => {
    const owner = attach(resumable(wsTransport(url)));
    const ownerReceived: string[] = [];
    owner.messages$.subscribe((message) => ownerReceived.push(String(message)));
    try {
      await firstValueFrom(owner.state$.pipe(filter((state) => state.status === 'open')));
      const session = [...server.sessions.values()][0]!;
      const ownerId = Uint8Array.from(Buffer.from(session.id, 'hex'));
      // Another client tries the owner's session with a token of its own.
      const intruder = await raw();
      const guess = newSessionToken();
      intruder.send(encodeHello({ id: ownerId, token: guess }, 0));
      const reject = await intruder.next('reject');
      expect(reject).toMatchObject({ code: 'invalid-token' });
      expect(await intruder.closed).toBe(1008);
      expect(server.stats).toMatchObject({ invalidTokens: 1, replayedTokens: 0, rejected: 1 });
      // The owner's link was never touched: it still sends and receives on the same session.
      await owner.send('still here');
      await session.send('and so am I');
      expect(ownerReceived).toEqual(['and so am I']);
      expect(session.connected).toBe(true);
      for (const event of events) {
        const error = 'error' in event ? event.error : undefined;
        expect(leaks(String(error), guess)).toBe(false);
        expect(leaks(JSON.stringify(error), guess)).toBe(false);
      }
    } finally {
      owner.close();
    }
  });

  test('a token rotated away from is refused as replayed; before confirmation it still works', async () => {
    const first = await raw();
    const { id, token: token1 } = await handshake(first);
    await first.close();

    // Resume with token1: the server rotates to token2. This client never confirms it...
    const second = await raw();
    second.send(encodeHello({ id, token: token1 }, 0));
    const welcome2 = (await second.next('welcome'))!;
    expect(welcome2.resumed).toBe(true);
    await second.close();
    // ...so token1 still works (the WELCOME could have been lost on the way).
    const third = await raw();
    third.send(encodeHello({ id, token: token1 }, 0));
    const welcome3 = (await third.next('welcome'))!;
    third.send(encodeAck(0)); // confirms token3: token1 is retired from now on
    third.send(encodePing());
    await third.next('pong'); // the server has handled the ACK
    await third.close();

    const replay = await raw();
    replay.send(encodeHello({ id, token: token1 }, 0));
    expect(await replay.next('reject')).toMatchObject({ code: 'invalid-token' });
    expect(server.stats).toMatchObject({ replayedTokens: 1, invalidTokens: 0 });

    const legit = await raw();
    legit.send(encodeHello({ id, token: welcome3.token }, 0));
    expect(await legit.next('welcome')).toMatchObject({ resumed: true });

    for (const event of events) {
      const error = 'error' in event ? event.error : undefined;
      for (const token of [token1, welcome2.token, welcome3.token]) {
        expect(leaks(String(error), token)).toBe(false);
        expect(leaks(JSON.stringify(error), token)).toBe(false);
        expect(leaks(JSON.stringify({ ...event, error: String(error) }), token)).toBe(false);
      }
    }
  });

  test('the client sees a typed SessionRejectedError that does not carry its token', async () => {
    const first = await raw();
    const { id } = await handshake(first);
    await first.close();
    const wrong = newSessionToken();
    const intruder = await raw();
    intruder.send(encodeHello({ id, token: wrong }, 0));
    await intruder.next('reject');
    const rejected = events.find((event) => event.type === 'rejected');
    expect(rejected?.error).toBeInstanceOf(LifelineError);
    const error = rejected!.error as SessionRejectedError;
    expect(error.rejectCode).toBe('invalid-token');
    expect(leaks(String(error), wrong)).toBe(false);
    expect(leaks(JSON.stringify(error), wrong)).toBe(false);
    expect(leaks(error.stack ?? '', wrong)).toBe(false);
  });

  test('ids and tokens are 128-bit and differ every time', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const client = await raw();
      const { id, token } = await handshake(client);
      expect(id).toHaveLength(16);
      expect(token).toHaveLength(16);
      seen.add(bytesToHex(id));
      seen.add(bytesToHex(token));
      await client.close();
    }
    expect(seen.size).toBe(40);
  });
});

describe('the handshake', () => {
  test('an unknown session is rejected with the link kept for a new HELLO', async () => {
    const client = await raw();
    client.send(encodeHello({ id: newSessionId(), token: newSessionToken() }, 3));
    expect(await client.next('reject')).toMatchObject({ code: 'unknown-session' });
    client.send(encodeHello(undefined, 0));
    expect(await client.next('welcome')).toMatchObject({ resumed: false });
    expect(server.stats.unknownSessions).toBe(1);
  });

  test('a link that never says HELLO is closed after handshakeTimeoutMs', async () => {
    const client = await raw();
    expect(await client.closed).toBe(1006);
    expect(server.stats.handshakeTimeouts).toBe(1);
  });

  test('maxSessions refuses the session beyond it with a recoverable rejection', async () => {
    await server.close();
    server = createResumeServer({ maxSessions: 1 });
    ({ url } = await server.listen());
    await handshake(await raw());
    const second = await raw();
    second.send(encodeHello(undefined, 0));
    expect(await second.next('reject')).toMatchObject({ code: 'too-many-sessions' });
  });

  test('maxSessions holds against simultaneous HELLOs', async () => {
    await server.close();
    server = createResumeServer({ maxSessions: 3 });
    ({ url } = await server.listen());
    const clients = await Promise.all(Array.from({ length: 10 }, () => raw()));
    for (const client of clients) client.send(encodeHello(undefined, 0));
    // Each client gets exactly one answer: a WELCOME, or a REJECT after which the server closes.
    // Wait for whichever comes first, not for the other one to time out.
    const answers = await Promise.all(
      clients.map(async (client) => {
        const answer = await client.nextOf(['welcome', 'reject']);
        return answer?.type === 'reject' ? answer.code : answer?.type;
      }),
    );
    expect(answers.filter((answer) => answer === 'welcome')).toHaveLength(3);
    expect(answers.filter((answer) => answer === 'too-many-sessions')).toHaveLength(7);
    expect(server.stats.newSessions).toBe(3);
  });
});
