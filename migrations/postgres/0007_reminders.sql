-- Reminders: one per (invoice, sequence step), the calls made for them, and every transition
-- of every reminder in an append-only history. Times are Unix milliseconds (UTC).

-- A dispute stops every reminder of the invoice until a person settles it.
ALTER TABLE invoices ADD COLUMN disputed INTEGER NOT NULL DEFAULT 0 CHECK (disputed IN (0, 1));
ALTER TABLE invoices ADD COLUMN dispute_reason TEXT NOT NULL DEFAULT '';

-- Copied from the profile's JSON when it is saved: the scheduler claims only for
-- organizations whose calls are switched on.
ALTER TABLE business_profiles ADD COLUMN calls_enabled INTEGER NOT NULL DEFAULT 0 CHECK (calls_enabled IN (0, 1));

CREATE TABLE reminders (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id            BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    invoice_id        BIGINT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    customer_id       BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    -- The sequence step: days after (negative: before) the due date, and the date it falls on.
    step_offset_days  BIGINT NOT NULL,
    step_date         TEXT   NOT NULL,
    status            TEXT   NOT NULL CHECK (status IN ('pending', 'in_progress', 'processing',
                          'completed', 'failed', 'skipped', 'cancelled', 'paused')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    max_attempts      BIGINT NOT NULL,
    -- Whether the current claim has been dialled (its attempt is written down).
    dialled           INTEGER NOT NULL DEFAULT 0 CHECK (dialled IN (0, 1)),
    -- When the next attempt may start (pending), or was due.
    due_at            BIGINT NOT NULL,
    -- The scheduler instance holding the claim, and until when: the claim's lease before the
    -- dial, the agent's deadline after it. Only while in_progress or processing.
    claimed_by        TEXT   NOT NULL DEFAULT '',
    lease_until       BIGINT,
    -- The last transition's reason (a skip, a failure, a cancellation), for the lists.
    last_reason       TEXT   NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX reminders_step_key ON reminders (invoice_id, step_offset_days);
-- The scheduler's claim walks the due pending reminders in due order; other statuses never
-- enter this index, so a claim costs the same however many finished reminders there are.
CREATE INDEX reminders_due_idx ON reminders (due_at, id) WHERE status = 'pending';
-- The monitor finds expired leases and silent agents.
CREATE INDEX reminders_lease_idx ON reminders (lease_until) WHERE status IN ('in_progress', 'processing');
-- The Reminders page: by status, in due order.
CREATE INDEX reminders_list_idx ON reminders (org_id, status, due_at, id);
CREATE INDEX reminders_org_due_idx ON reminders (org_id, due_at, id);
CREATE INDEX reminders_customer_idx ON reminders (customer_id);

-- Every call attempt, written down before the call is placed.
CREATE TABLE call_attempts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    reminder_id   BIGINT NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    invoice_id    BIGINT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    customer_id   BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    -- 1 for the reminder's first attempt.
    attempt_no    BIGINT NOT NULL,
    phone_e164    TEXT   NOT NULL,
    -- dialling → answered → completed, or no_answer / failed / timed_out.
    status        TEXT   NOT NULL CHECK (status IN ('dialling', 'answered', 'completed',
                      'no_answer', 'failed', 'timed_out')),
    -- Whether the debtor was reached (a conversation holds later calls for 7 days).
    connected     INTEGER NOT NULL DEFAULT 0 CHECK (connected IN (0, 1)),
    dialled_at    BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    outcome       TEXT   NOT NULL DEFAULT '',
    reason        TEXT   NOT NULL DEFAULT '',
    -- Which call provider placed it and its reference (e.g. the room).
    provider      TEXT   NOT NULL DEFAULT '',
    provider_ref  TEXT   NOT NULL DEFAULT '',
    -- What the agent was given: opening, script and invoice facts (JSON).
    context       TEXT   NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX call_attempts_reminder_key ON call_attempts (reminder_id, attempt_no);
CREATE INDEX call_attempts_invoice_idx ON call_attempts (invoice_id, dialled_at);
CREATE INDEX call_attempts_customer_idx ON call_attempts (customer_id, dialled_at);
CREATE INDEX call_attempts_org_idx ON call_attempts (org_id, dialled_at);
CREATE INDEX call_attempts_active_idx ON call_attempts (org_id, customer_id) WHERE status IN ('dialling', 'answered');

-- The history of every reminder: who or what moved it, when, from which status to which, why.
CREATE TABLE reminder_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    reminder_id   BIGINT NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    at            BIGINT NOT NULL,
    -- The transition's name (claim, dial, skip, answered, …).
    transition    TEXT   NOT NULL,
    from_status   TEXT   NOT NULL,
    to_status     TEXT   NOT NULL,
    reason        TEXT   NOT NULL DEFAULT '',
    -- The instant a transition carries (skip until, next attempt, retry at), if any.
    param_at      BIGINT,
    -- 'scheduler:<instance>', 'user:<id>', 'sync', 'webhook', 'engine'.
    actor         TEXT   NOT NULL,
    attempt_id    BIGINT
);
CREATE INDEX reminder_events_reminder_idx ON reminder_events (reminder_id, id);

CREATE FUNCTION reminder_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'reminder_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reminder_events_no_update BEFORE UPDATE ON reminder_events
    FOR EACH ROW EXECUTE FUNCTION reminder_events_append_only();
