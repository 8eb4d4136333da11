/** The OS error code of a `Deno.errors.*` error: its `code` where Deno sets one, else its class name's. */
export function syscallCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return CODES_BY_NAME[(error as { name?: string }).name ?? ''];
}

/** `Deno.errors` class names and the errno each stands for, for errors that carry no `code`. */
const CODES_BY_NAME: Readonly<Record<string, string>> = {
  ConnectionRefused: 'ECONNREFUSED',
  ConnectionReset: 'ECONNRESET',
  ConnectionAborted: 'ECONNABORTED',
  BrokenPipe: 'EPIPE',
  TimedOut: 'ETIMEDOUT',
  NotConnected: 'ENOTCONN',
  NetworkUnreachable: 'ENETUNREACH',
  AddrNotAvailable: 'EADDRNOTAVAIL',
};
