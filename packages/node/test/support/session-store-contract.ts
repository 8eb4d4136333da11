// The contract every SessionStore keeps, run against each store (memory, SQLite, Redis).
import { SessionStoreError, StaleOwnerError } from '@lifeline/core';
import type { FencedSessionStore, SessionStore, StoredMessage, StoredSession } from '@lifeline/node/server';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';

/** A store under test, and (for fencing across replicas) a second store on the same backend. */
export interface StoreFixture {
  readonly store: SessionStore;
  /** Another store instance sharing the backend (another replica). */
  peer(): Promise<SessionStore>;
  cleanup(): Promise<void>;
}

/** What a store can do beyond the base contract, so the suite registers exactly the tests that apply. */
export interface StoreCapabilities {
  /** `claim`, epochs on writes, cursors. */
  readonly fencing: boolean;
  /** `close()` releases resources; later operations reject with SessionStoreError. */
  readonly closable: boolean;
}

const encoder = new TextEncoder();
let nextId = 0;

/** A fresh 32-hex-digit session id. */
export function sessionId(): string {
  return (++nextId).toString(16).padStart(8, '0') + crypto.randomUUID().replaceAll('-', '').slice(8);
}

export function record(id: string, overrides: Partial<StoredSession> = {}): StoredSession {
  return {
    id,
    tokenHash: new Uint8Array(32).fill(7),
    retiredTokenHash: null,
    tokenConfirmed: false,
    createdAt: 1_700_000_000_000,
    expiresAt: null,
    lastSent: 0,
    peerAcked: 0,
    received: 0,
    replay: [],
    ...overrides,
  };
}

export function text(seq: number, data = `m${seq}`, cursor?: string): StoredMessage {
  return cursor === undefined
    ? { seq, kind: 'text', payload: encoder.encode(data) }
    : { seq, kind: 'text', payload: encoder.encode(data), cursor };
}

/** Every byte value, and an empty payload: binary must round-trip exactly. */
const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

function plain(messages: readonly { seq: number; kind: string; payload: Uint8Array }[]) {
  return messages.map((message) => ({ seq: message.seq, kind: message.kind, payload: [...message.payload] }));
}

