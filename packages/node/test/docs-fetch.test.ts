/**
 * docs/fetch.md's runnable examples, run as a user would run them: each ```js block followed by
 * "It prints `...`" must print exactly that and exit on its own.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runScript } from './support/run-script.js';

const docs = readFileSync(new URL('../../../docs/fetch.md', import.meta.url), 'utf8');
const examples = [...docs.matchAll(/```js\n([\s\S]*?)```\n\nIt prints `([^`]+)`\./g)].map((match) => ({
  code: match[1] as string,
  prints: match[2] as string,
}));

/** Runs `code` as an .mjs file inside @lifeline/node (so `@lifeline/node/fetch` resolves to itself). */
async function run(code: string, name: string, timeoutMs = 60_000) {
  const file = fileURLToPath(new URL(`../.docs-example-${process.pid}-${name}.mjs`, import.meta.url));
  writeFileSync(file, code);
  try {
    return await runScript(file, { timeoutMs });
  } finally {
    rmSync(file, { force: true });
  }
}

describe('docs/fetch.md examples', () => {
  it('has the runnable examples (haFetch, HAEventSource)', () => {
    expect(examples).toHaveLength(2);
    expect(examples[0]?.code).toContain('haFetch');
    expect(examples[1]?.code).toContain('HAEventSource');
  });

  for (const [i, example] of examples.entries()) {
    it(`example ${i + 1} prints ${example.prints} and exits`, async () => {
      const { code, output } = await run(example.code, String(i));
      expect(output.trim()).toBe(example.prints);
      expect(code).toBe(0);
    }, 90_000);
  }
});
