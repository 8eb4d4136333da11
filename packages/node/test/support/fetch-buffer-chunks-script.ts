// Run by fetch-buffer-chunks.test.ts in its own process (a detached Buffer pool breaks every later
// Buffer allocation of the process it happens in): haFetch over a `fetch` whose body hands out
// small Node Buffers, each a view of Node's shared allocation pool, in each resume mode. Prints one
// JSON line: per mode, whether the body came through byte for byte, and whether Buffers still work.
import { createHAFetch } from '@lifeline/core/fetch';

type Mode = 'bytes' | 'event-stream' | 'ndjson';
const CONTENT_TYPE: Record<Mode, string> = {
  bytes: 'application/octet-stream',
  'event-stream': 'text/event-stream',
  ndjson: 'application/x-ndjson',
};

function bodyText(mode: Mode): string {
  let text = '';
  for (let i = 0; i < 300; i++)
    text +=
      mode === 'event-stream'
        ? `id: ${i}\ndata: event ${i}\n\n`
        : `{"n":${i},"pad":"${'x'.repeat(i % 7)}"}\n`;
  return text;
}

async function run(mode: Mode): Promise<{ mode: Mode; same: boolean; length: number; error?: string }> {
  const text = bodyText(mode);
  const fetch = async () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          // 7-byte pieces: lines and events end mid-chunk, so the resumers hold tails back.
          for (let at = 0; at < text.length; at += 7) controller.enqueue(Buffer.from(text.slice(at, at + 7)));
          controller.close();
        },
      }),
      { headers: { 'content-type': CONTENT_TYPE[mode], etag: '"v1"' } },
    );
  const haFetch = createHAFetch({ fetch: fetch as typeof globalThis.fetch });
  try {
    const response = await haFetch('http://127.0.0.1:1/', {
      lifeline: {
        resume: mode,
        cursor: { fromLine: (line) => line, applyToRequest: (request) => request },
      },
    });
    const got = await response.text();
    return { mode, same: got === text, length: got.length };
  } catch (error) {
    return { mode, same: false, length: -1, error: String(error) };
  }
}

const results = [];
for (const mode of ['bytes', 'event-stream', 'ndjson'] as const) results.push(await run(mode));
let buffersWork = true;
try {
  buffersWork = Buffer.from('after').toString() === 'after';
} catch {
  buffersWork = false;
}
console.log(JSON.stringify({ results, buffersWork }));
