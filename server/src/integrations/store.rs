//! The `integration_connections` rows: one per organization and provider, with encrypted
//! tokens, the sync watermarks and the leases that keep refreshes and runs single-flight
//! across instances (a conditional `UPDATE` that only one caller can win, on both backends).

use app::db::Db;
use app::db::time::now_millis;
use app::error::AppError;
use app::integrations::crypto::Keyring;
use secrecy::SecretString;

use super::zoho::config::DataCentre;
use super::zoho::oauth::Tokens;

/// The provider name stored with connections and runs.
pub use app::integrations::ZOHO_PROVIDER as PROVIDER;
/// The `source` of customers and invoices that come from Zoho Books.
pub const SOURCE: &str = "zoho";

/// Purposes bound into the ciphertexts (a token cannot be swapped for another kind).
pub const REFRESH_TOKEN: &str = "zoho/refresh-token";
pub const ACCESS_TOKEN: &str = "zoho/access-token";
pub use app::integrations::PUSH_SECRET;

#[derive(Clone, sqlx::FromRow)]
pub struct Connection {
    pub id: i64,
    pub org_id: i64,
    pub status: String,
    pub location: String,
    pub accounts_server: String,
    pub api_domain: String,
    pub external_org_id: String,
    pub external_org_name: String,
    pub refresh_token: String,
    pub access_token: String,
    pub access_expires_at: i64,
    pub push_secret: String,
    pub paused_until: i64,
    pub next_sync_at: i64,
    pub sync_lease_until: i64,
    pub contacts_watermark: Option<i64>,
    pub contacts_pass_page: i64,
    pub contacts_pass_high: Option<i64>,
    pub invoices_watermark: Option<i64>,
    pub invoices_pass_page: i64,
    pub invoices_pass_high: Option<i64>,
    /// When open invoices were last reconciled with Books (Unix ms; 0 = never).
    pub reconciled_at: i64,
    pub last_error: String,
    pub last_success_at: Option<i64>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("status", &self.status)
            .field("location", &self.location)
            .field("external_org_id", &self.external_org_id)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, org_id, status, location, accounts_server, api_domain, external_org_id, \
     external_org_name, refresh_token, access_token, access_expires_at, push_secret, paused_until, \
     next_sync_at, sync_lease_until, contacts_watermark, contacts_pass_page, contacts_pass_high, \
     invoices_watermark, invoices_pass_page, invoices_pass_high, reconciled_at, last_error, \
     last_success_at";

/// The organization's Zoho Books connection, if any.
pub async fn connection(db: &Db, org_id: i64) -> Result<Option<Connection>, AppError> {
    Ok(sqlx::query_as::<_, Connection>(&format!(
        "SELECT {COLUMNS} FROM integration_connections WHERE org_id = $1 AND provider = $2"
    ))
    .bind(org_id)
    .bind(PROVIDER)
    .fetch_optional(db.pool())
    .await?)
}

/// A fresh random secret for Books' workflow webhooks (alphanumeric, as Books requires).
pub fn new_push_secret() -> SecretString {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    SecretString::from(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from)
            .collect::<String>(),
    )
}