export function describeSessionStoreContract(
  name: string,
  capabilities: StoreCapabilities,
  create: () => Promise<StoreFixture>,
): void {
  describe(`${name}: the SessionStore contract`, () => {
    let fixture: StoreFixture;
    let store: SessionStore;
    beforeEach(async () => {
      fixture = await create();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    test('load of an unknown session is undefined; writes to it are ignored', async () => {
      const id = sessionId();
      expect(await store.load(id)).toBeUndefined();
      await store.append(id, [text(1)]);
      await store.acknowledge(id, { peerAcked: 1, received: 1 });
      await store.update(id, { tokenConfirmed: true });
      await store.delete(id);
      expect(await store.load(id)).toBeUndefined();
    });

    test('save and load round-trip every field, text and binary payloads byte for byte', async () => {
      const id = sessionId();
      const saved = record(id, {
        tokenHash: allBytes.slice(0, 32),
        retiredTokenHash: allBytes.slice(32, 64),
        tokenConfirmed: true,
        expiresAt: 1_800_000_000_000,
        lastSent: 3,
        peerAcked: 1,
        received: Number.MAX_SAFE_INTEGER,
        replay: [
          { seq: 2, kind: 'binary', payload: allBytes },
          { seq: 3, kind: 'text', payload: new Uint8Array(0) },
        ],
      });
      await store.save(saved);
      const loaded = (await store.load(id))!;
      expect({ ...loaded, replay: plain(loaded.replay) }).toMatchObject({
        ...saved,
        tokenHash: saved.tokenHash,
        retiredTokenHash: saved.retiredTokenHash,
        replay: plain(saved.replay),
      });
      expect(loaded.tokenHash).toBeInstanceOf(Uint8Array);
      expect([...loaded.tokenHash]).toEqual([...saved.tokenHash]);
      expect([...loaded.retiredTokenHash!]).toEqual([...saved.retiredTokenHash!]);
    });

    test('save replaces a record, replay log included', async () => {
      const id = sessionId();
      await store.save(record(id, { lastSent: 2, replay: [text(1), text(2)] }));
      await store.save(record(id, { lastSent: 5, peerAcked: 5, replay: [] }));
      const loaded = (await store.load(id))!;
      expect(loaded).toMatchObject({ lastSent: 5, peerAcked: 5, replay: [] });
    });

    test('update changes only the fields given; retiredTokenHash can go back to null', async () => {
      const id = sessionId();
      await store.save(record(id));
      await store.update(id, { retiredTokenHash: new Uint8Array(32).fill(1), tokenConfirmed: true });
      await store.update(id, { tokenHash: new Uint8Array(32).fill(2), expiresAt: 1_900_000_000_000 });
      let loaded = (await store.load(id))!;
      expect([...loaded.tokenHash]).toEqual(new Array(32).fill(2));
      expect([...loaded.retiredTokenHash!]).toEqual(new Array(32).fill(1));
      expect(loaded).toMatchObject({ tokenConfirmed: true, expiresAt: 1_900_000_000_000, lastSent: 0 });
      await store.update(id, { retiredTokenHash: null, expiresAt: null, tokenConfirmed: false });
      loaded = (await store.load(id))!;
      expect(loaded).toMatchObject({ retiredTokenHash: null, expiresAt: null, tokenConfirmed: false });
    });

    test('append keeps order, raises lastSent and ignores what it already holds (idempotent)', async () => {
      const id = sessionId();
      await store.save(record(id));
      await store.append(id, [text(1), text(2)]);
      await store.append(id, [text(1, 'again'), text(2, 'again'), text(3)]);
      await store.append(id, [text(3, 'again')]);
      await store.append(id, []);
      const loaded = (await store.load(id))!;
      expect(loaded.lastSent).toBe(3);
      expect(plain(loaded.replay)).toEqual(plain([text(1), text(2), text(3)]));
    });

    test('acknowledge raises each watermark, ignores lower values, and drops the replay entries peerAcked covers', async () => {
      const id = sessionId();
      await store.save(record(id));
      await store.append(
        id,
        [1, 2, 3, 4, 5].map((seq) => text(seq)),
      );
      await store.acknowledge(id, { received: 7 });
      await store.acknowledge(id, { peerAcked: 2 });
      await store.acknowledge(id, { peerAcked: 1, received: 3 });
      let loaded = (await store.load(id))!;
      expect(loaded).toMatchObject({ received: 7, peerAcked: 2, lastSent: 5 });
      expect(loaded.replay.map((message) => message.seq)).toEqual([3, 4, 5]);
      await store.acknowledge(id, { peerAcked: 5, received: 9 });
      loaded = (await store.load(id))!;
      expect(loaded).toMatchObject({ received: 9, peerAcked: 5, replay: [] });
    });

    test('operations issued together apply in the order issued', async () => {
      const id = sessionId();
      await store.save(record(id));
      const issued: Promise<void>[] = [];
      for (let seq = 1; seq <= 200; seq++) {
        issued.push(store.append(id, [text(seq)]));
        if (seq % 10 === 0) issued.push(store.acknowledge(id, { peerAcked: seq - 5, received: seq }));
      }
      await Promise.all(issued);
      const loaded = (await store.load(id))!;
      expect(loaded).toMatchObject({ lastSent: 200, peerAcked: 195, received: 200 });
      expect(loaded.replay.map((message) => message.seq)).toEqual([196, 197, 198, 199, 200]);
    });

    test('expire deletes exactly the sessions whose deadline passed, with their replay logs', async () => {
      const now = Date.now();
      const [past, due, future, attached] = [sessionId(), sessionId(), sessionId(), sessionId()];
      await store.save(record(past, { expiresAt: now - 1_000 }));
      await store.save(record(due, { expiresAt: now + 1_000 }));
      await store.save(record(future, { expiresAt: now + 600_000 }));
      await store.save(record(attached, { expiresAt: null }));
      await store.append(due, [text(1), text(2)]);
      const expired = await store.expire(now + 1_000);
      expect(expired.sort()).toEqual([past, due].sort());
      expect(await store.load(past)).toBeUndefined();
      expect(await store.load(due)).toBeUndefined();
      expect(await store.load(future)).toBeDefined();
      expect(await store.load(attached)).toBeDefined();
      expect(await store.expire(now + 1_000)).toEqual([]);
      // A new session under an expired id starts clean: no replay entry survived.
      await store.save(record(due));
      expect((await store.load(due))!.replay).toEqual([]);
    });

    test('delete removes a session and its replay log', async () => {
      const id = sessionId();
      await store.save(record(id));
      await store.append(id, [text(1)]);
      await store.delete(id);
      expect(await store.load(id)).toBeUndefined();
      await store.save(record(id));
      expect((await store.load(id))!.replay).toEqual([]);
    });

    const fencedStore = () => store as FencedSessionStore;

    // Only the tests a store's capabilities apply to are registered: nothing is skipped.
    const fencingTest = capabilities.fencing ? test : () => {};
    const closableTest = capabilities.closable ? test : () => {};

    fencingTest('the cursor is the one of the last appended message that carried one', async () => {
      const fenced = fencedStore();
      const id = sessionId();
      await fenced.save(record(id));
      expect((await fenced.load(id))!.cursor).toBeNull();
      await fenced.append(id, [text(1, 'a', '10'), text(2, 'b', '20'), text(3, 'c')]);
      expect((await fenced.load(id))!.cursor).toBe('20');
      // Re-appending what is held changes nothing, cursor included.
      await fenced.append(id, [text(2, 'b', '99'), text(4, 'd', '40')]);
      expect((await fenced.load(id))!.cursor).toBe('40');
      await fenced.acknowledge(id, { peerAcked: 4 });
      expect((await fenced.load(id))!).toMatchObject({ cursor: '40', replay: [] });
    });

    if (capabilities.fencing)
      describe('fencing', () => {
        test('claim raises the epoch, keeps a known current one, and is undefined for an unknown session', async () => {
          const fenced = fencedStore();
          const id = sessionId();
          expect(await fenced.claim(id)).toBeUndefined();
          await fenced.save(record(id, { epoch: 1 }));
          expect(await fenced.claim(id)).toBe(2);
          expect(await fenced.claim(id, 2)).toBe(2);
          expect(await fenced.claim(id, 1)).toBe(3);
          expect(await fenced.claim(id)).toBe(4);
          expect((await fenced.load(id))!.epoch).toBe(4);
        });

        test("a stale owner's writes are refused with StaleOwnerError and change nothing; the owner's apply", async () => {
          const fenced = fencedStore();
          const id = sessionId();
          await fenced.save(record(id, { epoch: 1 }));
          await fenced.append(id, [text(1), text(2)], 1);
          const taken = await fenced.claim(id);
          expect(taken).toBe(2);
          const before = (await fenced.load(id))!;
          const refused = await Promise.allSettled([
            fenced.append(id, [text(3)], 1),
            fenced.acknowledge(id, { peerAcked: 2, received: 5 }, 1),
            fenced.update(id, { expiresAt: 1, tokenConfirmed: true }, 1),
            fenced.delete(id, 1),
          ]);
          for (const outcome of refused) {
            expect(outcome.status).toBe('rejected');
            const error = (outcome as PromiseRejectedResult).reason;
            expect(error).toBeInstanceOf(StaleOwnerError);
            expect(error).toMatchObject({ code: 'ERR_FENCED', sessionId: id, epoch: 1, currentEpoch: 2 });
          }
          const after = (await fenced.load(id))!;
          expect({ ...after, replay: plain(after.replay) }).toEqual({
            ...before,
            replay: plain(before.replay),
          });
          await fenced.append(id, [text(3)], 2);
          await fenced.acknowledge(id, { peerAcked: 1, received: 4 }, 2);
          expect((await fenced.load(id))!).toMatchObject({
            lastSent: 3,
            peerAcked: 1,
            received: 4,
            epoch: 2,
          });
          await fenced.delete(id, 2);
          expect(await fenced.load(id)).toBeUndefined();
        });

        test('a refused write in a batch leaves the writes beside it applied', async () => {
          const fenced = fencedStore();
          const [a, b] = [sessionId(), sessionId()];
          await fenced.save(record(a, { epoch: 1 }));
          await fenced.save(record(b, { epoch: 1 }));
          await fenced.claim(a);
          const outcomes = await Promise.allSettled([
            fenced.append(b, [text(1)], 1),
            fenced.append(a, [text(1)], 1),
            fenced.append(b, [text(2)], 1),
          ]);
          expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
          expect((await fenced.load(a))!.lastSent).toBe(0);
          expect((await fenced.load(b))!.lastSent).toBe(2);
        });

        test('unfenced writes (no epoch) still apply', async () => {
          const fenced = fencedStore();
          const id = sessionId();
          await fenced.save(record(id, { epoch: 3 }));
          await fenced.append(id, [text(1)]);
          await fenced.acknowledge(id, { received: 2 });
          expect((await fenced.load(id))!).toMatchObject({ lastSent: 1, received: 2, epoch: 3 });
        });

        test('two replicas racing to claim: distinct epochs, one owner, the loser is fenced', async () => {
          const fenced = fencedStore();
          const other = (await fixture.peer()) as FencedSessionStore;
          const id = sessionId();
          await fenced.save(record(id, { epoch: 1 }));
          const replicas = [fenced, other];
          // Interleaved: even indexes are this replica's claims, odd ones the other's.
          const epochs = (await Promise.all([
            fenced.claim(id),
            other.claim(id),
            fenced.claim(id),
            other.claim(id),
          ])) as number[];
          expect(new Set(epochs).size).toBe(4);
          expect([...epochs].sort()).toEqual([2, 3, 4, 5]);
          const ownerSide = epochs.indexOf(5) % 2;
          const owner = replicas[ownerSide]!;
          const loser = replicas[1 - ownerSide]!;
          const loserEpoch = Math.max(...epochs.filter((_, i) => i % 2 !== ownerSide));
          await expect(loser.append(id, [text(1)], loserEpoch)).rejects.toBeInstanceOf(StaleOwnerError);
          await owner.append(id, [text(1, 'owner')], 5);
          const loaded = (await loser.load(id))!;
          expect(plain(loaded.replay)).toEqual(plain([text(1, 'owner')]));
        });
      });

    closableTest('errors are typed: a closed store rejects with SessionStoreError', async () => {
      const id = sessionId();
      await store.save(record(id));
      await store.close!();
      await expect(store.load(id)).rejects.toBeInstanceOf(SessionStoreError);
    });
  });
}
