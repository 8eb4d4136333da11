import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources through the `@lifeline/source` export condition,
// so no build step is needed between an edit and a test run.
const conditions = ['@lifeline/source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'core', include: ['packages/core/test/**/*.test.ts'], testTimeout: 20_000 },
      },
      {
        extends: true,
        test: {
          name: 'node',
          include: ['packages/node/test/**/*.test.ts'],
          exclude: ['**/*.soak.test.ts', '**/node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Long runs (SIGKILL loops, minute-long streams, default-timing outages): out of the unit
        // projects so an edit-test loop stays short; `pnpm test` still runs them (turbo `test:soak`).
        extends: true,
        test: {
          name: 'soak',
          include: ['packages/*/test/**/*.soak.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'fault-proxy',
          include: ['packages/fault-proxy/test/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
    ],
  },
});
