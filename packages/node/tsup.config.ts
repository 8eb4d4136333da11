import { defineConfig } from 'tsup';

export default defineConfig({
  // Entry names equal the export keys: `ws` and `undici` are only reached through their sub-paths.
  entry: {
    index: 'src/index.ts',
    ws: 'src/ws.ts',
    tcp: 'src/tcp.ts',
    fetch: 'src/fetch.ts',
    testing: 'src/testing.ts',
    server: 'src/server.ts',
    'stores/sqlite': 'src/stores/sqlite.ts',
    'stores/redis': 'src/stores/redis.ts',
    'client-store': 'src/client-store.ts',
  },
  format: ['esm', 'cjs'],
  // `@internal` members (cross-module glue such as ServerSession's handshake hooks) stay out of the published types.
  dts: { compilerOptions: { stripInternal: true } },
  clean: true,
  sourcemap: true,
  // require-peer.ts resolves optional peers from `import.meta.url`; the CommonJS build has
  // `__filename` (createRequire takes either). Not tsup's `shims`: its shim file would be a
  // source in the maps that is not in the tarball.
  esbuildOptions(options, { format }) {
    if (format === 'cjs') options.define = { ...options.define, 'import.meta.url': '__filename' };
    // tsup turns the split CommonJS chunks through sucrase, which lowers class fields into
    // `X = (_class = class {...}, _class)`: the class would be named `_class` (stack traces,
    // util.inspect). keepNames has esbuild pin each name (`__name`), CommonJS only.
    if (format === 'cjs') options.keepNames = true;
  },
  target: 'node20',
  platform: 'node',
  // One copy of each class across the sub-paths, in CJS as in ESM.
  splitting: true,
  external: ['rxjs', 'ws', 'undici', '@lifeline/core', '@lifeline/fault-proxy'],
});
