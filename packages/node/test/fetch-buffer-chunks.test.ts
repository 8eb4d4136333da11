/**
 * haFetch with a `fetch` whose body hands out Node Buffers (a fetch built on Node streams): a small
 * Buffer is a view of Node's shared 8 KiB allocation pool. A resumable body enqueues each chunk into
 * a byte stream, which takes over (detaches) the chunk's ArrayBuffer, so a chunk that does not own its
 * buffer is copied first; `bytes.slice()` is that copy for a Uint8Array but a VIEW for a Buffer, so
 * the byte stream detached Node's pool itself: the body's own later chunks and every Buffer the
 * process allocated afterwards failed ("Cannot perform Construct on a detached ArrayBuffer").
 */
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runScript } from './support/run-script.js';

const script = fileURLToPath(new URL('./support/fetch-buffer-chunks-script.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

it('resumed bodies made of pooled Buffer chunks arrive byte for byte in every mode and leave the Buffer pool usable', async () => {
  const run = await runScript(script, { cwd: root, timeoutMs: 60_000 });
  const line = run.output.split('\n').find((text) => text.startsWith('{'));
  expect(line, run.output).toBeDefined();
  const report = JSON.parse(line!) as { results: { mode: string; same: boolean }[]; buffersWork: boolean };
  expect(report).toEqual({
    results: [
      { mode: 'bytes', same: true, length: expect.any(Number) },
      { mode: 'event-stream', same: true, length: expect.any(Number) },
      { mode: 'ndjson', same: true, length: expect.any(Number) },
    ],
    buffersWork: true,
  });
  expect(run.code).toBe(0);
});
