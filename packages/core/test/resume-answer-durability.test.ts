// A server session's store writes, committed one at a time in the order issued (what a crash
// keeps of them is a prefix): after every commit, the stored `received` watermark must not be
// ahead of the answers the application sent before it. Otherwise a crash at that point keeps
// the request acknowledged (the client never sends it again) and loses its answer for good.

import { ServerSession } from '@lifeline/core/internal';
import {
  MemorySessionStore,
  type SessionMetadata,
  type SessionStore,
  type StoredMessage,
  type StoredSession,
} from '@lifeline/core/resume/server';
import { expect, test } from 'vitest';
import { storedSession } from './support.js';

/** A store whose writes wait until the test commits them, oldest first. */
class GatedStore implements SessionStore {
  readonly inner = new MemorySessionStore();
  readonly claim?: (id: string, knownEpoch?: number) => Promise<number | undefined>;
  private writes: {
    run: () => Promise<unknown>;
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
  }[] = [];

  constructor(fenced: boolean) {
    if (fenced) this.claim = (id, knownEpoch) => this.inner.claim(id, knownEpoch);
  }

  get queued(): number {
    return this.writes.length;
  }
  load(id: string) {
    return this.inner.load(id);
  }
  save(session: StoredSession) {
    return this.gate(() => this.inner.save(session));
  }
  update(id: string, metadata: Partial<SessionMetadata>, epoch?: number) {
    return this.gate(() => this.inner.update(id, metadata, epoch));
  }
  append(id: string, messages: readonly StoredMessage[], epoch?: number) {
    return this.gate(() => this.inner.append(id, messages, epoch));
  }
  acknowledge(id: string, watermarks: { peerAcked?: number; received?: number }, epoch?: number) {
    return this.gate(() => this.inner.acknowledge(id, watermarks, epoch));
  }
  expire(now: number) {
    return this.inner.expire(now);
  }
  delete(id: string, epoch?: number) {
    return this.gate(() => this.inner.delete(id, epoch));
  }

  /** Applies the oldest waiting write; its promise settles after (the endpoint reacts then). */
  async commitNext(): Promise<void> {
    const write = this.writes.shift()!;
    try {
      write.resolve(await write.run());
    } catch (error) {
      write.reject(error);
    }
  }

  private gate<T>(run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.writes.push({ run, resolve: resolve as (value: unknown) => void, reject }),
    );
  }
}

const ID = 'ab'.repeat(16);

async function echoSession(options: { fenced: boolean; window?: number }) {
  const store = new GatedStore(options.fenced);
  await store.inner.save(storedSession(ID, { tokenConfirmed: true }));
  const session = new ServerSession(
    ID,
    store,
    { maxReplayMessages: options.window ?? 1_024, ackDelayMs: 0 },
    () => {},
  );
  let lastSent = 0;
  const refused: unknown[] = [];
  /** The application's sends; returns the seq the message got. */
  const send = (data: string) => {
    session.send(data).catch((error) => refused.push(error));
    return ++lastSent;
  };
  const answerOf = new Map<number, number>();
  session.messages$.subscribe(({ seq }) => answerOf.set(seq, send(`a${seq}`)));
  session.attachLink({ write: () => {}, close: () => {} }, 0, new Uint8Array(0), { type: 'connect' });
  let requests = 0;
  const request = () => {
    requests++;
    expect(
      session.receive({ type: 'data', seq: requests, ack: 0, data: `q${requests}`, lazy: false }),
    ).toBeUndefined();
  };

  const violations: string[] = [];
  let commits = 0;
  /** Commits the oldest write, then checks what a crash right after it would leave in the store. */
  const commit = async () => {
    await store.commitNext();
    commits++;
    const stored = (await store.inner.load(ID))!;
    for (let q = 1; q <= stored.received; q++) {
      const answer = answerOf.get(q);
      if (answer === undefined || answer > stored.lastSent) {
        violations.push(
          `commit ${commits}: received ${stored.received} stored, answer to request ${q} (seq ${answer}) not (lastSent ${stored.lastSent})`,
        );
      }
    }
  };
  /** Commits until nothing is left to write (bounded). */
  const drain = async () => {
    for (let i = 0; i < 1_000; i++) {
      // Let the endpoint issue the writes that the last commit's settlement unblocked.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (store.queued === 0) return;
      await commit();
    }
    throw new Error('the session kept writing');
  };
  return {
    requests: () => requests,
    store,
    session,
    send,
    request,
    commit,
    drain,
    violations,
    refused,
    stored: () => store.inner.load(ID),
  };
}

