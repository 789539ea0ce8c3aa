-- Connections to accounting systems (Zoho Books), their sync state and history, the queue
-- of customer details still to fetch, and write-backs waiting to reach the accounting system.

CREATE TABLE integration_connections (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id                BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider              TEXT   NOT NULL CHECK (provider IN ('zoho_books')),
    -- 'choosing': authorized, no Books organization picked yet; 'connected'; 'needs_reconnect':
    -- Zoho refuses the tokens and the user must authorize again.
    status                TEXT   NOT NULL CHECK (status IN ('choosing', 'connected', 'needs_reconnect')),
    location              TEXT   NOT NULL,
    accounts_server       TEXT   NOT NULL,
    api_domain            TEXT   NOT NULL,
    external_org_id       TEXT   NOT NULL DEFAULT '',
    external_org_name     TEXT   NOT NULL DEFAULT '',
    -- The Books organizations the user can see (JSON), offered when choosing one.
    available_orgs        TEXT   NOT NULL DEFAULT '[]',
    -- Tokens and the push secret, encrypted (`v1.<key id>.<ciphertext>`), never plain text.
    refresh_token         TEXT   NOT NULL,
    access_token          TEXT   NOT NULL DEFAULT '',
    access_expires_at     BIGINT NOT NULL DEFAULT 0,
    push_secret           TEXT   NOT NULL,
    -- Leases (Unix ms): one token refresh and one sync run at a time, across instances.
    refresh_lease_until   BIGINT NOT NULL DEFAULT 0,
    sync_lease_owner      TEXT   NOT NULL DEFAULT '',
    sync_lease_until      BIGINT NOT NULL DEFAULT 0,
    -- When the next run is due (0: as soon as possible) and who asked for it, if someone did.
    next_sync_at          BIGINT NOT NULL DEFAULT 0,
    sync_requested_by     TEXT   NOT NULL DEFAULT '',
    -- Set when Zoho's daily limit is spent: no calls before then.
    paused_until          BIGINT NOT NULL DEFAULT 0,
    -- Watermarks: Zoho modification times (Unix seconds) up to which everything is stored.
    -- A pass in progress keeps its next page and the newest time seen, so a crash resumes it.
    contacts_watermark    BIGINT,
    contacts_pass_page    BIGINT NOT NULL DEFAULT 0,
    contacts_pass_high    BIGINT,
    invoices_watermark    BIGINT,
    invoices_pass_page    BIGINT NOT NULL DEFAULT 0,
    invoices_pass_high    BIGINT,
    last_error            TEXT   NOT NULL DEFAULT '',
    last_success_at       BIGINT,
    connected_by          BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX integration_connections_org_key ON integration_connections (org_id, provider);
CREATE INDEX integration_connections_due_idx ON integration_connections (next_sync_at);

CREATE TABLE sync_runs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id             BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider           TEXT   NOT NULL,
    started_by         TEXT   NOT NULL CHECK (started_by IN ('connect', 'schedule', 'manual', 'push')),
    status             TEXT   NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'paused', 'interrupted')),
    phase              TEXT   NOT NULL DEFAULT '',
    pages              BIGINT NOT NULL DEFAULT 0,
    api_calls          BIGINT NOT NULL DEFAULT 0,
    customers_new      BIGINT NOT NULL DEFAULT 0,
    customers_updated  BIGINT NOT NULL DEFAULT 0,
    invoices_new       BIGINT NOT NULL DEFAULT 0,
    invoices_updated   BIGINT NOT NULL DEFAULT 0,
    details_pending    BIGINT NOT NULL DEFAULT 0,
    error              TEXT   NOT NULL DEFAULT '',
    started_at         BIGINT NOT NULL,
    heartbeat_at       BIGINT NOT NULL,
    finished_at        BIGINT
);
CREATE INDEX sync_runs_org_idx ON sync_runs (org_id, provider, id);

-- Customers whose full record (contact persons, billing address) is wanted (`wanted_at`) or
-- was fetched (`fetched_at`) from the accounting system.
CREATE TABLE sync_contact_details (
    org_id       BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider     TEXT   NOT NULL,
    external_id  TEXT   NOT NULL,
    priority     BIGINT NOT NULL DEFAULT 0,
    wanted_at    BIGINT,
    fetched_at   BIGINT,
    PRIMARY KEY (org_id, provider, external_id)
);
CREATE INDEX sync_contact_details_wanted_idx ON sync_contact_details (org_id, provider, priority DESC, external_id)
    WHERE wanted_at IS NOT NULL;

-- Notes for the accounting system (call outcomes, promised payment dates), kept until delivered.
CREATE TABLE writeback_jobs (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id                 BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider               TEXT   NOT NULL,
    invoice_id             BIGINT REFERENCES invoices (id) ON DELETE SET NULL,
    external_invoice_id    TEXT   NOT NULL,
    description            TEXT   NOT NULL,
    payment_expected_date  TEXT   NOT NULL DEFAULT '',
    status                 TEXT   NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts               BIGINT NOT NULL DEFAULT 0,
    next_attempt_at        BIGINT NOT NULL,
    last_error             TEXT   NOT NULL DEFAULT '',
    created_at             BIGINT NOT NULL,
    finished_at            BIGINT
);
CREATE INDEX writeback_jobs_due_idx ON writeback_jobs (status, next_attempt_at);
CREATE INDEX writeback_jobs_org_idx ON writeback_jobs (org_id, id);
