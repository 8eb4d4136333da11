/**
 * Under `resumable`, a `wrapTransport` link's `send` that throws on a DATA frame left a hole in
 * the session's numbering: the frame stayed in the replay window, already counted as written, and
 * the next frame went out one seq ahead, so the server ended the session (1002 ProtocolError) and
 * every send failed, those it had already delivered too. The link is now given up as on an
 * overflow (a LinkFailedError, recovered) and the session replays from the refused frame on the
 * next link. Counted at the server: 15 sends, each delivered once, in order, all resolved.
 */

import type { Link, LinkData, Transport } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';

const WAIT = { timeoutMs: 15_000 };
const COUNT = 15;

it('a wrapped link under resumable that throws on a DATA frame is given up, and the session replays the frame', async () => {
  const server = createResumeServer();
  cleanups.push(() => server.close());
  const received = new Map<string, number>();
  let last = -1;
  let outOfOrder = 0;
  server.sessions$.subscribe((session) => {
    session.messages$.subscribe(({ data }) => {
      const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
      received.set(text, (received.get(text) ?? 0) + 1);
      const at = Number(text.slice(1));
      if (at < last) outOfOrder++;
      last = at;
    });
  });
  const { port } = await server.listen();
  let dataFrames = 0;
  let thrown = 0;
  const wrap = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) => {
        // DATA of any version (0x10-0x13): the 5th one written is refused.
        const isData = data instanceof Uint8Array && data[0]! >= 0x10 && data[0]! <= 0x13;
        if (isData && ++dataFrames === 5) {
          thrown++;
          throw new Error('refused by the wrapper');
        }
        return link.send(data);
      };
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, {
    wrapTransport: (transport): Transport<LinkData, LinkData> => resumable(wrap(transport)),
  });
  cleanups.push(() => socket.close());
  await waitFor(() => socket.readyState === socket.OPEN, { ...WAIT, what: 'open' });
  const outcomes = { resolved: 0, rejected: [] as string[] };
  for (let i = 0; i < COUNT; i++) {
    socket.connection.send(`m${i}`).then(
      () => outcomes.resolved++,
      (error: unknown) => outcomes.rejected.push(`m${i}: ${String(error)}`),
    );
  }
  await waitFor(() => outcomes.resolved + outcomes.rejected.length === COUNT, {
    ...WAIT,
    what: 'every send settled',
    state: () => ({ outcomes, received: received.size }),
  });
  const names = Array.from({ length: COUNT }, (_, i) => `m${i}`);
  expect({
    thrown,
    ...outcomes,
    received: received.size,
    lost: names.filter((name) => !received.has(name)).length,
    duplicated: [...received.values()].filter((n) => n > 1).length,
    outOfOrder,
    status: socket.connection.state$.value.status,
    resumes: socket.session?.stats.resumes,
  }).toEqual({
    thrown: 1,
    resolved: COUNT,
    rejected: [],
    received: COUNT,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    status: 'open',
    resumes: 1,
  });
});
