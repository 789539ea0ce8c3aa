import { expect, test as base, type Page, type TestInfo } from '@playwright/test';

/**
 * The Playwright test, failing any test whose page logged an error to the console: a CSP
 * violation, a failed hydration or a panic in the WASM all show up there.
 */
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('console', (message) => {
        // A server function answering 4xx (a wrong password, a field error) is expected.
        const expected = /Failed to load resource: the server responded with a status of 4\d\d/;
        if (message.type() === 'error' && !expected.test(message.text())) errors.push(message.text());
      });
      page.on('pageerror', (error) => errors.push(error.message));
      await use(errors);
      expect(errors, 'errors in the browser console').toEqual([]);
    },
    { auto: true },
  ],
});

export const DEMO_EMAIL = 'demo@duecall.test';
export const DEMO_PASSWORD = 'duecall-demo';

/** Waits until the WASM app has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
}

/** Saves a full-page screenshot as a named test artifact. */
export async function shot(page: Page, testInfo: TestInfo, name: string) {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

export function uniqueEmail(prefix: string) {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}
