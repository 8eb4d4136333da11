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
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  // require-peer.ts resolves optional peers from `import.meta.url`; the CommonJS build has
  // `__filename` (createRequire takes either). Not tsup's `shims`: its shim file would be a
  // source in the maps that is not in the tarball.
  esbuildOptions(options, { format }) {
    if (format === 'cjs') options.define = { ...options.define, 'import.meta.url': '__filename' };
  },
  target: 'node20',
  platform: 'node',
  external: ['rxjs', 'ws', 'undici', '@lifeline/core'],
});
