//! A faithful local fake of Zoho Accounts (OAuth 2.0) and the Zoho Books API v3, for
//! integration tests over real HTTP and for the offline demo ("Connect Zoho Books" without
//! leaving the machine).
//!
//! One [`axum::Router`] serves every data centre by path prefix:
//!
//! | surface | path |
//! |---|---|
//! | accounts server of DC `dc` | `{base}/accounts/{dc}` (`/oauth/v2/auth`, `/oauth/v2/token`, `/oauth/v2/token/revoke`) |
//! | API domain of DC `dc` | `{base}/api/{dc}` (Books at `/books/v3/...`) |
//!
//! `base` is [`FakeOptions::base_url`]: the public URL the router is reachable at (it appears
//! in `api_domain`, `accounts-server` and redirects), so the router works both at the root of
//! its own listener ([`FakeZoho::spawn`]) and nested in the main app
//! (`Router::nest_service("/fake-zoho", fake.router())` with base `https://host/fake-zoho`).
//!
//! The fake follows Zoho's published behaviour (Books API v3 and Zoho Accounts' OAuth pages).
//! What it enforces, and where it had to choose because Zoho documents nothing, is said in
//! `oauth.rs` and `books.rs`. In short:
//!
//! - **Time** comes only from the fake clock ([`FakeZoho::advance_clock`]); with
//!   [`FakeOptions::real_time`] off (the default) nothing moves by itself, so tests are
//!   deterministic. Times have whole seconds, like Zoho's format.
//! - **Modification times are strictly increasing.** Every edit made through the fake
//!   ([`FakeZoho::update_invoice`], a posted comment, ...) gets a `last_modified_time` later
//!   than every earlier one; when two edits fall in the same fake second the clock is bumped
//!   by one second. So a client whose watermark is the earlier edit's time still sees the later
//!   edit with Zoho's strictly-after `last_modified_time` filter. (Real Zoho can give two edits
//!   the same second; a client should not rely on more than the filter's contract.)
//! - **State** sits behind a `std::sync::Mutex` that is never held across an `.await`.

mod books;
mod demo;
mod oauth;
mod records;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, NaiveDate, Utc};

pub use demo::SeededBooks;
pub use records::{
    FakeAddress, FakeComment, FakeContact, FakeContactPerson, FakeContactType, FakeInvoice,
    FakeInvoiceStatus,
};

use state::{Org, State};

/// A Zoho data centre: where a user's account and organizations live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataCentre {
    Us,
    Eu,
    In,
    Au,
    Jp,
    Ca,
    Sa,
    Cn,
}

impl DataCentre {
    pub const ALL: [DataCentre; 8] = [
        Self::Us,
        Self::Eu,
        Self::In,
        Self::Au,
        Self::Jp,
        Self::Ca,
        Self::Sa,
        Self::Cn,
    ];

    /// The `location` value Zoho puts in the redirect, and the fake's path segment.
    pub fn location(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
            Self::In => "in",
            Self::Au => "au",
            Self::Jp => "jp",
            Self::Ca => "ca",
            Self::Sa => "sa",
            Self::Cn => "cn",
        }
    }

    pub fn parse(location: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|dc| dc.location() == location)
    }
}

/// An OAuth client registered with the fake (a "server-based application" in Zoho's console).
/// The client id and secret are the same in every data centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeClient {
    pub client_id: String,
    pub client_secret: String,
    /// Shown on the consent page.
    pub name: String,
    /// Exact redirect URIs the authorize request may use.
    pub redirect_uris: Vec<String>,
}

impl FakeClient {
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        name: impl Into<String>,
        redirect_uris: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            name: name.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        }
    }
}

/// How a fake starts.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// The public URL of the router, without a trailing slash (`http://127.0.0.1:4321` or
    /// `https://demo.example/fake-zoho`). [`FakeZoho::spawn`] sets it to its listener.
    pub base_url: String,
    pub clients: Vec<FakeClient>,
    /// The fake clock's start (truncated to whole seconds).
    pub start_time: DateTime<Utc>,
    /// Whether the clock also follows the wall clock (the demo). Off, time moves only with
    /// [`FakeZoho::advance_clock`] (and the one-second bumps of same-second edits).
    pub real_time: bool,
    /// Requests per organization per clock minute before 429 code 44; `None` = unlimited.
    pub per_minute_limit: Option<u32>,
    /// Requests per organization per UTC day before 429 code 45; `None` = unlimited.
    pub daily_limit: Option<u32>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1".to_owned(),
            clients: Vec::new(),
            start_time: Utc::now(),
            real_time: false,
            per_minute_limit: None,
            daily_limit: None,
        }
    }
}

