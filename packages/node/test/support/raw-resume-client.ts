// A raw WebSocket speaking resume frames by hand, for tests that misbehave on purpose.
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { decodeFrame, frameBytes, type ResumeFrame } from '@lifeline/core/internal';
import WebSocket from 'ws';

export class RawResumeClient {
  readonly frames: ResumeFrame[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<number>;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.binaryType = 'nodebuffer';
    socket.on('message', (data) => {
      this.frames.push(decodeFrame(frameBytes(data), 1 << 24));
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', (code) => {
        this.closeCode = code;
        this.wake();
        resolve(code);
      }),
    );
  }

  static async connect(url: string): Promise<RawResumeClient> {
    const socket = new WebSocket(url);
    const client = new RawResumeClient(socket);
    await once(socket, 'open');
    return client;
  }

  send(frame: Uint8Array | string): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame);
  }

  /** Resolves with the first frame (from `from` on) that matches, or `undefined` once the link closed. */
  next<T extends ResumeFrame['type']>(
    type: T,
    from = 0,
    timeoutMs = 5_000,
  ): Promise<Extract<ResumeFrame, { type: T }> | undefined> {
    return this.nextOf([type], from, timeoutMs);
  }

  /** Resolves with the first frame (from `from` on) of one of `types`, or `undefined` once the link closed. */
  async nextOf<T extends ResumeFrame['type']>(
    types: readonly T[],
    from = 0,
    timeoutMs = 5_000,
  ): Promise<Extract<ResumeFrame, { type: T }> | undefined> {
    const deadline = performance.now() + timeoutMs;
    const type = types.join(' or ');
    for (;;) {
      const found = this.frames
        .slice(from)
        .find((frame) => (types as readonly string[]).includes(frame.type));
      if (found) return found as Extract<ResumeFrame, { type: T }>;
      if (this.closeCode !== undefined) return undefined;
      if (performance.now() > deadline) throw new Error(`no ${type} frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<number> {
    if (this.closeCode === undefined) this.socket.terminate();
    return this.closed;
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
