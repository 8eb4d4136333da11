// A recovery function that refreshes an expired auth token and reconnects with it.
//
// The API server takes a short-lived token in the WebSocket URL (`?access_token=`, as browsers
// cannot set headers on a WebSocket). When the token expires it closes the connection with 4401
// (Unauthorized); a token it does not accept at the upgrade is refused with HTTP 401. Both are
// irrecoverable by default (a wrong password must not be retried forever); this client says they
// are recoverable, and its recovery function fetches a new token from the token endpoint (a real
// local HTTP server) before it reopens, only when the failure was about the token.
//
// Then the API server is stopped hard (every connection dropped, no close frame) and restarted with
// a new signing key, as a redeploy that rotates keys does: the reopen with the old token is refused
// with HTTP 401, and the next attempt refreshes and gets in.
//
//   pnpm --filter @lifeline/examples example:token-refresh
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { attach, HttpStatusError, LinkClosedError } from '@lifeline/core';
import { wsTransport } from '@lifeline/node/ws';
import { WebSocketServer } from 'ws';
import { report, until } from './example-support.js';

const TOKEN_TTL_MS = 1_500;

// --- the token endpoint and the API server (what a real deployment runs elsewhere) ----------------

let signingKey = randomBytes(32);
/** Token: `<expiry, epoch ms>.<HMAC-SHA256 of it>`. Expiry is wall-clock time, as a JWT's `exp` is. */
const sign = (expiresAt: number) =>
  `${expiresAt}.${createHmac('sha256', signingKey).update(String(expiresAt)).digest('hex')}`;
function verify(token: string | null): number | undefined {
  const [expiresAt = '', mac = ''] = (token ?? '').split('.');
  const expected = createHmac('sha256', signingKey).update(expiresAt).digest();
  const given = Buffer.from(mac, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return Number(expiresAt) > Date.now() ? Number(expiresAt) : undefined;
}

const tokenEndpoint = createServer((request, response) => {
  if (request.method !== 'POST' || request.url !== '/token') return void response.writeHead(404).end();
  response.writeHead(200, { 'Content-Type': 'application/json' });
  response.end(
    JSON.stringify({ access_token: sign(Date.now() + TOKEN_TTL_MS), expires_in_ms: TOKEN_TTL_MS }),
  );
});
tokenEndpoint.listen(0, '127.0.0.1');
await once(tokenEndpoint, 'listening');
const tokenUrl = `http://127.0.0.1:${(tokenEndpoint.address() as { port: number }).port}/token`;

const serverCounts = { refused401: 0, expired4401: 0, starts: 0 };
let apiPort = 0;
let api: { http: Server; wss: WebSocketServer; sockets: Set<Socket> } | undefined;

async function startApiServer(): Promise<void> {
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<Socket>();
  const http = createServer((_, response) => response.writeHead(426).end());
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  http.on('upgrade', (request, socket, head) => {
    const expiresAt = verify(new URL(request.url ?? '/', 'http://x').searchParams.get('access_token'));
    if (expiresAt === undefined) {
      serverCounts.refused401++;
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const ticker = setInterval(() => ws.send('tick'), 20);
      const expiry = setTimeout(() => {
        serverCounts.expired4401++;
        ws.close(4401, 'token expired');
      }, expiresAt - Date.now());
      ws.on('close', () => {
        clearInterval(ticker);
        clearTimeout(expiry);
      });
    });
  });
  http.listen(apiPort, '127.0.0.1');
  await once(http, 'listening');
  apiPort = (http.address() as { port: number }).port;
  api = { http, wss, sockets };
  serverCounts.starts++;
}

/** Drops every connection without a close frame and stops listening: a crash, seen from the client. */
async function stopApiServerHard(): Promise<void> {
  if (!api) return;
  const { http, wss, sockets } = api;
  api = undefined;
  for (const client of wss.clients) client.terminate();
  for (const socket of sockets) socket.destroy();
  wss.close();
  await new Promise((resolve) => http.close(resolve));
}

await startApiServer();

// --- the client ------------------------------------------------------------------------------------

let tokensFetched = 0;
async function fetchToken(signal?: AbortSignal): Promise<string> {
  const response = await fetch(tokenUrl, { method: 'POST', signal });
  if (!response.ok) throw new HttpStatusError(response.status, `token endpoint answered ${response.status}`);
  tokensFetched++;
  return ((await response.json()) as { access_token: string }).access_token;
}

/** The failures a new token cures: the server refused the upgrade (401) or ended the link (4401). */
const isAuthFailure = (error: unknown) =>
  (error instanceof HttpStatusError && error.status === 401) ||
  (error instanceof LinkClosedError && error.closeCode === 4401);

let token = await fetchToken(); // never logged: a token is a credential
const conn = attach(
  wsTransport(() => `ws://127.0.0.1:${apiPort}/feed?access_token=${encodeURIComponent(token)}`),
  {
    // Auth failures are ours to cure; `undefined` leaves every other error to the default rules.
    isRecoverable: (error) => (isAuthFailure(error) ? true : undefined),
    recover: async (ctx) => {
      // `lastError` is the failure itself on the first attempt, then the previous attempt's error:
      // a reopen refused with 401 makes the next attempt refresh.
      if (isAuthFailure(ctx.lastError)) token = await fetchToken(ctx.signal);
      return ctx.reopen();
    },
    backoff: { initialDelayMs: 50, maxDelayMs: 500 },
  },
);

let linksOpened = 0;
let ticksOnThisLink = 0;
let linksWithTicks = 0;
let ticks = 0;
conn.events$.subscribe((event) => {
  if (event.type === 'link-open') {
    linksOpened++;
    ticksOnThisLink = 0;
  }
});
conn.messages$.subscribe(() => {
  ticks++;
  if (ticksOnThisLink++ === 0) linksWithTicks++;
});

// Two expiries while connected, each cured by a refresh.
await until(() => serverCounts.expired4401 >= 2 && linksWithTicks >= 3, 'two token expiries and recoveries');
// A restart with a rotated key: the old token is refused with 401, then refreshed.
await stopApiServerHard();
signingKey = randomBytes(32);
await startApiServer();
const linksBefore = linksWithTicks;
await until(() => linksWithTicks > linksBefore, 'traffic after the restart');

conn.close();
await conn.closed;
await stopApiServerHard();
tokenEndpoint.close();

const state = conn.state$.value;
report('Token refresh', {
  'tokens fetched': tokensFetched,
  'expired (closed with 4401)': serverCounts.expired4401,
  'refused (HTTP 401)': serverCounts.refused401,
  'server restarts': serverCounts.starts - 1,
  'links opened': linksOpened,
  'links that carried ticks': linksWithTicks,
  'ticks received': ticks,
  'final state': state.status,
});
// What this example claims: every token refresh came from an auth failure (the first fetch aside),
// each expiry and each 401 was cured by exactly one refresh, and every link carried traffic.
const ok =
  serverCounts.expired4401 >= 2 &&
  serverCounts.refused401 >= 1 &&
  tokensFetched === 1 + serverCounts.expired4401 + serverCounts.refused401 &&
  linksWithTicks === linksOpened;
process.exitCode = ok ? 0 : 1;
