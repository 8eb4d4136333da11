import { defineConfig } from 'tsup';

export default defineConfig({
  // Entry names equal the export keys in package.json, so each sub-path is its own entry.
  entry: {
    index: 'src/index.ts',
    'websocket/index': 'src/websocket/index.ts',
    'fetch/index': 'src/fetch/index.ts',
    'tcp/index': 'src/tcp/index.ts',
    'resume/index': 'src/resume/index.ts',
    'resume/server/index': 'src/resume/server/index.ts',
    'testing/index': 'src/testing/index.ts',
    internal: 'src/internal.ts',
    'internal/server': 'src/internal-server.ts',
  },
  format: ['esm', 'cjs'],
  // `@internal` members (cross-module glue such as ServerSession's handshake hooks) stay out of the published types.
  dts: { compilerOptions: { stripInternal: true } },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // Shared chunks in both formats: one copy of each class across entries, so `instanceof` and the
  // engine's state hold when an application imports the root and a sub-path together (CJS too).
  splitting: true,
  // tsup turns the split CommonJS chunks through sucrase, which lowers class fields into
  // `X = (_class = class {...}, _class)`: the class would be named `_class` (in stack traces, in
  // util.inspect). keepNames has esbuild pin each name (`__name`); CommonJS only, so the ES build
  // (what bundlers and the browser size gate take) does not grow.
  esbuildOptions(options, { format }) {
    if (format === 'cjs') options.keepNames = true;
    // Private members named with a trailing underscore (`socket_`) are renamed to short names in
    // the published build: a bundler's minifier shortens variables but never property names,
    // and the per-connection classes (a WebSocket link, a fanout) read theirs on every line.
    // Nothing outside core reads them (rxjs's own private members start with one instead).
    options.mangleProps = /^[a-z]\w*_$/;
  },
  external: ['rxjs'],
});
