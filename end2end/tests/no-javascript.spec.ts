import { expect } from '@playwright/test';
import { DEMO_EMAIL, DEMO_PASSWORD, shot, test } from './helpers';

test.use({ javaScriptEnabled: false });

test('sign in, theme and sign out work as plain forms', async ({ page }, testInfo) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/sign-in$/);
  await shot(page, testInfo, 'nojs-sign-in');

  await page.getByLabel('Email').fill(DEMO_EMAIL);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('The email or password is incorrect.');
  await shot(page, testInfo, 'nojs-sign-in-error');

  await page.getByLabel('Email').fill(DEMO_EMAIL);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Welcome, Dana' })).toBeVisible();
  await shot(page, testInfo, 'nojs-dashboard');

  await page.getByRole('button', { name: 'Dark' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(page.getByRole('heading', { name: 'Welcome, Dana' })).toBeVisible();
  await shot(page, testInfo, 'nojs-dark');

  await page.locator('.nav a[data-nav="Invoices"]').click();
  await expect(page.getByRole('heading', { name: 'Invoices', exact: true })).toBeVisible();
  await expect(page.locator('table[data-test="invoices"] tbody tr')).toHaveCount(50);

  await page.locator('.user-menu summary').click();
  await page.locator('[data-test="sign-out"]').click();
  await expect(page).toHaveURL(/\/sign-in$/);
});

test('sign up shows field errors without JavaScript', async ({ page }, testInfo) => {
  await page.goto('/sign-up');
  await page.locator('form[data-test="sign-up-form"]').evaluate((f: HTMLFormElement) => (f.noValidate = true));
  await page.getByLabel('Your name').fill('No Script');
  await page.getByLabel('Business name').fill('Plain Forms Ltd');
  await page.getByLabel('Work email').fill(DEMO_EMAIL);
  await page.getByLabel('Password').fill('long enough password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('.field-error[data-field="email"]')).toContainText('already exists');
  await shot(page, testInfo, 'nojs-sign-up-error');
});
