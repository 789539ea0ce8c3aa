//! Accounting-system integrations (Zoho Books): the OAuth connection, encrypted tokens, the
//! sync engines and their scheduler, write-back, and the HTTP routes around them.

pub mod engine;
pub mod routes;
pub mod store;
pub mod sync;
pub mod tokens;
pub mod writeback;
pub mod zoho;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::db::Db;
use app::integrations::crypto::Keyring;
use tokio::sync::{Notify, broadcast};

use self::store::Connection;
use self::tokens::{ConnectionTokens, RefreshFlights};
use self::zoho::api::{BooksApi, Limiter, RetryPolicy, limiter};
use self::zoho::oauth::Accounts;

/// How the engines behave; from the configuration (tests shorten the waits).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Hours between scheduled runs of a connection (`DUECALL_SYNC_INTERVAL_HOURS`).
    pub sync_every: Duration,
    /// Zoho API requests per minute per Books organization (Zoho allows 100).
    pub requests_per_minute: NonZeroU32,
    /// How often a run also compares the open invoices here with those Books still has, to
    /// find invoices deleted there (Books reports no deletions).
    pub reconcile_every: Duration,
    /// Full customer records fetched per run at most (`GET /contacts/{id}` calls).
    pub detail_calls_per_run: usize,
    /// Requests in flight at once per connection (Zoho allows 5 to 10).
    pub concurrency: usize,
    /// How long a sync lease lasts without a heartbeat.
    pub lease: Duration,
    pub retry: RetryPolicy,
    /// Names this instance in leases.
    pub instance: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sync_every: Duration::from_secs(4 * 3600),
            requests_per_minute: NonZeroU32::new(90).unwrap_or(NonZeroU32::MIN),
            reconcile_every: Duration::from_secs(24 * 3600),
            detail_calls_per_run: 500,
            concurrency: 4,
            lease: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            instance: format!("pid{}", std::process::id()),
        }
    }
}

/// Something that happened to synced data, for the engines that care (reminders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// These invoices became paid or void: pending reminders for them must stop.
    InvoicesSettled { org_id: i64, invoice_ids: Vec<i64> },
}

/// The Zoho Books integration of this instance. Cheap to clone.
#[derive(Clone)]
pub struct Zoho {
    pub db: Db,
    pub keyring: Keyring,
    pub accounts: Accounts,
    pub settings: Settings,
    http: reqwest::Client,
    limiters: Arc<Mutex<HashMap<String, Limiter>>>,
    flights: Arc<RefreshFlights>,
    /// Wakes the scheduler (a sync was requested).
    pub wake: Arc<Notify>,
    events: broadcast::Sender<SyncEvent>,
}

impl std::fmt::Debug for Zoho {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zoho")
            .field("accounts", &self.accounts)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Zoho {
    pub fn new(
        db: Db,
        keyring: Keyring,
        accounts: Accounts,
        settings: Settings,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Duecall/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            db,
            keyring,
            accounts,
            settings,
            http,
            limiters: Arc::default(),
            flights: Arc::default(),
            wake: Arc::default(),
            events: broadcast::channel(256).0,
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The request budget of one Books organization, shared by every caller in this process.
    fn limiter(&self, external_org_id: &str) -> Limiter {
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        limiters
            .entry(external_org_id.to_owned())
            .or_insert_with(|| limiter(self.settings.requests_per_minute))
            .clone()
    }

    /// The token source of a connection.
    pub fn tokens(&self, connection: &Connection) -> ConnectionTokens {
        ConnectionTokens::new(
            self.db.clone(),
            self.keyring.clone(),
            self.accounts.clone(),
            connection.id,
            self.flights.clone(),
        )
    }

    /// The Books API as this connection sees it.
    pub fn api(&self, connection: &Connection) -> BooksApi<ConnectionTokens> {
        BooksApi::new(
            self.http.clone(),
            &connection.api_domain,
            &connection.external_org_id,
            self.tokens(connection),
            self.limiter(&connection.external_org_id),
            self.settings.retry.clone(),
        )
    }

    /// Events for other engines.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncEvent> {
        self.events.subscribe()
    }

    fn settled(&self, org_id: i64, invoice_ids: Vec<i64>) {
        tracing::info!(
            org_id,
            count = invoice_ids.len(),
            "invoices settled in Zoho Books"
        );
        // Nobody listening is fine: the reminder engine also re-reads statuses before calling.
        let _ = self.events.send(SyncEvent::InvoicesSettled {
            org_id,
            invoice_ids,
        });
    }
}
