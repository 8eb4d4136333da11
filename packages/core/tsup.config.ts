import { defineConfig } from 'tsup';

export default defineConfig({
  // Entry names equal the export keys in package.json, so each sub-path is its own bundle.
  entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: ['rxjs'],
});
