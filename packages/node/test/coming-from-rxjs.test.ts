/**
 * docs/websocket.md, "Coming from RxJS": its before/after code is the code of
 * examples/coming-from-rxjs.ts (checked verbatim), and the example does what the section says.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { runScript } from './support/run-script.js';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
const docs = fileURLToPath(new URL('../../../docs/websocket.md', import.meta.url));

test('the section shows the example regions verbatim', async () => {
  const example = await readFile(`${examples}coming-from-rxjs.ts`, 'utf8');
  const doc = await readFile(docs, 'utf8');
  for (const name of ['before', 'after']) {
    const region = new RegExp(`// #region ${name}\\n([\\s\\S]*?)// #endregion ${name}`).exec(example)?.[1];
    expect(region, name).toBeTruthy();
    expect(doc).toContain(`\`\`\`ts\n${region!.trimEnd()}\n\`\`\``);
  }
});

test('examples/coming-from-rxjs.ts: webSocket() + retry loses the note, haWebSocket() delivers it once, and the process exits', async () => {
  const { code, output } = await runScript('coming-from-rxjs.ts', { cwd: examples });
  expect(output).toContain(
    'rxjs webSocket() + retry: prices flowing again; note delivered 0 time(s); subscribe messages 2',
  );
  expect(output).toContain(
    'haWebSocket(): prices flowing again; note delivered 1 time(s); subscribe messages 2',
  );
  // The section quotes the output too.
  const doc = await readFile(docs, 'utf8');
  for (const line of output.trim().split('\n')) expect(doc).toContain(line);
  expect(code).toBe(0);
}, 90_000);
