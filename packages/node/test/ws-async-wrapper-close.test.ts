/**
 * close() while a wrapper holds one send back (it writes after an await, as a layer that refreshes
 * a token first might): the link refuses that late write (NotOpenError), and the connection took
 * the refusal for the last send written. The sends written after the held one were on the wire and
 * confirmed, yet the last of them was rejected (a caller that retries sends it twice) and the held
 * one never settled (its promise pending for good, counted in `pending` after the close). Counted:
 * each send settles once, resolved if and only if the server got it, nothing left pending.
 */

import type { Link, LinkData, Transport } from '@lifeline/core';
import { waitFor } from '@lifeline/core/testing';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

const COUNT = 5;

it('close() while a wrapper holds a send back: that send rejects, the ones written after it resolve', async () => {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const got: string[] = [];
  server.wss.on('connection', (socket) => socket.on('message', (data) => got.push(String(data))));
  const wrap = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      // m2 is written after an await; the others at once.
      const send = (data: LinkData) =>
        data === 'm2' ? Promise.resolve().then(() => link.send(data)) : link.send(data);
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
  const socket = new HAWebSocket(server.url, { wrapTransport: wrap });
  cleanups.push(() => socket.close());
  await waitFor(() => socket.readyState === socket.OPEN, { timeoutMs: 10_000, what: 'open' });
  const outcomes = new Map<string, string>();
  for (let i = 0; i < COUNT; i++) {
    socket.connection.send(`m${i}`).then(
      () => outcomes.set(`m${i}`, 'resolved'),
      (error: Error) => outcomes.set(`m${i}`, error.name),
    );
  }
  socket.close();
  await waitFor(() => outcomes.size === COUNT, {
    timeoutMs: 10_000,
    what: 'every send settled',
    state: () => ({ outcomes: [...outcomes], got, pending: socket.connection.pending }),
  });
  await waitFor(() => socket.connection.state$.value.status === 'closed', {
    timeoutMs: 10_000,
    what: 'closed',
  });
  const names = Array.from({ length: COUNT }, (_, i) => `m${i}`);
  expect({
    outcomes: names.map((name) => `${name} ${outcomes.get(name)}`),
    got,
    resolvedNotDelivered: names.filter((n) => outcomes.get(n) === 'resolved' && !got.includes(n)).length,
    rejectedButDelivered: names.filter((n) => outcomes.get(n) !== 'resolved' && got.includes(n)).length,
    pending: socket.connection.pending,
  }).toEqual({
    outcomes: ['m0 resolved', 'm1 resolved', 'm2 ClosedByUserError', 'm3 resolved', 'm4 resolved'],
    got: ['m0', 'm1', 'm3', 'm4'],
    resolvedNotDelivered: 0,
    rejectedButDelivered: 0,
    pending: { messages: 0, bytes: 0 },
  });
});
