// A resuming socket's session token must never be written out (the project's security rule:
// tokens are never logged). A user who logs the socket or its session handle, with console.log
// (util.inspect) or a JSON logger, prints what those show: the token must not be in it, in any
// encoding, at any depth. On the server the same holds for the token's digest: a session, the
// server and its store print their public views (docs/protocol.md, "Session identity").
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { expect, test } from 'vitest';
import { echoedResumeSocket, leaks } from './support/token-leaks.js';

test('util.inspect and JSON.stringify of a resuming socket and its session do not show the token', async () => {
  const { socket, token } = await echoedResumeSocket();
  expect(token).toHaveLength(16);

  const session = socket.session!;
  expect(session.id).toMatch(/^[0-9a-f]{32}$/);
  const inspected = [socket, session].map((value) =>
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
  );
  for (const text of inspected) expect(leaks(text, token)).toBe(false);
  expect(inspected[1]).toContain(session.id!);
  // A JSON logger gets the session's public view (it threw on a circular structure before).
  const json = JSON.stringify(session);
  expect(leaks(json, token)).toBe(false);
  expect(JSON.parse(json)).toMatchObject({ id: session.id, state: 'open' });
});

test("the server's session prints no token and no token digest", async () => {
  const { server, sessions, token } = await echoedResumeSocket();
  // The server holds the SHA-256 digest of the token (docs/protocol.md, "Session identity").
  const digest = new Uint8Array(createHash('sha256').update(token).digest());
  const session = sessions[0]!;
  const printed = [session, server, server.store].map((value) =>
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
  );
  printed.push(JSON.stringify(session), JSON.stringify(server.store), JSON.stringify(server));
  for (const text of printed) {
    expect(leaks(text, token)).toBe(false);
    expect(leaks(text, digest)).toBe(false);
  }
  expect(printed[0]).toContain(session.id);
  expect(JSON.parse(printed[3]!)).toMatchObject({ id: session.id, connected: true, closed: false });
  expect(JSON.parse(JSON.stringify(server))).toMatchObject({
    sessions: 1,
    links: 1,
    stats: { newSessions: 1 },
  });
});
