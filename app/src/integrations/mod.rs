//! Connections to accounting systems (Zoho Books first): what the Integrations page shows of
//! them, and the encryption of their tokens. The OAuth flow, the sync engines and write-back
//! run in the server; they record everything here-readable in the database.

#[cfg(feature = "ssr")]
pub mod crypto;
pub mod page;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The provider name of Zoho Books connections and sync runs.
pub const ZOHO_PROVIDER: &str = "zoho_books";
/// The purpose bound into a connection's encrypted push secret.
pub const PUSH_SECRET: &str = "zoho/push-secret";

/// What the integrations of this instance are (set by the server from its configuration).
#[cfg(feature = "ssr")]
#[derive(Clone, Debug, Default)]
pub struct IntegrationsInfo {
    /// Zoho Books can be connected.
    pub zoho: bool,
    /// ... and it is the built-in local Zoho (offline demo).
    pub local_zoho: bool,
    pub sync_every_hours: u32,
    /// Where Duecall is reached (for the push webhook address).
    pub public_url: String,
    /// Opens the push secret for admins.
    pub keyring: Option<crypto::Keyring>,
}

/// The one-word state of a connection, as the badge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// Authorized; a Books organization is still to be chosen.
    Choosing,
    /// A sync is running now.
    Syncing,
    /// The last run succeeded recently.
    Ok,
    /// No successful run for longer than two sync intervals (or none yet).
    Stale,
    /// The last run failed.
    Failing,
    /// Zoho's daily API limit is spent; syncing resumes later.
    Paused,
    /// Zoho refuses the authorization: reconnect.
    NeedsReconnect,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Self::Choosing => "Choose organization",
            Self::Syncing => "Syncing",
            Self::Ok => "OK",
            Self::Stale => "Stale",
            Self::Failing => "Failing",
            Self::Paused => "Paused",
            Self::NeedsReconnect => "Needs reconnect",
        }
    }

    /// The badge's colour class.
    pub fn tone(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Syncing | Self::Choosing => "info",
            Self::Stale | Self::Paused => "warn",
            Self::Failing | Self::NeedsReconnect => "bad",
        }
    }

    /// Works out the health from the stored facts (all times Unix ms).
    pub fn assess(facts: &HealthFacts) -> Self {
        match facts.status.as_str() {
            "needs_reconnect" => return Self::NeedsReconnect,
            "choosing" => return Self::Choosing,
            _ => {}
        }
        if facts.running {
            return Self::Syncing;
        }
        if facts.paused_until > facts.now {
            return Self::Paused;
        }
        if facts.last_run_failed {
            return Self::Failing;
        }
        match facts.last_success_at {
            Some(at) if facts.now - at <= 2 * facts.interval_ms => Self::Ok,
            _ => Self::Stale,
        }
    }
}

/// What [`Health::assess`] looks at.
#[derive(Debug, Clone, Default)]
pub struct HealthFacts {
    pub status: String,
    pub running: bool,
    pub paused_until: i64,
    pub last_run_failed: bool,
    pub last_success_at: Option<i64>,
    pub interval_ms: i64,
    pub now: i64,
}

/// A Books organization the user can pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub is_default: bool,
}

/// One sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct RunView {
    pub id: i64,
    pub started_by: String,
    pub status: String,
    pub phase: String,
    pub pages: i64,
    pub api_calls: i64,
    pub customers_new: i64,
    pub customers_updated: i64,
    pub invoices_new: i64,
    pub invoices_updated: i64,
    pub details_pending: i64,
    pub error: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `started_at` in the organization's time zone.
    #[cfg_attr(feature = "ssr", sqlx(default))]
    pub started_label: String,
}

/// The organization's Zoho Books connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub status: String,
    pub health: Health,
    /// Zoho data centre (`eu`, `us`, …).
    pub location: String,
    pub organization: String,
    pub choices: Vec<OrgChoice>,
    pub last_success_at: Option<i64>,
    pub last_success_label: Option<String>,
    pub last_error: String,
    pub paused_until: Option<i64>,
    pub paused_until_label: Option<String>,
    pub next_sync_at: Option<i64>,
    pub runs: Vec<RunView>,
    /// For admins: where Books workflow webhooks go, and the secret header they carry.
    pub push_url: Option<String>,
    pub push_secret: Option<String>,
}

/// The Zoho Books section of the Integrations page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZohoView {
    pub enabled: bool,
    pub local: bool,
    pub sync_every_hours: u32,
    pub can_administer: bool,
    pub can_write: bool,
    pub connection: Option<ConnectionView>,
}

#[server(endpoint = "integrations/zoho")]
pub async fn zoho_status() -> Result<ZohoView, AppError> {
    let (state, member) = crate::server::member().await?;
    service::zoho_view(&state, member).await
}

#[cfg(feature = "ssr")]
pub mod service {
    //! Reads for the Integrations page (the server's engines write these rows).

    use super::*;
    use crate::accounts::service::Member;
    use crate::db::time::now_millis;
    use crate::state::AppState;

    #[derive(sqlx::FromRow)]
    struct Row {
        org_id: i64,
        status: String,
        location: String,
        external_org_name: String,
        available_orgs: String,
        push_secret: String,
        paused_until: i64,
        next_sync_at: i64,
        last_error: String,
        last_success_at: Option<i64>,
    }

    const RUN_COLUMNS: &str = "id, started_by, status, phase, pages, api_calls, customers_new, \
         customers_updated, invoices_new, invoices_updated, details_pending, error, started_at, \
         finished_at";

