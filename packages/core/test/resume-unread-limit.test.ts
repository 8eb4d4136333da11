import { ProtocolError } from '@lifeline/core';
import { SessionEndpoint } from '@lifeline/core/internal';
import { expect, test } from 'vitest';

test('a peer that sends past the unread limit while nobody reads gets a ProtocolError, not our memory', () => {
  const endpoint = new SessionEndpoint({ maxUnreadMessages: 100, maxUnreadBytes: 1_000_000 });
  const delivered: number[] = [];
  const sink = { ready: false, deliver: (_data: string | Uint8Array, seq: number) => delivered.push(seq) };
  expect(endpoint.connect(() => {}, 0, sink)).toBeUndefined();
  for (let seq = 1; seq <= 100; seq++)
    expect(endpoint.receiveData(seq, 0, new Uint8Array(10))).toBeUndefined();
  expect(endpoint.receiveData(101, 0, new Uint8Array(10))).toBeInstanceOf(ProtocolError);
  // Reading drains the wait: the same peer may go on.
  sink.ready = true;
  endpoint.pump();
  expect(delivered).toHaveLength(100);
  expect(endpoint.receiveData(101, 0, new Uint8Array(10))).toBeUndefined();
  endpoint.disconnect();
});

test('the byte limit counts too', () => {
  const endpoint = new SessionEndpoint({ maxUnreadMessages: 1_000, maxUnreadBytes: 1_000 });
  const sink = { ready: false, deliver: () => {} };
  endpoint.connect(() => {}, 0, sink);
  expect(endpoint.receiveData(1, 0, new Uint8Array(600))).toBeUndefined();
  expect(endpoint.receiveData(2, 0, new Uint8Array(600))).toBeInstanceOf(ProtocolError);
  endpoint.disconnect();
});
