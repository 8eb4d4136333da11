/**
 * `resume()` and `resumable()` throw an InvalidOptionError at the call for an option out of range
 * (their docstrings say so). The byte limits that must hold one frame (`maxUnreadBytes` and
 * `outputHighWaterBytes` at least `maxFrameBytes`) were checked only when a link opened: the
 * constructor took them, and the error came later as an `error` event and a 1006 close (no session
 * ever made), while the other resume options threw at once. The server checks them in its
 * constructor; so does the client now.
 */
import { InvalidOptionError } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { HAWebSocket, resume, wsTransport } from '@lifeline/node/ws';
import { expect, it } from 'vitest';

const BAD = [
  { maxUnreadBytes: 10 },
  { outputHighWaterBytes: 100 },
  { maxFrameBytes: 4_096, maxUnreadBytes: 4_095 },
  // The default maxUnreadBytes (64 MiB) below a frame limit set above it.
  { maxFrameBytes: 128 * 1024 * 1024 },
] as const;

it.each(BAD)(
  'resume(%o) throws InvalidOptionError at the call, naming the option and maxFrameBytes',
  (options) => {
    expect(() => resume(options)).toThrow(InvalidOptionError);
    expect(() => resume(options)).toThrow(/must be >= maxFrameBytes/);
    // Node's object form goes through resume() too: the constructor throws.
    expect(() => new HAWebSocket('ws://127.0.0.1:1', { resume: options })).toThrow(InvalidOptionError);
    expect(() => resumable(wsTransport('ws://127.0.0.1:1'), options)).toThrow(InvalidOptionError);
  },
);

it('limits that hold a frame are taken', () => {
  expect(() =>
    resume({ maxFrameBytes: 4_096, maxUnreadBytes: 4_096, outputHighWaterBytes: 4_096 }),
  ).not.toThrow();
  const socket = new HAWebSocket('ws://127.0.0.1:1', { resume: resume({ maxFrameBytes: 64 * 1024 }) });
  socket.close();
});
