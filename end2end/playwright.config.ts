import { defineConfig } from '@playwright/test';

// The release server built by `cargo leptos build --release`, on a fresh SQLite database with
// the demo organization loaded. Run through scripts/test (or `npm run e2e` after a build).
const port = Number(process.env.E2E_PORT ?? 3100);
const bin = process.env.DUECALL_BIN ?? 'target/release/duecall';
const dataDir = process.env.E2E_DATA_DIR ?? `/tmp/duecall-e2e-${port}`;

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'on',
    reducedMotion: 'reduce',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium', headless: true } }],
  webServer: {
    command: `rm -rf ${dataDir} && mkdir -p ${dataDir} && exec ${bin} serve`,
    cwd: '..',
    url: `http://127.0.0.1:${port}/readyz`,
    timeout: 60_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      DATABASE_URL: `sqlite://${dataDir}/duecall.db`,
      DUECALL_ADDR: `127.0.0.1:${port}`,
      DUECALL_DEMO: 'true',
      DUECALL_SITE_ROOT: process.env.DUECALL_SITE_ROOT ?? 'target/site',
      DUECALL_SIGN_IN_PER_MINUTE: '100',
      DUECALL_LOG: 'warn',
      // Simulated calls ring for 1.5 s and talk for 2.5 s (believable, but quick).
      DUECALL_SIMULATOR_RING_MS: '1500',
      DUECALL_SIMULATOR_TALK_MS: '2500',
      // The built-in local Zoho Books (mounted at /fake-zoho) with a fixed test key.
      DUECALL_ZOHO_LOCAL: 'true',
      DUECALL_ENCRYPTION_KEY: 'ZTJlLXRlc3Qta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE=',
    },
  },
});
