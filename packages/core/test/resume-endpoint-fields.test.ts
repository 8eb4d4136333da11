// Idle memory per resuming connection (issue 13): a session endpoint without a durable store,
// manual acknowledgement, ownership checks or a hand-over (a client without a session store)
// holds none of their state: 33 fields before (288 B per endpoint in a heap snapshot of Node
// without pointer compression), 19 after (176 B). White-box: the members are internal (renamed
// in the build).
import type { LinkData, Transport } from '@lifeline/core';
import { resume, SessionEndpoint } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

const transport: Transport<LinkData, LinkData> = {
  open: () => Promise.reject(new Error('not opened in this test')),
};

/** Fields of the endpoint object itself (each a pointer-sized slot in the object). */
const ownFields = (endpoint: object) => Object.keys(endpoint).length;

test('a store-less resume session holds no store state and at most 22 fields in its endpoint', () => {
  const session = resume()(transport, { connectTimeoutMs: 5_000 });
  const endpoint = (session as unknown as { endpoint_: object }).endpoint_;
  expect(endpoint).toBeInstanceOf(SessionEndpoint);
  expect((endpoint as { durable_?: unknown }).durable_).toBeUndefined();
  expect(Object.hasOwn(endpoint, 'durable_')).toBe(false);
  expect(ownFields(endpoint)).toBeLessThanOrEqual(22);
  // Connected, sending and receiving, it still makes none.
  const frames: Uint8Array[] = [];
  const delivered: unknown[] = [];
  const bare = new SessionEndpoint();
  bare.connect((frame) => frames.push(frame), 0, { ready: true, deliver: (data) => delivered.push(data) });
  expect(bare.post('out')).toBeUndefined();
  expect(bare.receiveData(1, 1, 'in')).toBeUndefined();
  expect(frames).toHaveLength(1);
  expect(delivered).toEqual(['in']);
  expect(bare.peerAcked).toBe(1);
  expect(Object.hasOwn(bare, 'durable_')).toBe(false);
  expect(ownFields(bare)).toBeLessThanOrEqual(22);
});

test('an endpoint with a store writes DATA only once stored, and acknowledges only once received is stored', async () => {
  const stored: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const receivedStored: number[] = [];
  const endpoint = new SessionEndpoint(
    { ackDelayMs: 0 },
    {
      persist: async (messages) => {
        await gate;
        for (const message of messages) stored.push(message.seq);
      },
      persistReceived: async (received) => {
        receivedStored.push(received);
      },
    },
  );
  const frames: Uint8Array[] = [];
  endpoint.connect((frame) => frames.push(frame), 0, { ready: true, deliver: () => {} });
  const sent = endpoint.post('out');
  expect(sent).toBeUndefined();
  // Not stored yet: nothing written.
  expect(frames).toHaveLength(0);
  release();
  await gate;
  await new Promise((resolve) => setImmediate(resolve));
  expect(stored).toEqual([1]);
  expect(frames).toHaveLength(1);
  expect(endpoint.receiveData(1, 0, 'in')).toBeUndefined();
  expect(endpoint.ackable).toBe(0);
  await new Promise((resolve) => setImmediate(resolve));
  // The received watermark waits for the answer sent before it (stored above), then is stored.
  expect(receivedStored).toEqual([1]);
  expect(endpoint.ackable).toBe(1);
  expect(frames).toHaveLength(2);
});
