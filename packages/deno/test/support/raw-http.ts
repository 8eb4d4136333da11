/** One request as the raw server read it. */
export interface RawRequest {
  readonly index: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
}

/** Writes the response to one request on its connection; the server closes the connection after. */
export type RawHandler = (request: RawRequest, conn: Deno.Conn) => Promise<void>;

const encoder = new TextEncoder();

/** Writes all of `bytes`; false when the peer went away. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    for (let offset = 0; offset < bytes.byteLength; ) offset += await conn.write(bytes.subarray(offset));
    return true;
  } catch {
    return false;
  }
}

/** A status line and headers (`connection: close` added), as bytes. */
export function head(status: number, headers: Record<string, string>): Uint8Array {
  let text = `HTTP/1.1 ${status} X\r\nconnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  return encoder.encode(`${text}\r\n`);
}

/**
 * An HTTP/1.1 server on 127.0.0.1:0 over `Deno.listen`, one request per connection, so a test
 * decides every byte and can close the connection mid-body (what `Deno.serve` does not let a
 * handler do): the client's fetch sees its body break right there.
 */
export class RawHttpServer {
  readonly requests: RawRequest[] = [];
  private readonly conns = new Set<Deno.Conn>();
  private readonly accepting: Promise<void>;

  private constructor(
    private readonly listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
    handler: RawHandler,
  ) {
    this.accepting = (async () => {
      for await (const conn of listener) {
        this.conns.add(conn);
        void this.serve(conn, handler).finally(() => {
          this.conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Closed already (by the handler, to cut the body).
          }
        });
      }
    })().catch(() => {});
  }

  static start(handler: RawHandler): RawHttpServer {
    return new RawHttpServer(Deno.listen({ hostname: '127.0.0.1', port: 0 }), handler);
  }

  get url(): string {
    return `http://127.0.0.1:${this.listener.addr.port}`;
  }

  async close(): Promise<void> {
    this.listener.close();
    for (const conn of this.conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    await this.accepting;
  }

  private async serve(conn: Deno.Conn, handler: RawHandler): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    let text = '';
    while (!text.includes('\r\n\r\n')) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return;
      text += new TextDecoder().decode(buffer.subarray(0, n));
      if (text.length > 64 * 1024) return;
    }
    const [requestLine = '', ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
    const [method = '', path = ''] = requestLine.split(' ');
    const headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const request = { index: this.requests.length, method, path, headers };
    this.requests.push(request);
    await handler(request, conn);
  }
}
