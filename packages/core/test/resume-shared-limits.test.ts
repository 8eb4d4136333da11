// Idle memory per resuming connection (issue 13): what every session of one `resume()` value reads
// from the same options (the replay window's, ack and frame limits) is one object for all of them,
// not fields of each session (about 0.1 KB per idle connection), and a session that holds nothing
// to replay holds no array of its own. White-box: the members are internal (renamed in the build).
import type { LinkData, Transport } from '@lifeline/core';
import { ReplayBuffer, resume, SessionEndpoint } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

const transport: Transport<LinkData, LinkData> = {
  open: () => Promise.reject(new Error('not opened in this test')),
};

interface Internals {
  endpoint_: { limits_: object | undefined; buffer_: { limits_: object | undefined; entries: unknown[] } };
}

const internals = (session: unknown) => (session as Internals).endpoint_;

test.each([
  ['resume({ ackEvery: 8 })', resume({ ackEvery: 8, maxReplayMessages: 64 })],
  ['resume() (what `resume: true` asks for per connection)', undefined],
])('the sessions of %s share their limits and hold no replay array while idle', (_name, protocol) => {
  const sessions = Array.from({ length: 3 }, () =>
    (protocol ?? resume())(transport, { connectTimeoutMs: 5_000 }),
  );
  const [first, ...rest] = sessions.map(internals);
  expect(first!.limits_).toBeDefined();
  expect(first!.buffer_.limits_).toBeDefined();
  for (const endpoint of rest) {
    expect(endpoint.limits_).toBe(first!.limits_);
    expect(endpoint.buffer_.limits_).toBe(first!.buffer_.limits_);
    expect(endpoint.buffer_.entries).toBe(first!.buffer_.entries);
  }
  expect(first!.buffer_.entries).toHaveLength(0);
});

test('shared limits still follow each options object', () => {
  const small = new SessionEndpoint({ maxReplayMessages: 1, maxFrameBytes: 64 });
  const large = new SessionEndpoint({ maxReplayMessages: 2 });
  expect(small.post('a'.repeat(100))).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
  expect(large.post('a'.repeat(100))).toBeUndefined();
  const buffer = new ReplayBuffer<{ seq: number; size: number }>({ maxReplayMessages: 1 });
  expect(buffer.push({ seq: 1, size: 1 })).toBe(true);
  expect(buffer.push({ seq: 2, size: 1 })).toBe(false);
  // Emptied, it drops its array for the shared empty one, and takes entries again after.
  expect(buffer.acknowledge(1)).toBe(1);
  expect(buffer.admittedEnd).toBe(2);
  expect(buffer.acknowledge(2)).toBe(1);
  expect(buffer.size).toBe(0);
  expect(buffer.push({ seq: 3, size: 1 })).toBe(true);
  expect(buffer.get(3)).toEqual({ seq: 3, size: 1 });
});
