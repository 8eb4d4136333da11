/** `failoverTransport`: which endpoint each open goes to, alone and under `attach`. */
import { ConnectFailedError, failoverTransport } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, test } from 'vitest';
import { connect, FAST, waitForState } from './support.js';

function endpoints(...names: string[]) {
  return Object.fromEntries(names.map((name) => [name, createMemoryTransport<string>()]));
}

describe('failoverTransport', () => {
  test('moves to the next endpoint when one refuses, and remembers the last that worked', async () => {
    const servers = endpoints('a', 'b', 'c');
    servers.a!.refuseOpens();
    const transport = failoverTransport(['a', 'b', 'c'], (name) => servers[name]!);
    expect(transport.lastGood).toBeUndefined();
    await expect(transport.open()).rejects.toBeInstanceOf(ConnectFailedError);
    await transport.open();
    expect(transport.lastGood).toBe('b');
    // The next open goes to the endpoint that worked, not further along the list.
    await transport.open();
    expect([servers.a!.openAttempts, servers.b!.openAttempts, servers.c!.openAttempts]).toEqual([1, 2, 0]);
  });

  test('under attach: a failed endpoint is left for the next one, and the connection stays there', async () => {
    const servers = endpoints('a', 'b');
    const conn = connect(
      failoverTransport(['a', 'b'], (name) => servers[name]!),
      FAST,
    );
    await waitForState(conn, 'open');
    expect(servers.a!.peers).toHaveLength(1);
    servers.a!.refuseOpens();
    servers.a!.current!.fail();
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    expect(servers.b!.peers).toHaveLength(1);
    await conn.send('m');
    expect(servers.b!.current!.received).toEqual(['m']);
    // b fails too, a is back: the engine tries b first (last good), then a.
    servers.a!.acceptOpens();
    servers.b!.refuseOpens();
    servers.b!.current!.fail();
    await waitForState(conn, 'open', (state) => state.recoveries === 2);
    expect(servers.a!.openAttempts).toBe(3);
    expect(servers.b!.openAttempts).toBe(2);
    expect(servers.a!.peers).toHaveLength(2);
  });

  test('with a function as the source, asks it before every open', async () => {
    const servers = endpoints('a', 'b');
    const asked: string[] = [];
    const order = ['a', 'b', 'b'];
    const transport = failoverTransport(
      async () => {
        const next = order[asked.length]!;
        asked.push(next);
        return next;
      },
      (name) => servers[name]!,
    );
    await transport.open();
    await transport.open();
    expect(transport.lastGood).toBe('b');
    expect(asked).toEqual(['a', 'b']);
  });
});