/// Stores a new authorization for the organization (a first connection or a reconnect). The
/// connection waits for a Books organization to be chosen; a reconnect keeps the chosen
/// organization and the sync watermarks.
pub async fn save_authorization(
    db: &Db,
    keyring: &Keyring,
    org_id: i64,
    user_id: i64,
    dc: &DataCentre,
    tokens: &Tokens,
) -> Result<(), AppError> {
    let Some(refresh) = tokens.refresh_token.as_ref() else {
        return Err(AppError::invalid(
            "zoho",
            "Zoho did not grant offline access; please try connecting again",
        ));
    };
    let now = now_millis();
    let expires = now + tokens.expires_in.as_millis() as i64;
    sqlx::query(
        "INSERT INTO integration_connections (org_id, provider, status, location, accounts_server, \
           api_domain, refresh_token, access_token, access_expires_at, push_secret, connected_by, \
           created_at, updated_at) \
         VALUES ($1, $2, 'choosing', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (org_id, provider) DO UPDATE SET \
           status = CASE WHEN integration_connections.external_org_id <> '' \
                          AND integration_connections.location = excluded.location \
                         THEN 'connected' ELSE 'choosing' END, \
           location = excluded.location, accounts_server = excluded.accounts_server, \
           api_domain = excluded.api_domain, refresh_token = excluded.refresh_token, \
           access_token = excluded.access_token, access_expires_at = excluded.access_expires_at, \
           refresh_lease_until = 0, last_error = '', connected_by = excluded.connected_by, \
           next_sync_at = 0, updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(PROVIDER)
    .bind(&dc.location)
    .bind(&dc.accounts_server)
    .bind(&dc.api_domain)
    .bind(keyring.seal(org_id, REFRESH_TOKEN, refresh))
    .bind(keyring.seal(org_id, ACCESS_TOKEN, &tokens.access_token))
    .bind(expires)
    .bind(keyring.seal(org_id, PUSH_SECRET, &new_push_secret()))
    .bind(user_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Picks the Books organization to sync. Choosing a different one than before starts the
/// sync over (its watermarks say nothing about the new organization).
pub async fn choose_organization(
    db: &Db,
    org_id: i64,
    external_org_id: &str,
    external_org_name: &str,
) -> Result<(), AppError> {
    let updated = sqlx::query(
        "UPDATE integration_connections SET \
           contacts_watermark = CASE WHEN external_org_id = $3 THEN contacts_watermark END, \
           contacts_pass_page = CASE WHEN external_org_id = $3 THEN contacts_pass_page ELSE 0 END, \
           contacts_pass_high = CASE WHEN external_org_id = $3 THEN contacts_pass_high END, \
           invoices_watermark = CASE WHEN external_org_id = $3 THEN invoices_watermark END, \
           invoices_pass_page = CASE WHEN external_org_id = $3 THEN invoices_pass_page ELSE 0 END, \
           invoices_pass_high = CASE WHEN external_org_id = $3 THEN invoices_pass_high END, \
           status = 'connected', external_org_id = $3, external_org_name = $4, next_sync_at = 0, \
           sync_requested_by = 'connect', \
           paused_until = 0, last_error = '', updated_at = $5 \
         WHERE org_id = $1 AND provider = $2 AND status <> 'needs_reconnect'",
    )
    .bind(org_id)
    .bind(PROVIDER)
    .bind(external_org_id)
    .bind(external_org_name)
    .bind(now_millis())
    .execute(db.pool())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Forgets the connection (its tokens, watermarks and queued detail fetches). Synced customers
/// and invoices stay.
pub async fn delete(db: &Db, org_id: i64) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM sync_contact_details WHERE org_id = $1 AND provider = $2")
        .bind(org_id)
        .bind(PROVIDER)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM integration_connections WHERE org_id = $1 AND provider = $2")
        .bind(org_id)
        .bind(PROVIDER)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Zoho refuses the connection: the user has to authorize again. Tokens are dropped.
pub async fn mark_needs_reconnect(
    db: &Db,
    connection_id: i64,
    reason: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE integration_connections SET status = 'needs_reconnect', access_token = '', \
           access_expires_at = 0, refresh_lease_until = 0, last_error = $2, updated_at = $3 \
         WHERE id = $1",
    )
    .bind(connection_id)
    .bind(reason)
    .bind(now_millis())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Asks for a run as soon as the engine gets to it (`by`: `manual`, `push`, `connect`).
pub async fn request_sync(db: &Db, org_id: i64, by: &str) -> Result<bool, AppError> {
    let updated = sqlx::query(
        "UPDATE integration_connections SET next_sync_at = 0, sync_requested_by = $4, updated_at = $3 \
         WHERE org_id = $1 AND provider = $2 AND status = 'connected'",
    )
    .bind(org_id)
    .bind(PROVIDER)
    .bind(now_millis())
    .bind(by)
    .execute(db.pool())
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Takes the sync lease of a connection for `owner` until `until` (ms). Only one caller can
/// hold it; an expired lease (a crashed instance) can be taken over.
pub async fn try_lease_sync(
    db: &Db,
    connection_id: i64,
    owner: &str,
    until: i64,
) -> Result<bool, AppError> {
    let now = now_millis();
    let taken = sqlx::query(
        "UPDATE integration_connections SET sync_lease_owner = $2, sync_lease_until = $3 \
         WHERE id = $1 AND (sync_lease_until < $4 OR sync_lease_owner = $2)",
    )
    .bind(connection_id)
    .bind(owner)
    .bind(until)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Gives the lease back (only if `owner` still holds it).
pub async fn release_sync(db: &Db, connection_id: i64, owner: &str) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE integration_connections SET sync_lease_owner = '', sync_lease_until = 0 \
         WHERE id = $1 AND sync_lease_owner = $2",
    )
    .bind(connection_id)
    .bind(owner)
    .execute(db.pool())
    .await?;
    Ok(())
}
