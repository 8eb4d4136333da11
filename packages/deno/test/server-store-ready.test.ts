// Issue 16 review: listen() must fail with the store's error when the store cannot open (its
// ready() rejects), as the Node server's does, instead of listening and refusing every client.
import { strictEqual } from 'node:assert/strict';
import { SessionStoreError } from '@lifeline/core';
import { createResumeServer, MemorySessionStore } from '../src/server.ts';

Deno.test('listen() rejects with the error of a store whose ready() rejects, and listens on nothing', async () => {
  const failure = new SessionStoreError('open', undefined, 'the database cannot be opened');
  const memory = new MemorySessionStore();
  const store = Object.assign(Object.create(memory) as MemorySessionStore, {
    ready: () => Promise.reject(failure),
  });
  const server = createResumeServer({ store });
  try {
    const outcome = await server.listen({ port: 0 }).then(
      () => 'listening',
      (error: unknown) => error,
    );
    strictEqual(outcome, failure);
  } finally {
    await server.close();
  }
});
