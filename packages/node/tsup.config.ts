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
  // `import.meta.url` in the CommonJS build (require-peer.ts resolves optional peers from it).
  shims: true,
  target: 'node20',
  platform: 'node',
  external: ['rxjs', 'ws', 'undici', '@lifeline/core'],
});
