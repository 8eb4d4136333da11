/** The part of a `Deno.Conn` that the TCP link uses. */
export interface DenoConnLike {
  /** Reads into `buffer`; resolves with the bytes read, or `null` at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `data`; resolves with how many bytes were written (possibly fewer). */
  write(data: Uint8Array): Promise<number>;
  close(): void;
  setNoDelay?(noDelay?: boolean): void;
  readonly localAddr?: unknown;
  readonly remoteAddr?: unknown;
}

/** What `Deno.connect` takes, for TCP. */
export interface DenoConnectOptions {
  hostname: string;
  port: number;
  transport: 'tcp';
  signal?: AbortSignal;
}

/** `Deno.connect`, or anything with its shape (a test double, a TLS connect). */
export type DenoConnect = (options: DenoConnectOptions) => Promise<DenoConnLike>;

/**
 * `Deno.connect`, looked up when called: importing this package in a runtime without `Deno`
 * (a bundler, a type check under Node) must not touch the global.
 *
 * @example
 * ```ts
 * const transport = tcpTransport({ port: 7000, connect: denoConnect });
 * ```
 * @see tcpTransport
 */
export const denoConnect: DenoConnect = (options) => {
  const deno = (globalThis as { Deno?: { connect: DenoConnect } }).Deno;
  if (deno === undefined)
    return Promise.reject(new TypeError('Deno.connect is not available in this runtime'));
  return deno.connect(options);
};
