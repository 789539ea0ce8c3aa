import { expect } from '@playwright/test';
import { hydrated, shot, test, uniqueEmail } from './helpers';

function isoDaysAgo(days: number) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

/**
 * A fixed-offset zone where it is around noon now, so the debtors may be called whatever the
 * time of day the test runs (Etc/GMT-3 is UTC+3: the sign is inverted in these names).
 */
function noonZone() {
  let offset = 12 - new Date().getUTCHours();
  if (offset > 14) offset -= 24;
  if (offset < -12) offset += 24;
  if (offset === 0) return 'Etc/GMT';
  return offset > 0 ? `Etc/GMT-${offset}` : `Etc/GMT+${-offset}`;
}

const names = ['Alder Analytics', 'Birch Bakery', 'Cedar Clinic', 'Dogwood Design', 'Elm Electric', 'Fir Freight', 'Ginkgo Garden', 'Hazel Hotels'];

test('the offline loop: reminders become simulated calls, reported by signed webhooks, shown live with their follow-ups', async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  const zone = noonZone();
  const customers = ['customer_id,display_name,company_name,email,currency,billing_country,timezone,contact_name,contact_phone']
    .concat(names.map((name, i) => `L-${i + 1},${name},${name} Ltd,ap${i}@loop.example,GBP,GB,${zone},Accounts,020 7946 01${String(i).padStart(2, '0')}`))
    .join('\n');
  const invoices = ['invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance']
    .concat(names.map((_, i) => `LI-${i + 1},L-${i + 1},LOOP-${100 + i},overdue,${isoDaysAgo(40)},${isoDaysAgo(10)},GBP,${1000 + i * 100}.00,${1000 + i * 100}.00`))
    .join('\n');

  await page.goto('/sign-up');
  await hydrated(page);
  await page.getByLabel('Your name').fill('Lena Loop');
  await page.getByLabel('Business name').fill('Loop Supplies');
  await page.getByLabel('Work email').fill(uniqueEmail('loop'));
  await page.getByLabel('Password').fill('loop supplies 2026');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('heading', { name: 'Welcome, Lena' })).toBeVisible();

  await page.locator('.nav a[data-nav="Integrations"]').click();
  await hydrated(page);
  await page.locator('input[name="customers"]').setInputFiles({ name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from(customers) });
  await page.locator('input[name="invoices"]').setInputFiles({ name: 'invoices.csv', mimeType: 'text/csv', buffer: Buffer.from(invoices) });
  await page.getByRole('button', { name: 'Import' }).click();
  await expect(page.locator('[data-test="import-result"]')).toContainText('Invoices: 8 new');

  // Calling rules: every day, one call on the due date (long passed), ten calls at once.
  await page.goto('/settings/calling');
  await hydrated(page);
  const form = page.locator('[data-test="calling-rules"]');
  for (const day of ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']) {
    await form.locator(`input[name="form[${day}]"]`).check();
  }
  await form.locator('input[name="form[call_start]"]').fill('08:00');
  await form.locator('input[name="form[call_end]"]').fill('20:00');
  await form.locator('input[name="form[sequence]"]').fill('0');
  await form.locator('input[name="form[max_concurrent_calls]"]').fill('10');
  await page.locator('[data-test="save-rules"]').click();
  await expect(page.locator('[data-test="saved"]')).toBeVisible();
  await page.locator('[data-test="calls-switch"] button').click();
  await expect(page.locator('[data-test="calls-state"]')).toHaveAttribute('data-enabled', 'true');

  // The calls page, opened once and never reloaded: calls appear and end on their own.
  await page.locator('.nav a[data-nav="Calls"]').click();
  await hydrated(page);
  await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
  const rows = page.locator('table[data-test="calls"] tbody tr');
  await expect(rows).toHaveCount(8, { timeout: 30_000 });
  await shot(page, testInfo, 'calls-live');
  const outcome = (name: string) => page.locator(`[data-test="call-outcome"][data-outcome="${name}"]`);
  for (const name of ['promise_to_pay', 'will_pay_today', 'already_paid', 'callback_requested', 'no_answer', 'busy', 'failed']) {
    await expect(outcome(name).first()).toBeVisible({ timeout: 30_000 });
  }
  await expect(page.locator('[data-test="live-count"]')).toContainText('No call under way.');
  await expect(page.locator('.tag.simulated').first()).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
  await shot(page, testInfo, 'calls-ended');

  // Filter: promises only.
  await page.locator('[data-test="filter-outcome"]').selectOption('promise_to_pay');
  await page.locator('[data-test="call-filters"] button[type="submit"]').click();
  await expect(rows).toHaveCount(2);

  // A promise's call: its timeline, notes, the script used, and the reports received.
  await rows.first().locator('a').first().click();
  await hydrated(page);
  await expect(page.locator('[data-test="call-title"]')).toContainText('LOOP-');
  await expect(page.locator('[data-test="call-timeline"]')).toContainText('Answered');
  await expect(page.locator('[data-test="call-timeline"]')).toContainText('Conversation ended');
  await expect(page.locator('[data-test="call-notes"]')).toContainText('Simulated call about invoice');
  await expect(page.locator('[data-test="call-opening"]')).toContainText('Loop Supplies');
  await expect(page.locator('[data-test="deliveries"]')).toContainText('call_completed');
  await page.locator('details.delivery').first().evaluate((d) => d.setAttribute('open', ''));
  await shot(page, testInfo, 'call-detail');

  // The customer who says they paid waits for a person; "not paid" sends them back to calls.
  await page.goto('/calls/review');
  await hydrated(page);
  const item = page.locator('[data-review="paid_claim"]');
  await expect(item).toHaveCount(1);
  await shot(page, testInfo, 'needs-a-human');
  await item.locator('button[data-action="not_paid"]').click();
  await expect(page.locator('[data-test="review-empty"]')).toBeVisible();

  // The dashboard's call figures.
  await page.locator('.nav a[data-nav="Dashboard"]').click();
  await hydrated(page);
  await expect(page.locator('[data-test="kpi-calls-today"]')).toHaveText('8');
  await expect(page.locator('[data-test="kpi-promises"]')).toHaveText('3');
  await shot(page, testInfo, 'dashboard-calls');
});
