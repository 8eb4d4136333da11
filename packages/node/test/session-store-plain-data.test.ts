// What the server hands a custom SessionStore is plain data (StoredMessage's fields as own data
// properties): a store that clones or serialises what it is given (as an out-of-process store
// does) must keep every message whole. Only this package's MemorySessionStore gets frame-backed
// messages, and what it gives out is plain too.
import { encodeHello, type ResumeFrame } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import {
  createResumeServer,
  type FencedSessionStore,
  MemorySessionStore,
  type ServerSession,
  type SessionMetadata,
  type StoredMessage,
  type StoredSession,
} from '@lifeline/node/server';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { RawResumeClient } from './support/raw-resume-client.js';

/** A store that keeps only what survives `structuredClone`, both ways, as a serialising store would. */
class CloningStore implements FencedSessionStore {
  readonly inner = new MemorySessionStore();
  readonly appended: StoredMessage[] = [];
  async load(id: string): Promise<StoredSession | undefined> {
    return structuredClone(await this.inner.load(id));
  }
  save(session: StoredSession): Promise<void> {
    return this.inner.save(structuredClone(session));
  }
  update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void> {
    return this.inner.update(id, structuredClone(metadata), epoch);
  }
  append(id: string, messages: readonly StoredMessage[], epoch?: number): Promise<void> {
    this.appended.push(...messages);
    return this.inner.append(id, structuredClone(messages), epoch);
  }
  acknowledge(id: string, watermarks: Parameters<MemorySessionStore['acknowledge']>[1], epoch?: number) {
    return this.inner.acknowledge(id, structuredClone(watermarks), epoch);
  }
  expire(now: number): Promise<string[]> {
    return this.inner.expire(now);
  }
  delete(id: string, epoch?: number): Promise<void> {
    return this.inner.delete(id, epoch);
  }
  claim(id: string, knownEpoch?: number): Promise<number | undefined> {
    return this.inner.claim(id, knownEpoch);
  }
}

async function replica(store: FencedSessionStore | MemorySessionStore) {
  const server = createResumeServer({ store, handshakeTimeoutMs: 5_000 });
  const sessions: ServerSession[] = [];
  server.sessions$.subscribe((session) => sessions.push(session));
  const { url } = await server.listen();
  cleanups.push(() => server.close());
  return { url, sessions };
}

async function raw(url: string): Promise<RawResumeClient> {
  const client = await RawResumeClient.connect(url);
  cleanups.push(() => client.close());
  return client;
}

const binary = new Uint8Array([0, 1, 127, 128, 255, 0]);
/** Text (multi-byte UTF-8, empty) and binary (empty, with zeros and 0xff), some with a cursor. */
const posted: { data: string | Uint8Array; cursor?: string }[] = [
  { data: 'héllo ✓' },
  { data: binary, cursor: 'c2' },
  { data: '' },
  { data: new Uint8Array(0), cursor: 'c4' },
  { data: `${'x'.repeat(3_000)}end` },
];

/** Text as itself, bytes as hex: a Buffer and a Uint8Array of the same bytes compare equal. */
const shown = (data: string | Uint8Array) =>
  typeof data === 'string' ? `text:${data}` : `bytes:${Buffer.from(data).toString('hex')}`;

const dataFrames = (client: RawResumeClient) =>
  client.frames.filter((frame): frame is Extract<ResumeFrame, { type: 'data' }> => frame.type === 'data');

for (const kind of ['cloning', 'memory'] as const) {
  test(`a session's unacknowledged messages, stored by a ${kind} store, are replayed byte-exact by another server after a resume`, async () => {
    const store = kind === 'cloning' ? new CloningStore() : new MemorySessionStore();
    const a = await replica(store);
    const b = await replica(store);

    const onA = await raw(a.url);
    onA.send(encodeHello(undefined, 0));
    const created = (await onA.next('welcome'))!;
    await waitFor(() => a.sessions.length === 1, { timeoutMs: 10_000, what: 'the session on A' });
    const session = a.sessions[0]!;
    for (const { data, cursor } of posted) session.post(data, cursor === undefined ? undefined : { cursor });
    // The client never acknowledges: every message stays in the store.
    await waitFor(async () => (await store.load(session.id))?.replay.length === posted.length, {
      timeoutMs: 10_000,
      what: 'every message stored',
      intervalMs: 10,
    });
    await onA.close();

    const onB = await raw(b.url);
    onB.send(encodeHello({ id: created.id, token: created.token }, 0));
    expect(await onB.nextOf(['welcome', 'reject'])).toMatchObject({ type: 'welcome', resumed: true });
    await waitFor(() => dataFrames(onB).length >= posted.length, {
      timeoutMs: 10_000,
      what: 'the replay on B',
    });
    const replayed = dataFrames(onB);
    expect(replayed.map((frame) => frame.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(replayed.map((frame) => shown(frame.data))).toEqual(posted.map((message) => shown(message.data)));
    expect(b.sessions[0]!.resumeCursor).toBe('c4');

    // What the store gives out is plain data, whichever store.
    const loaded = (await store.load(session.id))!;
    for (const message of loaded.replay) {
      expect(structuredClone(message)).toEqual(message);
      expect(Object.keys(message).sort()).toEqual(
        message.cursor === undefined ? ['kind', 'payload', 'seq'] : ['cursor', 'kind', 'payload', 'seq'],
      );
    }
    if (store instanceof CloningStore) {
      // What a custom store is handed: exactly StoredMessage's fields, as own enumerable data.
      expect(store.appended).toHaveLength(posted.length);
      for (const [i, message] of store.appended.entries()) {
        const keys =
          posted[i]!.cursor === undefined ? ['kind', 'payload', 'seq'] : ['cursor', 'kind', 'payload', 'seq'];
        expect(Object.keys(message).sort()).toEqual(keys);
        expect(Object.keys({ ...message }).sort()).toEqual(keys);
        for (const key of keys) {
          expect(Object.getOwnPropertyDescriptor(message, key)).toMatchObject({
            enumerable: true,
            writable: true,
          });
        }
        expect(JSON.parse(JSON.stringify(message))).toMatchObject({ seq: i + 1, kind: message.kind });
      }
    }
  });
}
