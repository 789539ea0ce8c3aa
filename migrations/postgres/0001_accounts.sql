-- Accounts and tenancy: people, organizations, who belongs where, and server-side sessions.
-- Timestamps are BIGINT Unix milliseconds (UTC) on every backend.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Normalized (trimmed, lower-cased) by the application before it gets here.
    email         TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE organizations (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT    NOT NULL,
    -- IANA zone used to show dates and to evaluate calling hours.
    timezone         TEXT    NOT NULL DEFAULT 'UTC',
    default_currency TEXT    NOT NULL DEFAULT 'USD',
    -- Flags are INTEGER 0/1: sqlx's Any driver cannot read SQLite BOOLEAN columns.
    is_demo          INTEGER NOT NULL DEFAULT 0 CHECK (is_demo IN (0, 1)),
    created_at       BIGINT  NOT NULL
);

CREATE TABLE memberships (
    org_id     BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
-- "Which organizations does this person belong to?" on every request.
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE sessions (
    -- The opaque id in the session cookie.
    id         TEXT   PRIMARY KEY,
    -- JSON map of session values (user id, active organization).
    data       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Who changed what in an organization's settings and membership.
CREATE TABLE audit_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    actor_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    action        TEXT   NOT NULL,
    detail        TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE INDEX audit_events_org_idx ON audit_events (org_id, id);
