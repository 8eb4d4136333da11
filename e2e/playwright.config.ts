import { defineConfig } from '@playwright/test';

// Debian's Chromium, never a downloaded build (nothing but the package registries is reachable).
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: './tests',
  // One worker: the machine has 2 cores, and every test kills and restarts servers.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: true,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  outputDir: './test-results',
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1100, height: 900 },
    // waitForFunction and friends: a wait that cannot end fails in this time, not at the test timeout.
    actionTimeout: 30_000,
    launchOptions: {
      executablePath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
});
