// An SSE feed consumed through `haFetch` from Deno, while the server process is killed with SIGKILL
// and restarted: the body never errors; each break is continued with `Last-Event-ID`, so the reader
// sees one stream with every event exactly once.
//
//   deno run --allow-net --allow-run --allow-read --allow-env --conditions=@lifeline/source examples/deno-sse-feed.ts
//   (or: pnpm --filter @lifeline/examples example:deno-sse)
//
// The server is this file in its `serve` mode (Deno.serve): `GET /feed` answers `text/event-stream`
// with events `id: k` / `data: k`, from the one after the request's `Last-Event-ID`. The feed is a
// log (event k due at START + k / RATE s), so a new server process continues it from any cursor.

import { SequenceCounter } from '@lifeline/core/testing';
import { haFetch } from '@lifeline/deno';

const encoder = new TextEncoder();

if (Deno.args[0] === 'serve') {
  const [, port = '0', start = String(Date.now()), rate = '100'] = Deno.args;
  const due = () => Math.floor(((Date.now() - Number(start)) * Number(rate)) / 1_000);
  Deno.serve(
    {
      hostname: '127.0.0.1',
      port: Number(port),
      onListen: ({ port }) => console.log(JSON.stringify({ port })),
    },
    (request) => {
      if (new URL(request.url).pathname !== '/feed') return new Response(null, { status: 404 });
      let next = Number(request.headers.get('last-event-id') ?? -1) + 1;
      let timer: ReturnType<typeof setInterval> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          timer = setInterval(() => {
            let chunk = '';
            for (const upTo = due(); next <= upTo; next++) chunk += `id: ${next}\ndata: ${next}\n\n`;
            if (chunk) controller.enqueue(encoder.encode(chunk));
          }, 10);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new Response(body, {
        headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' },
      });
    },
  );
} else {
  const start = String(Date.now());
  let port = 0;
  let server: Deno.ChildProcess | undefined;
  let kills = 0;

  /** The server, in its own process; after a kill, back on the same port. */
  async function startServer(): Promise<void> {
    server = new Deno.Command(Deno.execPath(), {
      args: [
        'run',
        '--allow-net',
        '--conditions=@lifeline/source',
        import.meta.filename!,
        'serve',
        String(port),
        start,
      ],
      stdout: 'piped',
      stderr: 'inherit',
    }).spawn();
    const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await lines.read();
    lines.releaseLock();
    port = (JSON.parse(value!.split('\n')[0]!) as { port: number }).port;
  }
  async function killServer(): Promise<void> {
    if (!server) return;
    server.kill('SIGKILL');
    await server.status;
    await server.stdout.cancel().catch(() => {});
    server = undefined;
    kills++;
  }

  await startServer();
  const controller = new AbortController();
  const response = await haFetch(`http://127.0.0.1:${port}/feed`, {
    signal: controller.signal,
    lifeline: { backoff: { initialDelayMs: 50, maxDelayMs: 500 } },
  });
  const events = new SequenceCounter();
  let highest = -1;
  let bodyError: unknown;
  const reading = (async () => {
    let buffer = '';
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        // haFetch hands over whole events only (up to a blank line), so split on it.
        const blocks = buffer.split('\n\n');
        buffer = blocks.pop()!;
        for (const block of blocks) {
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (data === undefined) continue;
          const k = Number(data.slice(6));
          events.record(k);
          highest = Math.max(highest, k);
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) bodyError = error;
    }
  })();

  /** Bounded wait on the reader's progress. */
  async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!check() && bodyError === undefined) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  try {
    for (let kill = 1; kill <= 2; kill++) {
      const mark = events.uniqueCount;
      await until(() => events.uniqueCount >= mark + 100, 'events');
      await killServer();
      await startServer();
    }
    const mark = events.uniqueCount;
    await until(() => events.uniqueCount >= mark + 100, 'events after the second kill');
  } catch (error) {
    await killServer(); // a server process must not outlive a failed example
    throw error;
  }
  controller.abort();
  await reading;
  await killServer();

  const c = events.counts(highest + 1);
  const lifeline = (response as Response & { lifeline?: { breaks: number; resumes: number } }).lifeline;
  const counts: Record<string, number> = {
    'server kills (SIGKILL)': kills - 1,
    'body breaks': lifeline?.breaks ?? 0,
    resumes: lifeline?.resumes ?? 0,
    'events received': c.unique,
    lost: c.lost,
    duplicated: c.duplicated,
    'out of order': c.reordered,
    'body errors': bodyError === undefined ? 0 : 1,
  };
  console.log('SSE through haFetch in Deno');
  for (const [label, value] of Object.entries(counts)) console.log(`  ${label}: ${value}`);
  if (bodyError !== undefined) console.log(`  body error: ${String(bodyError)}`);
  const ok =
    bodyError === undefined &&
    counts.resumes! >= 2 &&
    c.lost === 0 &&
    c.duplicated === 0 &&
    c.reordered === 0;
  Deno.exit(ok ? 0 : 1);
}
