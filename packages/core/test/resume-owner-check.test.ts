// The endpoint's `confirmOwner` hook (a server on a fenced store): a received message is delivered
// only after a check that began after it arrived succeeded; a refused check delivers nothing.
import { StaleOwnerError } from '@lifeline/core';
import { SessionEndpoint } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

function gatedEndpoint() {
  const checks: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  const failures: unknown[] = [];
  const endpoint = new SessionEndpoint(
    { ackDelayMs: 0 },
    {
      confirmOwner: () => new Promise<void>((resolve, reject) => checks.push({ resolve, reject })),
      storeFailed: (error) => failures.push(error),
    },
  );
  const delivered: number[] = [];
  endpoint.connect(() => {}, 0, { ready: true, deliver: (_data, seq) => delivered.push(seq) });
  return { endpoint, checks, failures, delivered };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('messages wait for a check that began after they arrived, one check in flight at a time', async () => {
  const { endpoint, checks, delivered } = gatedEndpoint();
  endpoint.receiveData(1, 0, 'a');
  expect(delivered).toEqual([]);
  expect(checks).toHaveLength(1);
  // 2 and 3 arrive while the check begun for 1 runs: that check does not cover them.
  endpoint.receiveData(2, 0, 'b');
  endpoint.receiveData(3, 0, 'c');
  expect(checks).toHaveLength(1);
  checks[0]!.resolve();
  await flush();
  expect(delivered).toEqual([1]);
  // One check for both: batches form while a check is in flight.
  expect(checks).toHaveLength(2);
  checks[1]!.resolve();
  await flush();
  expect(delivered).toEqual([1, 2, 3]);
  expect(checks).toHaveLength(2);
  expect(endpoint.delivered).toBe(3);
  endpoint.disconnect();
});

test('a refused check delivers nothing and reports the store failure', async () => {
  const { endpoint, checks, failures, delivered } = gatedEndpoint();
  for (let seq = 1; seq <= 5; seq++) endpoint.receiveData(seq, 0, `m${seq}`);
  const fenced = new StaleOwnerError('00', 1, 2);
  checks[0]!.reject(fenced);
  await flush();
  expect(delivered).toEqual([]);
  expect(failures).toEqual([fenced]);
  endpoint.disconnect();
});

test('a check that began on an earlier link clears nothing on the next one', async () => {
  const { endpoint, checks, delivered } = gatedEndpoint();
  endpoint.receiveData(1, 0, 'a');
  endpoint.disconnect();
  endpoint.connect(() => {}, 0, { ready: true, deliver: (_data, seq) => delivered.push(seq) });
  endpoint.receiveData(1, 0, 'a again');
  checks[0]!.resolve();
  await flush();
  expect(delivered).toEqual([]);
  checks[1]!.resolve();
  await flush();
  expect(delivered).toEqual([1]);
  endpoint.disconnect();
});
