// Protocol version 3, "the ack may wait", against a real server over `ws`: sends nobody awaits
// (HAWebSocket.send) are flagged and acknowledged by ackEvery or the longer delay, not one ACK
// frame each; an awaited send still gets its ACK within ackDelayMs; a window past half full gets
// prompt ACKs; a version-2 server (a rolling downgrade) gets plain DATA, replays included, and
// loses nothing; a version-2 client is answered in version 2 and may not send flagged DATA.
// Frames are counted on the wire by their type byte. The server's timers run on a virtual clock
// the test moves, so "before the longer delay" is a fact, not a race.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { encodeData, encodeHello, LAZY_ACK_DELAY_FACTOR } from '@lifeline/core/internal';
import { createResumeServer, type ResumeServerOptions, type SessionMessage } from '@lifeline/node/server';
import { HAWebSocket, type HAWebSocketOptions } from '@lifeline/node/ws';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, expect, test } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { RawResumeClient } from './support/raw-resume-client.js';

const ACK = 0x20;
const DATA_BINARY = 0x11;
const DATA_BINARY_LAZY = 0x13;
const ACK_DELAY_MS = 50;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Resolves once `check()` holds, looking after each macrotask; fails after `ms` (bounded). */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A resume server on our own `ws` server, its timers on a virtual clock, every frame counted by type. */
async function wiredServer(options: Omit<ResumeServerOptions, 'scheduler'> = {}) {
  const scheduler = new VirtualTimeScheduler();
  let now = 0;
  /** Moves the server's clock `ms` on, running every timer due by then. */
  const advance = (ms: number) => {
    now += ms;
    scheduler.maxFrames = now;
    scheduler.flush();
    // Timers set from now on count from here (flush leaves the frame at the last timer run).
    scheduler.frame = now;
  };
  const toClient: number[] = [];
  const fromClient: number[][] = [];
  const sockets: WebSocket[] = [];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (socket) => {
    sockets.push(socket);
    const link: number[] = [];
    fromClient.push(link);
    socket.on('message', (data: Buffer) => link.push(data[0]!));
    const send = socket.send.bind(socket) as (data: Uint8Array, cb?: () => void) => void;
    (socket as unknown as { send: typeof send }).send = (data, cb) => {
      toClient.push(data[0]!);
      send(data, cb);
    };
  });
  const server = createResumeServer({ scheduler, ...options });
  server.attach(wss);
  const delivered: unknown[] = [];
  const messages: SessionMessage[] = [];
  server.sessions$.subscribe((session) =>
    session.messages$.subscribe((message) => {
      delivered.push(message.data);
      messages.push(message);
    }),
  );
  cleanups.push(async () => {
    await server.close({ goAway: false });
    await new Promise((resolve) => wss.close(resolve));
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const acks = () => toClient.filter((type) => type === ACK).length;
  return { server, url, advance, toClient, fromClient, sockets, delivered, messages, acks };
}

async function openSocket(url: string, resume: HAWebSocketOptions = {}) {
  const socket = new HAWebSocket(url, { resume: true, ...resume });
  cleanups.push(() => socket.close());
  await once(socket as unknown as EventTarget, 'open');
  return socket;
}

test('void sends a tick apart are acknowledged by ackEvery and the longer delay, not one ACK each', async () => {
  const wired = await wiredServer();
  const socket = await openSocket(wired.url);
  const ackedAtOpen = wired.acks();
  const N = 160;
  for (let i = 0; i < N; i++) {
    socket.send(Uint8Array.of(i));
    await until(() => wired.delivered.length === i + 1, `message ${i + 1}`);
    // A tick longer than ackDelayMs between sends (what 5,000 connections make of one tick).
    wired.advance(ACK_DELAY_MS);
  }
  const standalone = wired.acks() - ackedAtOpen;
  // ackEvery (32): 5, and the longer timer (1 s = 20 sends here): at most 8 more. Before version 3: 160.
  expect(standalone).toBeLessThanOrEqual(N / 32 + N / LAZY_ACK_DELAY_FACTOR);
  expect(wired.fromClient[0]!.filter((type) => type === DATA_BINARY_LAZY)).toHaveLength(N);
  expect(wired.delivered).toEqual(Array.from({ length: N }, (_, i) => new Uint8Array([i])));
  // Nothing is left waiting: the longer delay acknowledges the rest, and the client releases it.
  wired.advance(ACK_DELAY_MS * LAZY_ACK_DELAY_FACTOR);
  await until(() => socket.session!.pending === 0, 'the last ACK');
});

test('an awaited send is acknowledged within ackDelayMs, before the longer delay, behind flagged ones', async () => {
  const wired = await wiredServer();
  const socket = await openSocket(wired.url);
  for (let i = 0; i < 3; i++) socket.send(`void ${i}`);
  let settled = false;
  const awaited = socket.sendAsync('awaited').then(() => {
    settled = true;
  });
  await until(() => wired.delivered.length === 4, 'four messages');
  const acks = wired.acks();
  // Timers write synchronously: had one been due, its ACK would be on the wire now.
  wired.advance(ACK_DELAY_MS - 1);
  expect(wired.acks()).toBe(acks);
  expect(settled).toBe(false);
  wired.advance(1);
  await awaited;
  // One ACK at ackDelayMs covered all four; the longer timer never ran (the clock is at 50 ms of 1 s).
  expect(wired.acks()).toBe(acks + 1);
  expect(socket.session!.pending).toBe(0);
  expect(wired.fromClient[0]!.filter((type) => type === 0x12)).toHaveLength(3);
  expect(wired.fromClient[0]!.filter((type) => type === 0x10)).toHaveLength(1);
});

test('a window past half full sends unflagged DATA and gets prompt ACKs: no stall', async () => {
  // ackEvery above the window: only the timers acknowledge.
  const wired = await wiredServer({ ackEvery: 1_000 });
  const window = 16;
  const socket = await openSocket(wired.url, { resume: { maxReplayMessages: window } });
  const N = 5 * window;
  for (let i = 0; i < N; i++) socket.send(Uint8Array.of(i));
  // Each round: the window is delivered, then ackDelayMs passes and its ACK makes room for the
  // next. A stall (only flagged messages out: the server waits 20 x longer) times out here.
  for (let end = window; ; end = Math.min(N, end + window)) {
    await until(() => wired.delivered.length === end, `${end} messages`);
    if (end === N) break;
    wired.advance(ACK_DELAY_MS);
  }
  const types = wired.fromClient[0]!.filter((type) => type === DATA_BINARY || type === DATA_BINARY_LAZY);
  expect(types).toHaveLength(N);
  // The first message of each window is flagged only while the window is under half full.
  expect(types.slice(0, window / 2 - 1)).toEqual(new Array(window / 2 - 1).fill(DATA_BINARY_LAZY));
  expect(types.slice(window / 2 - 1, window)).toEqual(new Array(window / 2 + 1).fill(DATA_BINARY));
  expect(wired.delivered).toEqual(Array.from({ length: N }, (_, i) => new Uint8Array([i])));
});

test('a version-2 server gets plain DATA, replays of flagged frames included, and nothing is lost', async () => {
  // Manual acknowledgement: what was delivered stays unacknowledged, so the resume replays it.
  const wired = await wiredServer({ ack: 'manual' });
  const socket = await openSocket(wired.url, { backoff: { initialDelayMs: 0 } });
  for (let i = 0; i < 10; i++) socket.send(Uint8Array.of(i));
  await until(() => wired.delivered.length === 10, 'ten messages');
  expect(wired.fromClient[0]).toEqual([0x01, ACK, ...new Array(10).fill(DATA_BINARY_LAZY)]);
  expect(socket.session!.pending).toBe(10);
  // A rolling downgrade: the next link meets a server that speaks at most version 2.
  wired.server.protocolVersion = 2;
  wired.sockets[0]!.terminate();
  const replayed = () => (wired.fromClient[1] ?? []).filter((type) => type === DATA_BINARY).length;
  await until(() => replayed() === 10, 'the replay');
  for (let i = 10; i < 20; i++) socket.send(Uint8Array.of(i));
  await until(() => wired.delivered.length === 20, 'twenty messages');
  for (const message of wired.messages) message.ack();
  // The acknowledgement is stored (a promise) before its ACK is timed: the clock moves on each look.
  await until(() => {
    wired.advance(ACK_DELAY_MS);
    return socket.session!.pending === 0;
  }, 'every message acknowledged');
  const second = wired.fromClient[1]!;
  expect(second.some((type) => type === 0x12 || type === 0x13)).toBe(false);
  expect(second.filter((type) => type === DATA_BINARY)).toHaveLength(20);
  // Exactly once, in order: the replayed ten were duplicates the server dropped.
  expect(wired.delivered).toEqual(Array.from({ length: 20 }, (_, i) => new Uint8Array([i])));
});

test('a version-2 client is answered in version 2, and flagged DATA from it is malformed', async () => {
  const wired = await wiredServer();
  const client = await RawResumeClient.connect(wired.url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0, 2));
  expect(await client.next('welcome')).toMatchObject({ version: 2 });
  client.send(encodeData(1, 0, 'plain').frame);
  await until(() => wired.delivered.length === 1, 'the plain message');
  client.send(encodeData(2, 0, 'flagged', false, true).frame);
  expect(await client.closed).toBe(1002);
  expect(wired.delivered).toEqual(['plain']);
});
