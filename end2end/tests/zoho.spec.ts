import { expect } from '@playwright/test';
import { hydrated, shot, test, uniqueEmail } from './helpers';

test('connect the local Zoho Books, watch the sync, see customers and invoices', async ({ page }, testInfo) => {
  test.setTimeout(90_000);
  await page.goto('/sign-up');
  await hydrated(page);
  await page.getByLabel('Your name').fill('Zoe Books');
  await page.getByLabel('Business name').fill('Zoe Wholesale');
  await page.getByLabel('Work email').fill(uniqueEmail('zoho'));
  await page.getByLabel('Password').fill('zoe wholesale 2026');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('heading', { name: 'Welcome, Zoe' })).toBeVisible();

  await page.locator('.nav a[data-nav="Integrations"]').click();
  await hydrated(page);
  await expect(page.locator('[data-test="zoho-local"]')).toBeVisible();
  await shot(page, testInfo, 'integrations-before-connect');
  await page.locator('[data-test="zoho-connect"]').click();

  // Zoho's consent page (the local one), after its redirect to the user's data centre.
  await expect(page.getByRole('button', { name: 'Accept' })).toBeVisible();
  await shot(page, testInfo, 'zoho-consent');
  await page.getByRole('button', { name: 'Accept' }).click();

  // Back in Duecall: choose the Books organization (the default is preselected).
  await expect(page.locator('[data-test="zoho-notice"]')).toContainText('Choose the organization');
  await expect(page.locator('select[data-test="zoho-org"]')).toContainText('Northwind Traders (USD) — default');
  await shot(page, testInfo, 'zoho-choose-organization');
  await page.locator('[data-test="zoho-choose"]').click();
  await expect(page.locator('[data-test="zoho-notice"]')).toContainText('Syncing started');
  await hydrated(page);

  // The card follows the run: the badge says it is syncing and the progress line moves. At
  // Zoho's 100 requests a minute the customers' full records take a minute or two; customers
  // and invoices are there long before.
  const badge = page.locator('[data-test="zoho-health"]');
  await expect(badge).toHaveAttribute('data-health', /Syncing|Ok/);
  await expect(page.locator('[data-test="zoho-progress"]')).toContainText(/invoices new or updated/);
  await expect(page.locator('[data-test="zoho-progress"]')).toContainText(/[1-9]\d* invoices new or updated/, { timeout: 30_000 });
  await shot(page, testInfo, 'integrations-zoho-syncing');

  await page.locator('.nav a[data-nav="Customers"]').click();
  await expect(page.locator('table[data-test="customers"] tbody tr')).toHaveCount(50);
  await shot(page, testInfo, 'zoho-customers');
  await page.locator('.nav a[data-nav="Invoices"]').click();
  await expect(page.locator('table[data-test="invoices"] tbody tr')).toHaveCount(50);
  await shot(page, testInfo, 'zoho-invoices');

  // Back on the Integrations page the badge and the run are there (still running or done).
  await page.locator('.nav a[data-nav="Integrations"]').click();
  await expect(page.locator('[data-test="zoho-health"]')).toHaveAttribute('data-health', /Syncing|Ok/);
  await expect(page.locator('[data-test="zoho-runs"] tbody tr').first()).toContainText(/running|done/);
  await shot(page, testInfo, 'integrations-zoho-health');
});
