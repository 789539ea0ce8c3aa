import { expect } from '@playwright/test';
import { DEMO_EMAIL, DEMO_PASSWORD, hydrated, shot, test, uniqueEmail } from './helpers';

test('sign up, look around, switch theme, sign out and back in', async ({ page }, testInfo) => {
  const email = uniqueEmail('owner');
  await page.goto('/sign-up');
  await hydrated(page);
  await shot(page, testInfo, 'sign-up');

  // Field errors appear inline without leaving the page.
  await page.getByLabel('Your name').fill('Olivia Owner');
  await page.getByLabel('Business name').fill('Olive Trading');
  await page.getByLabel('Work email').fill(email);
  await page.getByLabel('Password').fill('short');
  await page.locator('form[data-test="sign-up-form"]').evaluate((f: HTMLFormElement) => (f.noValidate = true));
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('.field-error[data-field="password"]')).toContainText('at least 10 characters');

  await page.getByLabel('Password').fill('olive trading 2026');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Welcome, Olivia' })).toBeVisible();
  await hydrated(page);
  await shot(page, testInfo, 'dashboard');

  // Every section renders: built pages or a clear empty state, never an error.
  for (const [label, heading] of [
    ['Customers', 'No customers yet'],
    ['Invoices', 'No invoices yet'],
    ['Reminders', 'No reminders yet'],
    ['Calls', 'No calls yet'],
    ['Analytics', 'Nothing to chart yet'],
    ['Assistant', 'The assistant needs data first'],
    ['Integrations', 'Import CSV files'],
  ]) {
    await page.locator(`.nav a[data-nav="${label}"]`).click();
    await expect(page.getByRole('heading', { name: heading })).toBeVisible();
    await expect(page.locator(`.nav a[data-nav="${label}"]`)).toHaveAttribute('aria-current', 'page');
    await shot(page, testInfo, `page-${label.toLowerCase()}`);
  }
  await page.locator('.nav a[data-nav="Settings"]').click();
  await expect(page.getByRole('heading', { name: 'Members' })).toBeVisible();
  await expect(page.locator('table[data-test="members"]')).toContainText(email);
  await shot(page, testInfo, 'page-settings');

  // Dark theme applies at once and is what the server renders next time (no flash).
  await page.getByRole('button', { name: 'Dark' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  const response = await page.request.get('/settings');
  expect(await response.text()).toContain('data-theme="dark"');
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await shot(page, testInfo, 'settings-dark');
  await page.getByRole('button', { name: 'System' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'system');

  // Sign out through the user menu.
  await hydrated(page);
  await page.locator('.user-menu summary').click();
  await page.locator('[data-test="sign-out"]').click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/sign-in$/);

  // Wrong password: one generic message, inline.
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('The email or password is incorrect.');
  await shot(page, testInfo, 'sign-in-error');

  await page.getByLabel('Password').fill('olive trading 2026');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Welcome, Olivia' })).toBeVisible();
});

test('the demo account can sign in and switch organizations', async ({ page }, testInfo) => {
  await page.goto('/settings');
  await expect(page).toHaveURL(/\/sign-in\?next=\/settings$/);
  await hydrated(page);
  await page.getByLabel('Email').fill(DEMO_EMAIL);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await expect(page.locator('.topbar-title')).toContainText('Northwind Supplies');
  await expect(page.locator('table[data-test="members"]')).toContainText('Victor Viewer');
  await shot(page, testInfo, 'demo-settings');

  await hydrated(page);
  await page.locator('#org-select').selectOption({ label: 'Harbor Goods' });
  await expect(page.locator('.topbar-title')).toContainText('Harbor Goods');
  await shot(page, testInfo, 'demo-switched');
});

test('a narrow screen gets a menu button instead of the sidebar', async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(DEMO_EMAIL);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Welcome, Dana' })).toBeVisible();
  await expect(page.locator('.sidebar')).not.toBeInViewport();
  await hydrated(page);
  await page.locator('.nav-button').click();
  await expect(page.locator('.sidebar')).toBeInViewport();
  await shot(page, testInfo, 'mobile-menu');
  // Choosing a page closes the drawer.
  await page.locator('.nav a[data-nav="Calls"]').click();
  await expect(page.getByRole('heading', { name: 'No calls yet' })).toBeVisible();
  await expect(page.locator('.sidebar')).not.toBeInViewport();
});
