import { expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { DEMO_EMAIL, DEMO_PASSWORD, hydrated, shot, test, uniqueEmail } from './helpers';

function isoDaysAgo(days: number) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

const customersCsv = [
  'customer_id,display_name,company_name,email,currency,billing_country,timezone,contact_name,contact_phone,contact_mobile',
  'E2E-1,Quokka Coffee Roasters,Quokka Coffee Pty Ltd,ap@quokka.example,AUD,AU,Australia/Sydney,Mia Chen,,0412 345 678',
  'E2E-2,Brambleberry Bakes,Brambleberry Ltd,accounts@bramble.example,GBP,GB,Europe/London,Tom Hill,020 7946 0018,',
  'E2E-3,Nightjar Print,Nightjar Print Inc,billing@nightjar.example,USD,US,America/Chicago,Ana Ruiz,,not a phone',
].join('\n');

const invoicesCsv = [
  'invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance',
  `Q-1,E2E-1,QC-0001,overdue,${isoDaysAgo(75)},${isoDaysAgo(45)},AUD,1800.00,1800.00`,
  `Q-2,E2E-1,QC-0002,sent,${isoDaysAgo(5)},${isoDaysAgo(-25)},AUD,950.00,950.00`,
  `B-1,E2E-2,BB-0001,partially_paid,${isoDaysAgo(50)},${isoDaysAgo(20)},GBP,600.00,250.00`,
  `N-1,E2E-3,NP-0001,overdue,${isoDaysAgo(130)},${isoDaysAgo(100)},USD,4200.00,4200.00`,
].join('\n');

test('import a CSV, find a customer, open it, filter invoices, export', async ({ page }, testInfo) => {
  await page.goto('/sign-up');
  await hydrated(page);
  await page.getByLabel('Your name').fill('Ivy Importer');
  await page.getByLabel('Business name').fill('Ivy Wholesale');
  await page.getByLabel('Work email').fill(uniqueEmail('importer'));
  await page.getByLabel('Password').fill('ivy wholesale 2026');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('heading', { name: 'Welcome, Ivy' })).toBeVisible();

  await page.locator('.nav a[data-nav="Integrations"]').click();
  await hydrated(page);
  // A file with a bad row imports nothing and names the row.
  await page.locator('input[name="customers"]').setInputFiles({
    name: 'customers.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(customersCsv.replace('AUD,AU', 'DOLLARS,AU')),
  });
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.locator('[data-test="import-errors"]')).toContainText('nothing was imported');
  await expect(page.locator('[data-test="import-errors"] td').first()).toHaveText('2');
  await shot(page, testInfo, 'import-errors');

  await page.locator('input[name="customers"]').setInputFiles({ name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from(customersCsv) });
  await page.locator('input[name="invoices"]').setInputFiles({ name: 'invoices.csv', mimeType: 'text/csv', buffer: Buffer.from(invoicesCsv) });
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.locator('[data-test="import-result"]')).toContainText('Customers: 3 new, 0 updated, 0 unchanged');
  await expect(page.locator('[data-test="import-result"]')).toContainText('Invoices: 4 new');
  await shot(page, testInfo, 'import-result');

  // Find a customer by search and open the detail view.
  await page.locator('.nav a[data-nav="Customers"]').click();
  await expect(page.locator('table[data-test="customers"] tbody tr')).toHaveCount(3);
  await shot(page, testInfo, 'customers');
  await page.getByPlaceholder('Name, company, email or phone').fill('quokka');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/q=quokka/);
  await expect(page.locator('table[data-test="customers"] tbody tr')).toHaveCount(1);
  await page.getByRole('link', { name: 'Quokka Coffee Roasters' }).click();
  await expect(page.locator('[data-test="customer-name"]')).toHaveText('Quokka Coffee Roasters');
  await expect(page.locator('[data-test="phone-reason"]')).toHaveText("primary contact Mia Chen's mobile");
  await expect(page.locator('table[data-test="customer-invoices"] tbody tr')).toHaveCount(2);
  await shot(page, testInfo, 'customer-detail');

  // Invoices in the 31–60 day bucket.
  await page.locator('.nav a[data-nav="Invoices"]').click();
  await expect(page.locator('table[data-test="invoices"] tbody tr')).toHaveCount(4);
  await page.locator('select[name="bucket"]').selectOption('31-60');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/bucket=31-60/);
  await expect(page.locator('table[data-test="invoices"] tbody tr')).toHaveCount(1);
  await expect(page.locator('table[data-test="invoices"]')).toContainText('QC-0001');
  await expect(page.locator('[data-test="invoice-totals"]')).toContainText('1 invoice ·');
  await shot(page, testInfo, 'invoices-31-60');

  // Export the filtered list.
  const downloadPromise = page.waitForEvent('download');
  await page.locator('[data-test="export-invoices"]').click();
  const download = await downloadPromise;
  const exported = readFileSync(await download.path(), 'utf8');
  expect(exported.split('\n')[0]).toContain('invoice_number,customer,status');
  expect(exported).toContain('QC-0001');
  expect(exported).not.toContain('BB-0001');

  await page.getByRole('link', { name: 'QC-0001' }).click();
  await expect(page.locator('[data-test="invoice-number"]')).toHaveText('Invoice QC-0001');
  await shot(page, testInfo, 'invoice-detail');

  await page.locator('.nav a[data-nav="Dashboard"]').click();
  await expect(page.locator('[data-test="aging"]')).toBeVisible();
  await shot(page, testInfo, 'dashboard-with-data');
});

test('the demo books render without JavaScript too', async ({ browser }, testInfo) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(DEMO_EMAIL);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('[data-test="kpis"]')).toBeVisible();
  await expect(page.locator('[data-test="top-overdue"] tbody tr')).toHaveCount(10);
  await shot(page, testInfo, 'nojs-demo-dashboard');

  await page.goto('/customers?overdue=1&sort=outstanding');
  await expect(page.locator('table[data-test="customers"] tbody tr')).toHaveCount(50);
  await page.locator('[data-test="next-page"]').click();
  await expect(page).toHaveURL(/after=/);
  await expect(page.locator('table[data-test="customers"] tbody tr').first()).toBeVisible();
  await shot(page, testInfo, 'nojs-customers-page-2');

  await page.goto('/invoices');
  await page.locator('select[name="bucket"]').selectOption('61-90');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/bucket=61-90/);
  const overdue = await page.locator('table[data-test="invoices"] tbody tr td:nth-child(6)').allTextContents();
  expect(overdue.length).toBeGreaterThan(0);
  for (const cell of overdue) {
    const days = Number(cell.replace(' d', ''));
    expect(days).toBeGreaterThanOrEqual(61);
    expect(days).toBeLessThanOrEqual(90);
  }
  await shot(page, testInfo, 'nojs-invoices-61-90');
  await context.close();
});