test('an answer waiting for room in the replay window is stored before the request is stored as received', async () => {
  const s = await echoSession({ fenced: false, window: 1 });
  s.send('u1'); // fills the window: the answer to request 1 waits for room
  s.request();
  await s.drain();
  expect(s.violations).toEqual([]);
  const stored = (await s.stored())!;
  expect(stored).toMatchObject({ received: 1, lastSent: 2 });
  expect(stored.replay.map((message) => message.seq)).toEqual([1, 2]);
  expect(s.refused).toEqual([]);
});

test('an answer batched behind a store write in flight is stored before the request is stored as received', async () => {
  const s = await echoSession({ fenced: false });
  s.send('u1'); // its append is in flight when the request arrives
  s.request();
  await s.drain();
  expect(s.violations).toEqual([]);
  expect(await s.stored()).toMatchObject({ received: 1, lastSent: 2 });
});

test("a fenced store's owner check stores no received watermark that is ahead of the answers", async () => {
  const s = await echoSession({ fenced: true });
  s.request(); // waits for an owner check
  s.send('u1'); // an append queued behind the check
  await s.commit(); // the check: request 1 is delivered, its answer batched behind u1's append
  s.request(); // a new check, while the answer to 1 is not stored yet
  await s.drain();
  expect(s.violations).toEqual([]);
  expect(await s.stored()).toMatchObject({ received: 2, lastSent: 3 });
});

test('many requests and sends interleaved with commits in every order: never a crash point that loses an answer', async () => {
  // A seeded generator, so a failure replays exactly.
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (const fenced of [false, true]) {
    const s = await echoSession({ fenced, window: 8 });
    for (let step = 0; step < 2_000; step++) {
      const roll = random();
      if (roll < 0.3) s.request();
      else if (roll < 0.4) s.send('u');
      else if (s.store.queued > 0) await s.commit();
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await s.drain();
    expect(s.violations.slice(0, 3)).toEqual([]);
    expect(s.refused).toEqual([]);
    // Every request is stored as received in the end: the ordering holds no watermark back for good.
    expect((await s.stored())!.received).toBe(s.requests());
  }
});

test('a restored session admits what fits its window; a handshake ack past it releases stored sends that waited', async () => {
  const { SessionEndpoint, encodeData } = await import('@lifeline/core/internal');
  const stored = (seq: number) => {
    const encoded = encodeData(seq, 0, `m${seq}`);
    return { seq, size: 2, ...encoded, settle: undefined, token: undefined };
  };
  const restoredWith = () => {
    const endpoint = new SessionEndpoint({ maxReplayMessages: 2 }, { persist: async () => {} });
    endpoint.restore({ peerAcked: 0, received: 0, messages: [1, 2, 3, 4, 5].map(stored) });
    const written: number[] = [];
    return { endpoint, written, writer: (frame: Uint8Array) => written.push(frame.length) };
  };
  // The client had 1..4 (written by the process before, past what fits the window now).
  const ahead = restoredWith();
  expect(ahead.endpoint.connect(ahead.writer, 4, { ready: true, deliver: () => {} })).toBeUndefined();
  expect(ahead.endpoint.pending).toBe(1);
  expect(ahead.written).toHaveLength(1); // 5 only
  expect(ahead.endpoint.receiveAck(5)).toBeUndefined();
  expect(ahead.endpoint.pending).toBe(0);
  // The client had nothing: a window's worth is replayed, the rest waits for acks.
  const behind = restoredWith();
  expect(behind.endpoint.connect(behind.writer, 0, { ready: true, deliver: () => {} })).toBeUndefined();
  expect(behind.written).toHaveLength(2);
  expect(behind.endpoint.receiveAck(2)).toBeUndefined();
  expect(behind.written).toHaveLength(4);
  expect(behind.endpoint.receiveAck(5)).toBeUndefined();
  expect(behind.endpoint.pending).toBe(0);
});
