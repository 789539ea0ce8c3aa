import { expect } from '@playwright/test';
import { hydrated, shot, test, uniqueEmail } from './helpers';

function isoDaysAgo(days: number) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

const customersCsv = [
  'customer_id,display_name,company_name,email,currency,billing_country,timezone,opted_out,contact_name,contact_phone,contact_mobile',
  'R-1,Kestrel Kitchens,Kestrel Ltd,ap@kestrel.example,GBP,GB,,false,Ruth Bell,020 7946 0101,',
  'R-2,Marlin Marine,Marlin Inc,ap@marlin.example,USD,US,America/New_York,false,Sam Ortiz,,(212) 555-0147',
  'R-3,Ibis Imports,Ibis Pvt Ltd,ap@ibis.example,INR,IN,,false,Ravi Rao,,098765 43210',
  'R-4,Quiet Quarry,Quiet Quarry Ltd,ap@quarry.example,GBP,GB,,true,Olu Ade,020 7946 0102,',
  'R-5,Nowhere Nets,Nowhere Nets,ap@nets.example,USD,,,false,Pat Doe,,+1 212 555 0199',
  'R-6,Broken Line Co,Broken Line,ap@broken.example,GBP,GB,,false,Kim Ray,,not a phone',
].join('\n');

const invoicesCsv = [
  'invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance',
  `I-1,R-1,KK-001,overdue,${isoDaysAgo(40)},${isoDaysAgo(10)},GBP,1250.00,1250.00`,
  `I-2,R-2,MM-001,overdue,${isoDaysAgo(33)},${isoDaysAgo(3)},USD,980.00,980.00`,
  `I-3,R-3,II-001,sent,${isoDaysAgo(20)},${isoDaysAgo(-2)},INR,45000.00,45000.00`,
  `I-4,R-4,QQ-001,overdue,${isoDaysAgo(60)},${isoDaysAgo(30)},GBP,300.00,300.00`,
  `I-5,R-5,NN-001,overdue,${isoDaysAgo(45)},${isoDaysAgo(15)},USD,720.00,720.00`,
  `I-6,R-6,BL-001,overdue,${isoDaysAgo(45)},${isoDaysAgo(15)},GBP,410.00,410.00`,
].join('\n');

test('set calling rules, read the dry-run calendar and its reasons, switch calls on', async ({ page }, testInfo) => {
  test.setTimeout(60_000);
  await page.goto('/sign-up');
  await hydrated(page);
  await page.getByLabel('Your name').fill('Rita Rules');
  await page.getByLabel('Business name').fill('Rita Foods');
  await page.getByLabel('Work email').fill(uniqueEmail('rules'));
  await page.getByLabel('Password').fill('rita foods 2026');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('heading', { name: 'Welcome, Rita' })).toBeVisible();

  await page.locator('.nav a[data-nav="Integrations"]').click();
  await hydrated(page);
  await page.locator('input[name="customers"]').setInputFiles({ name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from(customersCsv) });
  await page.locator('input[name="invoices"]').setInputFiles({ name: 'invoices.csv', mimeType: 'text/csv', buffer: Buffer.from(invoicesCsv) });
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.locator('[data-test="import-result"]')).toContainText('Invoices: 6 new');

  // Settings → Calling rules: calls are off for a new organization.
  await page.locator('.nav a[data-nav="Settings"]').click();
  await page.locator('[data-test="calling-rules-link"]').click();
  await hydrated(page);
  await expect(page.locator('[data-test="calls-state"]')).toHaveAttribute('data-enabled', 'false');
  await expect(page.locator('[data-test="opening"]')).toContainText('Rita Foods');

  // A mistake is named next to its field, and nothing is saved.
  const form = page.locator('[data-test="calling-rules"]');
  await form.locator('input[name="form[call_start]"]').fill('10:00');
  await form.locator('input[name="form[call_end]"]').fill('07:00');
  await form.locator('input[name="form[sequence]"]').fill('-3, 0, soon');
  await page.locator('[data-test="save-rules"]').click();
  await expect(page.locator('.field-error[data-field="call_end"]')).toContainText('must end after they start');
  await expect(page.locator('.field-error[data-field="sequence"]')).toContainText('is not a number of days');
  await shot(page, testInfo, 'calling-rules-errors');

  // Calling hours 10:00–17:00 on weekdays and Saturday, a sequence of three steps.
  await form.locator('input[name="form[call_end]"]').fill('17:00');
  await form.locator('input[name="form[sequence]"]').fill('-3, 0, 7');
  await form.locator('input[name="form[sat]"]').check();
  await page.locator('[data-test="save-rules"]').click();
  await expect(page.locator('[data-test="saved"]')).toBeVisible();
  await shot(page, testInfo, 'calling-rules-saved');

  // The dry-run calendar: who would be called when, and who not and why.
  await page.goto('/reminders/calendar?days=14');
  await hydrated(page);
  await expect(page.locator('[data-test="planned-total"]')).not.toHaveText('0');
  const reasons = page.locator('[data-test="not-called"]');
  await expect(reasons.locator('[data-kind="opted_out"]')).toContainText('QQ-001');
  await expect(reasons.locator('[data-kind="unknown_zone"]')).toContainText('no country');
  await expect(reasons.locator('[data-kind="invalid_phone"]')).toContainText('BL-001');
  await reasons.locator('details').evaluateAll((all) => all.forEach((d) => d.setAttribute('open', '')));
  await shot(page, testInfo, 'dry-run-calendar');
  const planned = page.locator('[data-test="calendar-day"] tbody tr');
  await expect(planned.first()).toBeVisible();
  await expect(page.locator('[data-test="calendar-day"]').filter({ hasText: 'KK-001' }).first()).toContainText('Kestrel Kitchens');

  // Switch calls on; the banner says so.
  await page.locator('[data-test="calls-switch"] button').click();
  await expect(page.locator('[data-test="calls-state"]')).toHaveAttribute('data-enabled', 'true');
  await shot(page, testInfo, 'calls-switched-on');

  // The reminders, with their next attempt on both clocks; one reminder's history.
  await page.locator('.nav a[data-nav="Reminders"]').click();
  await hydrated(page);
  await expect(page.locator('table[data-test="reminders"] tbody tr').first()).toBeVisible();
  await shot(page, testInfo, 'reminders');
  await page.locator('table[data-test="reminders"] tbody tr').filter({ hasText: 'MM-001' }).filter({ hasText: '7 days after' }).getByRole('link', { name: 'Marlin Marine' }).click();
  await hydrated(page);
  await expect(page.locator('[data-test="reminder-title"]')).toContainText('Marlin Marine');
  await page.locator('[data-test="reminder-actions"] button[data-action="pause"]').click();
  await expect(page.locator('[data-test="history"]')).toContainText('pause');
  await shot(page, testInfo, 'reminder-paused');
});
