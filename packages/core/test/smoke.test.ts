import { test, expect } from 'vitest';
import { attach } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { firstValueFrom, filter } from 'rxjs';

test('smoke', async () => {
  const t = createMemoryTransport<string>();
  const c = attach(t, { backoff: { initialDelayMs: 1 }, minUptimeMs: 0 });
  const got: string[] = [];
  c.messages$.subscribe((m) => got.push(m));
  await firstValueFrom(c.state$.pipe(filter((s) => s.status === 'open')));
  await c.send('a');
  t.current!.send('x');
  t.current!.fail();
  const p = c.send('b');
  expect(c.state$.value.status).toBe('recovering');
  await p;
  expect(t.peers.length).toBe(2);
  expect(t.peers[1]!.received).toEqual(['b']);
  t.current!.send('y');
  expect(got).toEqual(['x', 'y']);
  t.refuseOpens();
  t.current!.fail();
  const p2 = c.send('c');
  await expect(p2).rejects.toMatchObject({ code: 'ERR_LINK_FAILED' });
  const st = await c.closed;
  expect(st).toMatchObject({ status: 'closed', reason: 'attempts-exhausted' });
  expect(t.openAttempts).toBe(12);
});
