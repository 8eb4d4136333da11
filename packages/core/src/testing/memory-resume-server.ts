import type { LinkData } from '../engine/link.js';
import type { ResumeServer, ServerLinkPort } from '../resume/server/resume-server.js';
import type { MemoryPeer, MemoryTransport } from './memory-transport.js';

/**
 * Serves a real {@link ResumeServer} over an in-memory transport: every link `transport` opens from
 * now on is handed to `server.accept`, so a `resumable(transport)` client speaks the resume protocol
 * to the same server code the Node and Deno adapters run, with synchronous delivery and the
 * transport's fault injection (`fail`, `halfOpen`, `close`) in between.
 *
 * The port writes each frame at once (the `written` callback runs synchronously) and reports no
 * `bufferedAmount`, so the server's output high-water mark does not apply. An abrupt close by the
 * server (a peer presumed gone) fails the link with a recoverable reset; a graceful one closes it
 * with the server's close code.
 *
 * @returns a function that stops handing new links to `server`; links already accepted stay with
 *   it until it closes them (`server.close()` does).
 *
 * @example
 * ```ts
 * const transport = createMemoryTransport<LinkData>();
 * const server = new ResumeServer({ ackDelayMs: 0 });
 * const stop = serveOverMemory(server, transport);
 * const conn = attach(resumable(transport));
 * ```
 */
export function serveOverMemory(server: ResumeServer, transport: MemoryTransport<LinkData>): () => void {
  const subscription = transport.connections$.subscribe((peer) => accept(server, peer));
  return () => subscription.unsubscribe();
}

function accept(server: ResumeServer, peer: MemoryPeer<LinkData>): void {
  // Delivery is synchronous both ways, so the client may answer a frame (a new HELLO after a REJECT)
  // while the server is still inside the call that wrote it. A network never re-enters the server:
  // what arrives while the server runs or writes waits until that call has returned (a server
  // write from a promise callback: until the next microtask), then goes in, in order.
  const inbox: (() => void)[] = [];
  let depth = 0;
  const drain = () => {
    while (depth === 0 && inbox.length > 0) {
      const step = inbox.shift()!;
      depth++;
      try {
        step();
      } finally {
        depth--;
      }
    }
  };
  const deliver = (step: () => void) => {
    inbox.push(step);
    drain();
  };
  const asServer = (effect: () => void) => {
    depth++;
    try {
      effect();
    } finally {
      depth--;
    }
    if (depth === 0 && inbox.length > 0) queueMicrotask(drain);
  };
  const port: ServerLinkPort = {
    send(frame, written) {
      asServer(() => peer.send(frame));
      written?.();
    },
    close(code, reason, abrupt) {
      asServer(() => (abrupt ? peer.fail() : peer.close(code, reason)));
    },
  };
  const input = server.accept(port);
  peer.messages$.subscribe({
    next: (message) => deliver(() => input.receive(message)),
    error: (error: unknown) =>
      deliver(() => {
        input.error(error);
        input.closed();
      }),
    complete: () => deliver(() => input.closed()),
  });
}
