-- Receivables: customers, their contact persons, and invoices, synced or imported from an
-- accounting system. Every row belongs to one organization; (org_id, source, external_id) is
-- the upsert key, so re-importing or re-syncing never duplicates.
-- Calendar dates are TEXT 'YYYY-MM-DD' (sortable, portable); money is BIGINT minor units next
-- to a TEXT ISO 4217 currency code.

-- How the organization writes numbers and money (BCP 47, e.g. en-GB, de-DE, en-IN).
ALTER TABLE organizations ADD COLUMN locale TEXT NOT NULL DEFAULT 'en-GB';

CREATE TABLE customers (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id               BIGINT  NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Where the record comes from: 'csv', 'zoho', 'demo'.
    source               TEXT    NOT NULL,
    external_id          TEXT    NOT NULL,
    display_name         TEXT    NOT NULL,
    -- Lower-cased display name, compared byte by byte on every backend: the name sort.
    sort_name            TEXT NOT NULL DEFAULT '',
    company_name         TEXT    NOT NULL DEFAULT '',
    email                TEXT    NOT NULL DEFAULT '',
    currency             TEXT    NOT NULL,
    status               TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    billing_street       TEXT    NOT NULL DEFAULT '',
    billing_city         TEXT    NOT NULL DEFAULT '',
    billing_state        TEXT    NOT NULL DEFAULT '',
    billing_postcode     TEXT    NOT NULL DEFAULT '',
    -- ISO 3166-1 alpha-2, upper case; '' when unknown.
    billing_country      TEXT    NOT NULL DEFAULT '',
    -- IANA zone if known ('' otherwise): calling hours are evaluated in it.
    timezone             TEXT    NOT NULL DEFAULT '',
    notes                TEXT    NOT NULL DEFAULT '',
    opted_out            INTEGER NOT NULL DEFAULT 0 CHECK (opted_out IN (0, 1)),
    -- Derived from the customer's open invoices whenever they change.
    outstanding_minor    BIGINT  NOT NULL DEFAULT 0,
    open_invoices        BIGINT  NOT NULL DEFAULT 0,
    -- Due date of the oldest unpaid invoice, '9999-12-31' when none (so it sorts last):
    -- overdue days follow from today.
    oldest_open_due      TEXT    NOT NULL DEFAULT '9999-12-31',
    -- The number to call, chosen from the contact persons, and why.
    best_phone_e164      TEXT    NOT NULL DEFAULT '',
    best_phone_reason    TEXT    NOT NULL DEFAULT '',
    -- 'valid', 'invalid' (numbers present, none usable) or 'missing'.
    phone_status         TEXT    NOT NULL DEFAULT 'missing' CHECK (phone_status IN ('valid', 'invalid', 'missing')),
    -- Lower-cased names, emails and phone digits for search.
    search_text          TEXT    NOT NULL DEFAULT '',
    -- Hash of the imported fields (contacts included): an unchanged re-import skips the row.
    content_hash         TEXT    NOT NULL DEFAULT '',
    source_updated_at    BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE UNIQUE INDEX customers_source_key ON customers (org_id, source, external_id);
-- List sorts (keyset pagination on (sort key, id)) and filters.
CREATE INDEX customers_name_idx ON customers (org_id, sort_name, id);
CREATE INDEX customers_outstanding_idx ON customers (org_id, outstanding_minor, id);
CREATE INDEX customers_oldest_due_idx ON customers (org_id, oldest_open_due, id);
CREATE INDEX customers_country_idx ON customers (org_id, billing_country);
CREATE INDEX customers_phone_status_idx ON customers (org_id, phone_status);

CREATE TABLE contact_persons (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          BIGINT  NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    customer_id     BIGINT  NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    -- Position within the customer as the source lists them.
    position        BIGINT  NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    email           TEXT    NOT NULL DEFAULT '',
    phone_raw       TEXT    NOT NULL DEFAULT '',
    phone_e164      TEXT    NOT NULL DEFAULT '',
    phone_error     TEXT    NOT NULL DEFAULT '',
    mobile_raw      TEXT    NOT NULL DEFAULT '',
    mobile_e164     TEXT    NOT NULL DEFAULT '',
    mobile_error    TEXT    NOT NULL DEFAULT '',
    is_primary      INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1))
);
CREATE UNIQUE INDEX contact_persons_position_key ON contact_persons (org_id, customer_id, position);

CREATE TABLE invoices (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id                 BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    customer_id            BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    source                 TEXT   NOT NULL,
    external_id            TEXT   NOT NULL,
    number                 TEXT   NOT NULL,
    status                 TEXT   NOT NULL CHECK (status IN ('draft', 'sent', 'overdue', 'partially_paid', 'paid', 'void')),
    issue_date             TEXT   NOT NULL,
    due_date               TEXT   NOT NULL,
    currency               TEXT   NOT NULL,
    total_minor            BIGINT NOT NULL,
    balance_minor          BIGINT NOT NULL,
    payment_expected_date  TEXT   NOT NULL DEFAULT '',
    content_hash           TEXT   NOT NULL DEFAULT '',
    source_updated_at      BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE UNIQUE INDEX invoices_source_key ON invoices (org_id, source, external_id);
CREATE INDEX invoices_due_idx ON invoices (org_id, due_date, id);
CREATE INDEX invoices_balance_idx ON invoices (org_id, balance_minor, id);
CREATE INDEX invoices_customer_idx ON invoices (org_id, customer_id, due_date);
CREATE INDEX invoices_status_idx ON invoices (org_id, status, due_date);
CREATE INDEX invoices_number_idx ON invoices (org_id, number);
-- Totals per currency of a filtered list read this index alone.
CREATE INDEX invoices_currency_idx ON invoices (org_id, currency, balance_minor);