    /// `2026-11-21 14:05` in the organization's zone.
    fn when(millis: i64, zone: &str) -> String {
        use chrono::TimeZone;
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
        chrono::Utc
            .timestamp_millis_opt(millis)
            .single()
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }

    /// A run whose worker has not reported for this long is not running any more.
    const RUN_SILENT_MS: i64 = 5 * 60 * 1000;

    pub async fn zoho_view(state: &AppState, member: Member) -> Result<ZohoView, AppError> {
        let info = &state.integrations;
        let db = &state.db;
        let timezone: String =
            sqlx::query_scalar("SELECT timezone FROM organizations WHERE id = $1")
                .bind(member.org_id)
                .fetch_one(db.pool())
                .await?;
        let row = sqlx::query_as::<_, Row>(
            "SELECT org_id, status, location, external_org_name, available_orgs, push_secret, \
               paused_until, next_sync_at, last_error, last_success_at \
             FROM integration_connections WHERE org_id = $1 AND provider = $2",
        )
        .bind(member.org_id)
        .bind(ZOHO_PROVIDER)
        .fetch_optional(db.pool())
        .await?;
        let connection = match row {
            None => None,
            Some(row) => {
                let mut runs = sqlx::query_as::<_, RunView>(&format!(
                    "SELECT {RUN_COLUMNS} FROM sync_runs WHERE org_id = $1 AND provider = $2 \
                     ORDER BY id DESC LIMIT 5"
                ))
                .bind(member.org_id)
                .bind(ZOHO_PROVIDER)
                .fetch_all(db.pool())
                .await?;
                for run in &mut runs {
                    run.started_label = when(run.started_at, &timezone);
                }
                let heartbeat: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(heartbeat_at) FROM sync_runs WHERE org_id = $1 \
                     AND provider = $2 AND status = 'running'",
                )
                .bind(member.org_id)
                .bind(ZOHO_PROVIDER)
                .fetch_one(db.pool())
                .await?;
                let now = now_millis();
                let last_finished = runs.iter().find(|r| r.status != "running");
                let facts = HealthFacts {
                    status: row.status.clone(),
                    running: heartbeat.is_some_and(|at| now - at < RUN_SILENT_MS),
                    paused_until: row.paused_until,
                    last_run_failed: last_finished
                        .is_some_and(|r| matches!(r.status.as_str(), "failed" | "interrupted")),
                    last_success_at: row.last_success_at,
                    interval_ms: i64::from(info.sync_every_hours.max(1)) * 3_600_000,
                    now,
                };
                let choices: Vec<OrgChoice> =
                    serde_json::from_str(&row.available_orgs).unwrap_or_default();
                let admin = member.require_admin().is_ok();
                let push_secret = match (&info.keyring, admin) {
                    (Some(keyring), true) => keyring
                        .open(row.org_id, PUSH_SECRET, &row.push_secret)
                        .ok()
                        .map(|opened| {
                            use secrecy::ExposeSecret;
                            opened.secret.expose_secret().to_owned()
                        }),
                    _ => None,
                };
                Some(ConnectionView {
                    health: Health::assess(&facts),
                    status: row.status,
                    location: row.location,
                    organization: row.external_org_name,
                    choices,
                    last_success_at: row.last_success_at,
                    last_success_label: row.last_success_at.map(|at| when(at, &timezone)),
                    last_error: row.last_error,
                    paused_until: (row.paused_until > now).then_some(row.paused_until),
                    paused_until_label: (row.paused_until > now)
                        .then(|| when(row.paused_until, &timezone)),
                    next_sync_at: (row.next_sync_at > 0).then_some(row.next_sync_at),
                    runs,
                    push_url: admin
                        .then(|| format!("{}/webhooks/zoho/{}", info.public_url, row.org_id)),
                    push_secret,
                })
            }
        };
        Ok(ZohoView {
            enabled: info.zoho,
            local: info.local_zoho,
            sync_every_hours: info.sync_every_hours,
            can_administer: member.require_admin().is_ok(),
            can_write: member.require_write().is_ok(),
            connection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HealthFacts {
        HealthFacts {
            status: "connected".into(),
            interval_ms: 4 * 3_600_000,
            now: 100 * 3_600_000,
            last_success_at: Some(99 * 3_600_000),
            ..HealthFacts::default()
        }
    }

    #[test]
    fn health_follows_the_connection_and_its_runs() {
        assert_eq!(Health::assess(&facts()), Health::Ok);
        let stale = HealthFacts {
            last_success_at: Some(91 * 3_600_000),
            ..facts()
        };
        assert_eq!(Health::assess(&stale), Health::Stale);
        let never = HealthFacts {
            last_success_at: None,
            ..facts()
        };
        assert_eq!(Health::assess(&never), Health::Stale);
        let failing = HealthFacts {
            last_run_failed: true,
            ..facts()
        };
        assert_eq!(Health::assess(&failing), Health::Failing);
        let paused = HealthFacts {
            paused_until: 101 * 3_600_000,
            last_run_failed: true,
            ..facts()
        };
        assert_eq!(Health::assess(&paused), Health::Paused);
        let running = HealthFacts {
            running: true,
            ..failing.clone()
        };
        assert_eq!(Health::assess(&running), Health::Syncing);
        let reconnect = HealthFacts {
            status: "needs_reconnect".into(),
            running: true,
            ..facts()
        };
        assert_eq!(Health::assess(&reconnect), Health::NeedsReconnect);
    }
}
