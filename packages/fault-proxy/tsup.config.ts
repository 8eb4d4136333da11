import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  // FaultProxy names itself in its body (`new FaultProxy` in start()): esbuild would bundle it as
  // `class _FaultProxy`, and that would be its `name`. keepNames pins the exported name.
  keepNames: true,
});
