// Token rotation across interrupted handshakes (issue 10, item 1). A scripted raw client drops
// exactly the named frames: a lost WELCOME is one the client ignores (it keeps its old token), a
// lost confirming ACK is one it never sends (the link dies right after the WELCOME).
import { bytesToHex, encodeAck, encodeHello, encodePing, type ResumeFrame } from '@lifeline/core/internal';
import {
  createResumeServer,
  MemorySessionStore,
  type NodeResumeServer,
  type SessionMetadata,
} from '@lifeline/node/server';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { RawResumeClient } from './support/raw-resume-client.js';

type Welcome = Extract<ResumeFrame, { type: 'welcome' }>;
/** What happens to one resume handshake. */
type Outcome = 'welcome-lost' | 'ack-lost' | 'confirmed';
const OUTCOMES: readonly Outcome[] = ['welcome-lost', 'ack-lost', 'confirmed'];

const raws: RawResumeClient[] = [];
afterEach(async () => {
  await Promise.all(raws.splice(0).map((raw) => raw.close()));
});

async function raw(url: string): Promise<RawResumeClient> {
  const client = await RawResumeClient.connect(url);
  raws.push(client);
  return client;
}

/** Sends an ACK (the confirmation) and waits for the server to have handled it (PING → PONG after it). */
async function confirm(client: RawResumeClient): Promise<void> {
  client.send(encodeAck(0));
  client.send(encodePing());
  expect(await client.next('pong')).toBeDefined();
}

/** A HELLO(resume) with `token`: the WELCOME, or the REJECT's code. */
async function resumeWith(url: string, id: Uint8Array, token: Uint8Array) {
  const client = await raw(url);
  client.send(encodeHello({ id, token }, 0));
  const answer = await client.nextOf(['welcome', 'reject']);
  return {
    client,
    welcome: answer?.type === 'welcome' ? (answer as Welcome) : undefined,
    rejected: answer?.type === 'reject' ? answer.code : undefined,
  };
}

/** Every sequence of `length` handshake outcomes. */
function sequences(length: number): Outcome[][] {
  if (length === 0) return [[]];
  return sequences(length - 1).flatMap((prefix) => OUTCOMES.map((outcome) => [...prefix, outcome]));
}

describe('any sequence of lost WELCOMEs and lost confirming ACKs keeps the session', () => {
  let server: NodeResumeServer;
  let url: string;
  beforeAll(async () => {
    server = createResumeServer({ handshakeTimeoutMs: 2_000 });
    server.sessions$.subscribe((session) => session.messages$.subscribe());
    ({ url } = await server.listen());
  });
  afterAll(() => server.close());

  // 27 sequences of three handshakes, each followed by a clean one. Among them the one reported:
  // t1 → WELCOME(t2) whose ACK is lost; resume with t2 → WELCOME(t3) lost; t2 presented again.
  test.each(sequences(3).map((sequence) => [sequence.join(', '), sequence] as const))(
    '%s',
    async (_name, sequence) => {
      const before = server.stats;
      const first = await raw(url);
      first.send(encodeHello(undefined, 0));
      const created = (await first.next('welcome'))!;
      await confirm(first);
      await first.close();
      const id = created.id;
      let held = created.token; // the token the client holds
      const issued = [created.token];

      let refused = 0;
      for (const outcome of [...sequence, 'confirmed' as const]) {
        const { client, welcome, rejected } = await resumeWith(url, id, held);
        if (!welcome) {
          refused++;
          expect.soft(rejected, `${outcome} after ${sequence.join(', ')}`).toBeUndefined();
          break;
        }
        issued.push(welcome.token);
        if (outcome !== 'welcome-lost') held = welcome.token;
        if (outcome === 'confirmed') await confirm(client);
        await client.close();
      }
      expect(refused).toBe(0);

      // Every token the session rotated away from is refused, and counted as replayed...
      const old = issued.filter((token) => bytesToHex(token) !== bytesToHex(held));
      expect(old).toHaveLength(issued.length - 1);
      for (const token of old) {
        const { welcome, rejected } = await resumeWith(url, id, token);
        expect(welcome).toBeUndefined();
        expect(rejected).toBe('invalid-token');
      }
      // ...and never disturbs the session: the token held still opens it.
      const { welcome } = await resumeWith(url, id, held);
      expect(welcome).toMatchObject({ resumed: true });
      const after = server.stats;
      expect({
        newSessions: after.newSessions - before.newSessions,
        resumes: after.resumes - before.resumes,
        replayedTokens: after.replayedTokens - before.replayedTokens,
        invalidTokens: after.invalidTokens - before.invalidTokens,
        unknownSessions: after.unknownSessions - before.unknownSessions,
      }).toEqual({
        newSessions: 1,
        resumes: sequence.length + 2,
        replayedTokens: old.length,
        invalidTokens: 0,
        unknownSessions: 0,
      });
    },
  );
});

/** A memory store whose token writes can be held, to let a frame arrive in the middle of a rotation. */
class HeldUpdates extends MemorySessionStore {
  private gate: { entered: () => void; release: Promise<void> } | undefined;

  /** Holds the next update until `release` resolves; resolves when that update started. */
  holdNext(release: Promise<void>): Promise<void> {
    return new Promise((entered) => {
      this.gate = { entered, release };
    });
  }

  override async update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void> {
    const gate = this.gate;
    if (gate && metadata.tokenHash !== undefined) {
      this.gate = undefined;
      gate.entered();
      await gate.release;
    }
    return super.update(id, metadata, epoch);
  }
}

test('a late confirming ACK on the old link, arriving while a resume rotates the token, does not confirm the new token', async () => {
  const store = new HeldUpdates();
  const server = createResumeServer({ store, handshakeTimeoutMs: 2_000 });
  server.sessions$.subscribe((session) => session.messages$.subscribe());
  const { url } = await server.listen();
  try {
    const first = await raw(url);
    first.send(encodeHello(undefined, 0));
    const created = (await first.next('welcome'))!;
    await confirm(first);
    await first.close();

    // Link 2 gets WELCOME(t2); its ACK is delayed in the network.
    const { client: slow, welcome: welcome2 } = await resumeWith(url, created.id, created.token);
    expect(welcome2).toBeDefined();
    // The client, hearing nothing on link 2, resumes with t2 on link 3; the server rotates to t3...
    let release = () => {};
    const entered = store.holdNext(new Promise<void>((resolve) => (release = resolve)));
    const third = await raw(url);
    third.send(encodeHello({ id: created.id, token: welcome2!.token }, 0));
    await entered;
    // ...and, while t3 is being stored, link 2's ACK (for t2) finally arrives.
    await confirm(slow);
    release();
    expect(await third.next('welcome')).toMatchObject({ resumed: true });
    // WELCOME(t3) is lost: the client still holds t2, the token it last presented successfully.
    await third.close();
    const { welcome, rejected } = await resumeWith(url, created.id, welcome2!.token);
    expect(rejected).toBeUndefined();
    expect(welcome).toMatchObject({ resumed: true });
    expect(server.stats).toMatchObject({ replayedTokens: 0, invalidTokens: 0, resumes: 3 });
  } finally {
    await server.close();
  }
});
