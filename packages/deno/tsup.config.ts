import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    tcp: 'src/tcp.ts',
    server: 'src/server.ts',
    'client-store': 'src/client-store.ts',
  },
  format: ['esm', 'cjs'],
  // `@internal` members (cross-module glue such as ServerSession's handshake hooks) stay out of the published types.
  dts: { compilerOptions: { stripInternal: true } },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: ['rxjs', '@lifeline/core'],
});
