//! Access tokens of one connection: cached in memory, refreshed shortly before expiry, and
//! refreshed by one worker at a time — within an instance by a per-connection mutex, across
//! instances by a lease in the connection row. Zoho allows only ten token requests per ten
//! minutes per refresh token, so a refresh storm would lock the connection out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::db::Db;
use app::db::time::now_millis;
use app::integrations::crypto::Keyring;
use secrecy::{ExposeSecret, SecretString};

use super::store::{self, ACCESS_TOKEN, REFRESH_TOKEN};
use super::zoho::api::{AccessTokens, ZohoError};
use super::zoho::oauth::{Accounts, OAuthError};

/// Refresh this long before Zoho's expiry (one hour), so no call goes out with a dying token.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;
/// How long a refresh may hold the lease; another instance waits at most this long.
const LEASE_MS: i64 = 30_000;

/// Per-connection refresh locks of this process.
#[derive(Debug, Default)]
pub struct RefreshFlights {
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl RefreshFlights {
    fn lock_for(&self, connection_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(connection_id).or_default().clone()
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    org_id: i64,
    status: String,
    accounts_server: String,
    refresh_token: String,
    access_token: String,
    access_expires_at: i64,
}

/// The token source of one connection.
pub struct ConnectionTokens {
    db: Db,
    keyring: Keyring,
    accounts: Accounts,
    connection_id: i64,
    flights: Arc<RefreshFlights>,
    cache: Mutex<Option<(SecretString, i64)>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl ConnectionTokens {
    pub fn new(
        db: Db,
        keyring: Keyring,
        accounts: Accounts,
        connection_id: i64,
        flights: Arc<RefreshFlights>,
    ) -> Self {
        Self {
            db,
            keyring,
            accounts,
            connection_id,
            flights,
            cache: Mutex::new(None),
            refreshes: Default::default(),
        }
    }

    /// Token requests this source made.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self, now: i64) -> Option<SecretString> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .as_ref()
            .filter(|(_, expires)| expires - REFRESH_MARGIN_MS > now)
            .map(|(token, _)| token.clone())
    }

    fn remember(&self, token: &SecretString, expires: i64) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.clone(), expires));
    }

    async fn row(&self) -> Result<TokenRow, ZohoError> {
        sqlx::query_as::<_, TokenRow>(
            "SELECT org_id, status, accounts_server, refresh_token, access_token, access_expires_at \
             FROM integration_connections WHERE id = $1",
        )
        .bind(self.connection_id)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| ZohoError::Unavailable(format!("database: {e}")))?
        .ok_or(ZohoError::Unauthorized)
    }

    /// The stored access token if it is still good and is not the one Zoho refused.
    fn usable(
        &self,
        row: &TokenRow,
        now: i64,
        rejected: Option<&SecretString>,
    ) -> Option<SecretString> {
        if row.access_token.is_empty() || row.access_expires_at - REFRESH_MARGIN_MS <= now {
            return None;
        }
        let opened = self
            .keyring
            .open(row.org_id, ACCESS_TOKEN, &row.access_token)
            .ok()?
            .secret;
        match rejected {
            Some(bad) if bad.expose_secret() == opened.expose_secret() => None,
            _ => Some(opened),
        }
    }

    async fn refresh(&self, rejected: Option<&SecretString>) -> Result<SecretString, ZohoError> {
        let lock = self.flights.lock_for(self.connection_id);
        let _flight = lock.lock().await;
        let deadline = now_millis() + LEASE_MS + 5_000;
        loop {
            let now = now_millis();
            let row = self.row().await?;
            if row.status == "needs_reconnect" {
                return Err(ZohoError::Unauthorized);
            }
            if let Some(token) = self.usable(&row, now, rejected) {
                self.remember(&token, row.access_expires_at);
                return Ok(token);
            }
            let leased = sqlx::query(
                "UPDATE integration_connections SET refresh_lease_until = $2 \
                 WHERE id = $1 AND refresh_lease_until < $3",
            )
            .bind(self.connection_id)
            .bind(now + LEASE_MS)
            .bind(now)
            .execute(self.db.pool())
            .await
            .map_err(|e| ZohoError::Unavailable(format!("database: {e}")))?
            .rows_affected()
                == 1;
            if leased {
                return self.refresh_holding_lease(&row).await;
            }
            // Another instance is refreshing: wait for its token.
            if now > deadline {
                return Err(ZohoError::Unavailable(
                    "another instance holds the token refresh".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn refresh_holding_lease(&self, row: &TokenRow) -> Result<SecretString, ZohoError> {
        let opened = match self
            .keyring
            .open(row.org_id, REFRESH_TOKEN, &row.refresh_token)
        {
            Ok(opened) => opened,
            Err(err) => {
                let reason = format!("the stored refresh token cannot be read: {err}");
                tracing::error!(connection_id = self.connection_id, %reason);
                store::mark_needs_reconnect(&self.db, self.connection_id, &reason)
                    .await
                    .map_err(|e| ZohoError::Unavailable(e.to_string()))?;
                return Err(ZohoError::Unauthorized);
            }
        };
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self
            .accounts
            .refresh(&row.accounts_server, &opened.secret)
            .await
        {
            Ok(tokens) => {
                let now = now_millis();
                let expires = now + tokens.expires_in.as_millis() as i64;
                // A refresh token sealed with a retired key is re-sealed with the current one.
                let refresh = self.keyring.seal(row.org_id, REFRESH_TOKEN, &opened.secret);
                sqlx::query(
                    "UPDATE integration_connections SET access_token = $2, access_expires_at = $3, \
                       refresh_token = CASE WHEN $4 = 1 THEN $5 ELSE refresh_token END, \
                       refresh_lease_until = 0, updated_at = $6 \
                     WHERE id = $1",
                )
                .bind(self.connection_id)
                .bind(
                    self.keyring
                        .seal(row.org_id, ACCESS_TOKEN, &tokens.access_token),
                )
                .bind(expires)
                .bind(i64::from(opened.stale))
                .bind(refresh)
                .bind(now)
                .execute(self.db.pool())
                .await
                .map_err(|e| ZohoError::Unavailable(format!("database: {e}")))?;
                self.remember(&tokens.access_token, expires);
                tracing::info!(
                    connection_id = self.connection_id,
                    "Zoho access token refreshed"
                );
                Ok(tokens.access_token)
            }
            Err(err @ (OAuthError::Revoked(_) | OAuthError::Client(_))) => {
                tracing::warn!(connection_id = self.connection_id, error = %err, "Zoho refused the refresh token");
                store::mark_needs_reconnect(&self.db, self.connection_id, &err.to_string())
                    .await
                    .map_err(|e| ZohoError::Unavailable(e.to_string()))?;
                Err(ZohoError::Unauthorized)
            }
            Err(OAuthError::Unavailable(reason)) => {
                sqlx::query(
                    "UPDATE integration_connections SET refresh_lease_until = 0 WHERE id = $1",
                )
                .bind(self.connection_id)
                .execute(self.db.pool())
                .await
                .map_err(|e| ZohoError::Unavailable(format!("database: {e}")))?;
                Err(ZohoError::Unavailable(format!("token refresh: {reason}")))
            }
        }
    }
}

impl AccessTokens for ConnectionTokens {
    async fn current(&self) -> Result<SecretString, ZohoError> {
        if let Some(token) = self.cached(now_millis()) {
            return Ok(token);
        }
        self.refresh(None).await
    }

    async fn after_rejection(&self, rejected: &SecretString) -> Result<SecretString, ZohoError> {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.refresh(Some(rejected)).await
    }
}