/// A fault a test injects; each queued fault answers the next Books API request (accounts
/// requests are not affected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429, code 44: the organization's per-minute limit.
    PerMinuteLimit { reset_seconds: u64 },
    /// HTTP 429, code 45: the organization's daily limit.
    DailyLimit { reset_seconds: u64 },
    /// HTTP 429, code 1070: too many concurrent requests.
    Concurrency { reset_seconds: u64 },
    /// HTTP 500, code 1000.
    InternalError,
    /// The request is answered normally, after this delay.
    Slow(std::time::Duration),
    /// HTTP 200 with a non-zero `code`.
    ErrorOnOk { code: i64, message: String },
}

/// Why a seeding or editing call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    #[error("no user {0} in the fake Zoho")]
    UnknownUser(String),
    #[error("no organization {0} in the fake Zoho")]
    UnknownOrganization(String),
    #[error("no contact {0} in this organization")]
    UnknownContact(String),
    #[error("no invoice {0} in this organization")]
    UnknownInvoice(String),
    #[error("{0:?} is not an IANA time zone")]
    InvalidTimeZone(String),
}

/// The fake: cheap to clone (an `Arc` inside); every clone sees the same state.
#[derive(Clone)]
pub struct FakeZoho {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeZoho {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeZoho")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl FakeZoho {
    pub fn new(options: FakeOptions) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(options))),
        }
    }

    /// Binds `127.0.0.1:0`, sets the base URL to that address and serves the router in a
    /// tokio task (which lives as long as the runtime).
    pub async fn spawn(options: FakeOptions) -> std::io::Result<(FakeZoho, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fake = FakeZoho::new(options);
        fake.set_base_url(format!("http://{addr}"));
        let router = fake.router();
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::warn!(error = %err, "the fake Zoho server stopped");
            }
        });
        Ok((fake, addr))
    }

    /// The accounts and API routes of every data centre. Nest it with
    /// `Router::nest_service(prefix, fake.router())` and a base URL ending in that prefix.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/accounts/{dc}/oauth/v2/auth",
                get(oauth::consent_page).post(oauth::consent_decision),
            )
            .route("/accounts/{dc}/oauth/v2/token", post(oauth::token))
            .route("/accounts/{dc}/oauth/v2/token/revoke", post(oauth::revoke))
            .route(
                "/api/{dc}/books/v3/organizations",
                get(books::organizations),
            )
            .route("/api/{dc}/books/v3/contacts", get(books::list_contacts))
            .route("/api/{dc}/books/v3/contacts/{id}", get(books::get_contact))
            .route("/api/{dc}/books/v3/invoices", get(books::list_invoices))
            .route("/api/{dc}/books/v3/invoices/{id}", get(books::get_invoice))
            .route(
                "/api/{dc}/books/v3/invoices/{id}/comments",
                post(books::add_comment),
            )
            .with_state(self.clone())
    }

    pub fn base_url(&self) -> String {
        self.lock().base_url.clone()
    }

    pub fn set_base_url(&self, base_url: impl Into<String>) {
        self.lock().base_url = base_url.into().trim_end_matches('/').to_owned();
    }

    /// `{base}/accounts/{dc}`: what Zoho calls the accounts server of a DC.
    pub fn accounts_url(&self, dc: DataCentre) -> String {
        self.lock().accounts_url(dc)
    }

    /// `{base}/api/{dc}`: the `api_domain` of a DC (Books lives at `{api_domain}/books/v3`).
    pub fn api_domain(&self, dc: DataCentre) -> String {
        self.lock().api_domain(dc)
    }

    pub fn register_client(&self, client: FakeClient) {
        let mut state = self.lock();
        state.clients.retain(|c| c.client_id != client.client_id);
        state.clients.push(client);
    }

    // ---- clock ----

    /// The fake clock's current time (whole seconds).
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now()
    }

    pub fn advance_clock(&self, by: Duration) {
        self.lock().advance(by);
    }

    // ---- users and organizations ----

    /// Adds (or moves) a user whose account lives in `home_dc`. The first user added is the
    /// one signed in to the consent page until [`FakeZoho::sign_in`] says otherwise.
    pub fn add_user(&self, email: &str, home_dc: DataCentre) {
        let mut state = self.lock();
        let email = email.trim().to_ascii_lowercase();
        if state.signed_in.is_none() {
            state.signed_in = Some(email.clone());
        }
        state.users.insert(email, home_dc);
    }

    /// The user the consent page acts for (a `login_hint` query parameter overrides it).
    pub fn sign_in(&self, email: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        let email = email.trim().to_ascii_lowercase();
        if !state.users.contains_key(&email) {
            return Err(FakeError::UnknownUser(email));
        }
        state.signed_in = Some(email);
        Ok(())
    }

    /// Creates an organization in `user`'s home DC, visible to `user`, and returns its id.
    /// `time_zone` is an IANA name; the org's times are written in it.
    pub fn add_organization(
        &self,
        user: &str,
        name: &str,
        currency_code: &str,
        time_zone: &str,
        is_default: bool,
    ) -> Result<String, FakeError> {
        let mut state = self.lock();
        let email = user.trim().to_ascii_lowercase();
        let dc = *state
            .users
            .get(&email)
            .ok_or_else(|| FakeError::UnknownUser(email.clone()))?;
        let tz: chrono_tz::Tz = time_zone
            .parse()
            .map_err(|_| FakeError::InvalidTimeZone(time_zone.to_owned()))?;
        if is_default {
            for org in state.orgs.values_mut() {
                if org.users.contains(&email) {
                    org.is_default = false;
                }
            }
        }
        let id = state.next_org_id();
        let created = state.now();
        let org = Org::new(
            id.clone(),
            name.to_owned(),
            currency_code.to_ascii_uppercase(),
            tz,
            dc,
            email,
            is_default,
            created,
        );
        state.orgs.insert(id.clone(), org);
        Ok(id)
    }

    /// Lets another user (of the same DC) see an organization.
    pub fn grant_access(&self, org_id: &str, user: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        let email = user.trim().to_ascii_lowercase();
        if !state.users.contains_key(&email) {
            return Err(FakeError::UnknownUser(email));
        }
        let org = state.org_mut(org_id)?;
        if !org.users.contains(&email) {
            org.users.push(email);
        }
        Ok(())
    }

    // ---- books ----

    /// Adds a contact; the fake assigns `contact_id`, the contact person ids (where empty)
    /// and both times, and returns the id.
    pub fn add_contact(&self, org_id: &str, contact: FakeContact) -> Result<String, FakeError> {
        let mut state = self.lock();
        state.org(org_id)?;
        let stamp = state.stamp();
        let contact = state.adopt_contact(contact, stamp, stamp);
        let id = contact.contact_id.clone();
        state.org_mut(org_id)?.put_contact(contact);
        Ok(id)
    }

    /// Adds an invoice for an existing contact; the fake assigns `invoice_id` and both times.
    pub fn add_invoice(&self, org_id: &str, invoice: FakeInvoice) -> Result<String, FakeError> {
        let mut state = self.lock();
        if !state
            .org(org_id)?
            .contacts
            .contains_key(&invoice.customer_id)
        {
            return Err(FakeError::UnknownContact(invoice.customer_id));
        }
        let stamp = state.stamp();
        let mut invoice = invoice;
        invoice.invoice_id = state.next_id();
        invoice.created_time = stamp;
        invoice.last_modified_time = stamp;
        let id = invoice.invoice_id.clone();
        state.org_mut(org_id)?.put_invoice(invoice);
        Ok(id)
    }

    /// Edits an invoice as a Books user would; `last_modified_time` becomes the fake clock's
    /// now (strictly later than any earlier modification). The id and creation time stay.
    pub fn update_invoice(
        &self,
        org_id: &str,
        invoice_id: &str,
        edit: impl FnOnce(&mut FakeInvoice),
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        let mut invoice = state
            .org(org_id)?
            .invoices
            .get(invoice_id)
            .cloned()
            .ok_or_else(|| FakeError::UnknownInvoice(invoice_id.to_owned()))?;
        let created = invoice.created_time;
        edit(&mut invoice);
        invoice.invoice_id = invoice_id.to_owned();
        invoice.created_time = created;
        invoice.last_modified_time = state.stamp();
        state.org_mut(org_id)?.put_invoice(invoice);
        Ok(())
    }

    /// Edits a contact; like [`FakeZoho::update_invoice`]. New contact persons get ids.
    pub fn update_contact(
        &self,
        org_id: &str,
        contact_id: &str,
        edit: impl FnOnce(&mut FakeContact),
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        let mut contact = state
            .org(org_id)?
            .contacts
            .get(contact_id)
            .cloned()
            .ok_or_else(|| FakeError::UnknownContact(contact_id.to_owned()))?;
        let created = contact.created_time;
        edit(&mut contact);
        contact.contact_id = contact_id.to_owned();
        let stamp = state.stamp();
        let contact = state.adopt_contact(contact, created, stamp);
        state.org_mut(org_id)?.put_contact(contact);
        Ok(())
    }

    /// Deletes an invoice (Zoho keeps no tombstone: it just disappears from lists).
    pub fn delete_invoice(&self, org_id: &str, invoice_id: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        let org = state.org_mut(org_id)?;
        org.invoices
            .remove(invoice_id)
            .ok_or_else(|| FakeError::UnknownInvoice(invoice_id.to_owned()))?;
        org.version += 1;
        Ok(())
    }

    /// Deletes a contact and its invoices.
    pub fn delete_contact(&self, org_id: &str, contact_id: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        let org = state.org_mut(org_id)?;
        org.contacts
            .remove(contact_id)
            .ok_or_else(|| FakeError::UnknownContact(contact_id.to_owned()))?;
        org.invoices.retain(|_, i| i.customer_id != contact_id);
        org.version += 1;
        Ok(())
    }

    pub fn invoice(&self, org_id: &str, invoice_id: &str) -> Option<FakeInvoice> {
        let state = self.lock();
        state.orgs.get(org_id)?.invoices.get(invoice_id).cloned()
    }

    pub fn contact(&self, org_id: &str, contact_id: &str) -> Option<FakeContact> {
        let state = self.lock();
        state.orgs.get(org_id)?.contacts.get(contact_id).cloned()
    }

    /// Every invoice of an organization, by id.
    pub fn invoices(&self, org_id: &str) -> Vec<FakeInvoice> {
        let state = self.lock();
        state
            .orgs
            .get(org_id)
            .map(|org| org.invoices.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every contact (customers and vendors) of an organization, by id.
    pub fn contacts(&self, org_id: &str) -> Vec<FakeContact> {
        let state = self.lock();
        state
            .orgs
            .get(org_id)
            .map(|org| org.contacts.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The comments posted on an invoice, oldest first.
    pub fn comments(&self, org_id: &str, invoice_id: &str) -> Vec<FakeComment> {
        let state = self.lock();
        state
            .orgs
            .get(org_id)
            .map(|org| {
                org.comments
                    .iter()
                    .filter(|c| c.invoice_id == invoice_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fills an organization with [`app::receivables::demo_books::generate`]'s books as of the
    /// fake clock's date in the organization's zone, converted to Zoho's shapes (see `demo.rs`).
    pub fn seed_demo_books(
        &self,
        org_id: &str,
        customers: usize,
        invoices: usize,
        seed: u64,
    ) -> Result<SeededBooks, FakeError> {
        let (today, now): (NaiveDate, DateTime<Utc>) = {
            let state = self.lock();
            let org = state.org(org_id)?;
            let now = state.now();
            (now.with_timezone(&org.tz).date_naive(), now)
        };
        // Generating validates phone numbers: CPU work done without the lock.
        let books = demo::convert(customers, invoices, today, now, seed);
        let mut state = self.lock();
        state.org(org_id)?;
        Ok(demo::insert(&mut state, org_id, books))
    }

    // ---- faults, tokens and counters ----

    /// Queues a fault for the next Books API request.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Queues a fault for each of the next `n` Books API requests.
    pub fn inject_n(&self, fault: Fault, n: usize) {
        let mut state = self.lock();
        state.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Drops queued faults.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Revokes every refresh and access token (the user disconnected the app in Zoho).
    pub fn revoke_all_tokens(&self) {
        let mut state = self.lock();
        state.refresh_tokens.clear();
        state.access_tokens.clear();
    }

    /// Makes every access token expired now; refresh tokens stay valid.
    pub fn expire_access_tokens(&self) {
        let mut state = self.lock();
        let now = state.now();
        for token in state.access_tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Requests received, by kind: `organizations.list`, `contacts.list`, `contacts.get`,
    /// `invoices.list`, `invoices.get`, `comments.add`, `accounts.auth`,
    /// `token.authorization_code`, `token.refresh_token`, `token.other`, `token.revoke`.
    /// Faulted and refused requests count too.
    pub fn api_calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Requests of one kind (see [`FakeZoho::api_calls`]).
    pub fn calls(&self, kind: &str) -> u64 {
        self.lock().calls.get(kind).copied().unwrap_or(0)
    }

    /// `POST /oauth/v2/token` requests, every grant type, refused ones included.
    pub fn token_requests(&self) -> u64 {
        self.lock()
            .calls
            .iter()
            .filter(|(kind, _)| kind.starts_with("token.") && kind.as_str() != "token.revoke")
            .map(|(_, n)| n)
            .sum()
    }

    pub fn reset_counters(&self) {
        self.lock().calls.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
