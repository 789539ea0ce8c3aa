-- Each organization's business profile (calling rules, script, reminder sequence), as the JSON
-- of `app::reminders::profile::BusinessProfile`, validated before it is written. An
-- organization without a row uses the starting profile (calls off).
CREATE TABLE business_profiles (
    org_id      BIGINT NOT NULL PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    profile     TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  BIGINT REFERENCES users (id) ON DELETE SET NULL
);
