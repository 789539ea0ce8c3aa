-- Calls: what the voice agent reported, what Duecall did about it, and every webhook received.
-- Times are Unix milliseconds (UTC).

-- Follow-ups on the invoice. Calls about it wait until `hold_until` (a promise, "paying
-- today", a requested callback); `promised_date` stays after the hold so a broken promise shows.
ALTER TABLE invoices ADD COLUMN hold_until BIGINT;
ALTER TABLE invoices ADD COLUMN hold_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN promised_date TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN promised_at BIGINT;
-- When the balance last went down (a payment arrived in the books): "paid within 7 days of a
-- call" on the dashboard.
ALTER TABLE invoices ADD COLUMN paid_down_at BIGINT;
-- The "needs a human" queue: a dispute, or a customer saying it is paid, waits for a person.
ALTER TABLE invoices ADD COLUMN review TEXT NOT NULL DEFAULT ''
    CHECK (review IN ('', 'dispute', 'paid_claim'));
ALTER TABLE invoices ADD COLUMN review_note TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN review_at BIGINT;
CREATE INDEX invoices_review_idx ON invoices (org_id, review_at) WHERE review <> '';

-- A reminder is a step of the sequence, or a follow-up a call outcome asked for (the step key
-- stays unique among steps only).
ALTER TABLE reminders ADD COLUMN kind TEXT NOT NULL DEFAULT 'step' CHECK (kind IN ('step', 'follow_up'));
DROP INDEX reminders_step_key;
CREATE UNIQUE INDEX reminders_step_key ON reminders (invoice_id, step_offset_days) WHERE kind = 'step';
-- Every reminder of an invoice, whatever its kind (outcomes hold, pause or cancel them all; the
-- partial key above serves only queries about steps).
CREATE INDEX reminders_invoice_idx ON reminders (invoice_id, status);

-- What the agent reported about each call.
ALTER TABLE call_attempts ADD COLUMN duration_seconds BIGINT;
-- will_pay_today, promise_to_pay, already_paid, dispute, callback_requested, wrong_number,
-- opt_out, no_answer, voicemail (empty until reported).
ALTER TABLE call_attempts ADD COLUMN response TEXT NOT NULL DEFAULT '';
ALTER TABLE call_attempts ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE call_attempts ADD COLUMN promised_date TEXT NOT NULL DEFAULT '';
ALTER TABLE call_attempts ADD COLUMN callback_at BIGINT;
CREATE INDEX call_attempts_response_idx ON call_attempts (org_id, response, dialled_at);

-- Every authenticated webhook delivery, applied or not, for debugging and the histories.
-- `delivery_key` deduplicates deliveries (the Standard Webhooks id, or the event's own key);
-- `event_key` (attempt and event) is set on the one delivery that was applied.
CREATE TABLE webhook_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        TEXT   NOT NULL CHECK (source IN ('call_status', 'livekit')),
    delivery_key  TEXT   NOT NULL,
    event_key     TEXT,
    org_id        BIGINT REFERENCES organizations (id) ON DELETE CASCADE,
    reminder_id   BIGINT REFERENCES reminders (id) ON DELETE CASCADE,
    attempt_id    BIGINT REFERENCES call_attempts (id) ON DELETE CASCADE,
    event_type    TEXT   NOT NULL DEFAULT '',
    -- The HTTP status answered, and what was done ("applied", "duplicate", the error).
    status_code   BIGINT NOT NULL,
    result        TEXT   NOT NULL DEFAULT '',
    -- Headers without the signatures, as JSON; the raw body as received.
    headers       TEXT   NOT NULL DEFAULT '{}',
    body          TEXT   NOT NULL DEFAULT '',
    deliveries    BIGINT NOT NULL DEFAULT 1,
    received_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_events_delivery_key ON webhook_events (source, delivery_key);
CREATE UNIQUE INDEX webhook_events_event_key ON webhook_events (source, event_key);
CREATE INDEX webhook_events_reminder_idx ON webhook_events (reminder_id, id);
CREATE INDEX webhook_events_attempt_idx ON webhook_events (attempt_id, id);
-- The live feed reads what changed after the last id it sent, per organization.
CREATE INDEX reminder_events_org_idx ON reminder_events (org_id, id);
