#!/usr/bin/env node
// Builds the API reference from the TSDoc comments with TypeDoc, into docs/api/ (gitignored).
// The entry points are read from each published package's package.json `exports` (the
// `@lifeline/source` file of every sub-path), so a new sub-path is documented without editing
// this script. Any TypeDoc warning fails the build (treatWarningsAsErrors).
//
//   node scripts/docs-api.mjs [--out DIR]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application } from 'typedoc';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : join(repo, 'docs', 'api');

const entryPoints = [];
for (const dir of readdirSync(join(repo, 'packages'))) {
  const manifestPath = join(repo, 'packages', dir, 'package.json');
  if (!existsSync(manifestPath)) continue;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  if (manifest.private) continue;
  for (const [key, target] of Object.entries(manifest.exports ?? {})) {
    const source = typeof target === 'object' && target !== null ? target['@lifeline/source'] : undefined;
    if (typeof source !== 'string') continue; // ./package.json
    entryPoints.push(join(repo, 'packages', dir, source));
    console.log(`docs:api: ${manifest.name}${key.slice(1)} <- packages/${dir}/${source.slice(2)}`);
  }
}

const app = await Application.bootstrap({
  entryPoints,
  entryPointStrategy: 'resolve',
  tsconfig: join(repo, 'tsconfig.typedoc.json'),
  out,
  name: 'Lifeline API reference',
  readme: join(repo, 'README.md'),
  treatWarningsAsErrors: true,
  excludePrivate: true,
  excludeInternal: true,
  // Members inherited from rxjs and Node (Observable.forEach, Duplex.write...) are theirs to document.
  excludeExternals: true,
  // An internal class a public comment names: link to its source rather than document it.
  externalSymbolLinkMappings: {
    '@lifeline/node': {
      WriteBatcher:
        'https://github.com/lifeline-sdk/lifeline/blob/main/packages/node/src/tcp/write-batcher.ts',
    },
  },
  githubPages: false,
  disableSources: true,
});
const project = await app.convert();
if (!project) {
  console.error('docs:api: TypeDoc could not convert the project');
  process.exit(1);
}
app.validate(project);
if (app.logger.hasErrors() || app.logger.hasWarnings()) {
  console.error(`docs:api: ${app.logger.errorCount} errors, ${app.logger.warningCount} warnings`);
  process.exit(1);
}
await app.generateDocs(project, out);
if (app.logger.hasErrors() || app.logger.hasWarnings()) process.exit(1);
console.log(`docs:api: written to ${out}`);
