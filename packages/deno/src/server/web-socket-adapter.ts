import type { ResumeServer } from '@lifeline/core/resume/server';

/** Where the peer of an upgraded request is, as `Deno.serve` tells its handler. */
export interface DenoServeInfo {
  readonly remoteAddr?: { readonly hostname?: string } | unknown;
}

/**
 * Feeds one server-side WebSocket (from `Deno.upgradeWebSocket`) to a resume server: one binary
 * message per resume frame. Call it right after the upgrade, before the socket opens.
 * `remoteAddress` (for `maxSessionsPerAddress`) must be read from the handler's `info` before the
 * upgrade: Deno refuses to read it from a request already upgraded.
 *
 * Deno's WebSocket has no write callback: a frame counts as written once handed to `send`, and the
 * server's output bound rests on `bufferedAmount` (above `outputHighWaterBytes` the link is
 * closed). Deno's server has no per-message size limit below its own (64 MiB): a message above
 * `maxFrameBytes` is refused by the resume server after it arrived, and the link closed.
 *
 * @example
 * ```ts
 * Deno.serve((request, info) => {
 *   const { socket, response } = Deno.upgradeWebSocket(request);
 *   attachDenoWebSocket(resumeServer, socket, info.remoteAddr.hostname);
 *   return response;
 * });
 * ```
 * @see upgradeToResume, which upgrades and attaches in one call.
 */
export function attachDenoWebSocket(server: ResumeServer, socket: WebSocket, remoteAddress?: string): void {
  socket.binaryType = 'arraybuffer';
  let input: ReturnType<ResumeServer['accept']> | undefined;
  socket.onopen = () => {
    input = server.accept({
      send: (frame, written) => {
        try {
          // Frames are built on plain ArrayBuffers; the DOM typing of `send` wants that said.
          socket.send(frame as Uint8Array<ArrayBuffer>);
        } finally {
          written?.();
        }
      },
      get bufferedAmount() {
        return socket.bufferedAmount;
      },
      // Deno's WebSocket cannot drop a connection without a closing handshake: abrupt or not, close.
      close: (code, reason) => socket.close(code, reason),
      remoteAddress,
    });
  };
  socket.onmessage = (event: MessageEvent) => input?.receive(event.data);
  // An error is followed by 'close'; the server learns of the end there.
  socket.onerror = () => {};
  socket.onclose = () => input?.closed();
}

/**
 * Upgrades a request to a WebSocket and feeds it to a resume server; returns the response to
 * hand back to `Deno.serve`. A request that is not a WebSocket upgrade gets a 426.
 *
 * @example
 * ```ts
 * Deno.serve({ port: 8080 }, (request, info) => upgradeToResume(resumeServer, request, info));
 * ```
 * @see DenoResumeServer.listen, which serves this on a port of its own.
 */
export function upgradeToResume(server: ResumeServer, request: Request, info?: DenoServeInfo): Response {
  if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
    return new Response('a resume endpoint: WebSocket upgrades only', { status: 426 });
  }
  // Read before the upgrade, which closes the request to further reads.
  const remoteAddress = (info?.remoteAddr as { hostname?: string } | undefined)?.hostname;
  const deno = (globalThis as { Deno?: { upgradeWebSocket(request: Request): UpgradedWebSocket } }).Deno;
  if (deno === undefined) throw new TypeError('Deno.upgradeWebSocket is not available in this runtime');
  const { socket, response } = deno.upgradeWebSocket(request);
  attachDenoWebSocket(server, socket, remoteAddress);
  return response;
}

interface UpgradedWebSocket {
  socket: WebSocket;
  response: Response;
}
