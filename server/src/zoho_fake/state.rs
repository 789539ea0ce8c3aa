//! The fake's state: the clock, users, organizations and their books, grant codes and tokens,
//! queued faults and request counters. Everything here is synchronous; handlers lock, work and
//! unlock without awaiting in between.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use rand::RngCore;

use super::records::{FakeComment, FakeContact, FakeInvoice};
use super::{DataCentre, FakeClient, FakeError, FakeOptions, Fault};

/// Access tokens live an hour.
pub(super) const ACCESS_TOKEN_SECONDS: i64 = 3600;
/// Grant codes live about two minutes.
pub(super) const CODE_SECONDS: i64 = 120;
/// Access-token requests allowed per refresh token in [`TOKEN_WINDOW_MINUTES`].
pub(super) const TOKEN_REQUESTS_PER_WINDOW: usize = 10;
pub(super) const TOKEN_WINDOW_MINUTES: i64 = 10;
/// Live access tokens per refresh token; issuing one more kills the oldest.
pub(super) const LIVE_ACCESS_TOKENS: usize = 10;
/// Refresh tokens per user per client; issuing one more deletes the oldest.
pub(super) const REFRESH_TOKENS_PER_USER: usize = 20;

/// 2^53: above it, odd integers have no exact f64. Every fourth id lives up there so a client
/// that parses ids as numbers gets caught.
const BIG_ID_BASE: u64 = 9_007_199_254_740_992;
const SMALL_ID_BASE: u64 = 982_000_000_000_000;
const ORG_ID_BASE: u64 = 700_000_000;

/// A grant code waiting for its exchange.
#[derive(Debug, Clone)]
pub(super) struct GrantCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user: String,
    pub dc: DataCentre,
    pub scopes: Vec<String>,
    /// Whether the exchange returns a refresh token.
    pub with_refresh_token: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct RefreshToken {
    pub client_id: String,
    pub user: String,
    pub dc: DataCentre,
    pub scopes: Vec<String>,
    pub serial: u64,
    /// Times of the access-token requests made with it (the code exchange included).
    pub requests: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(super) struct AccessToken {
    pub refresh_token: Option<String>,
    pub user: String,
    pub dc: DataCentre,
    pub scopes: Vec<String>,
    pub serial: u64,
    pub expires_at: DateTime<Utc>,
}

/// The ids of the last listing asked for, so paging through large books does not filter and
/// sort everything again for each page.
#[derive(Debug, Default)]
pub(super) struct ListCache {
    pub key: String,
    pub version: u64,
    pub ids: Vec<String>,
}

/// Requests counted in one rate-limit window.
#[derive(Debug, Default)]
pub(super) struct Window<K> {
    pub key: K,
    pub count: u32,
}

#[derive(Debug)]
pub(super) struct Org {
    pub id: String,
    pub name: String,
    pub currency_code: String,
    pub tz: Tz,
    pub dc: DataCentre,
    /// Emails of the users who can see it; the first created it.
    pub users: Vec<String>,
    pub is_default: bool,
    pub created: DateTime<Utc>,
    pub contacts: BTreeMap<String, FakeContact>,
    pub invoices: BTreeMap<String, FakeInvoice>,
    pub comments: Vec<FakeComment>,
    /// Bumped on every change of contacts or invoices (invalidates the list caches).
    pub version: u64,
    pub contact_list: ListCache,
    pub invoice_list: ListCache,
    pub minute: Window<i64>,
    pub day: Window<NaiveDate>,
}

impl Org {
    #[expect(
        clippy::too_many_arguments,
        reason = "a private constructor of plain fields"
    )]
    pub fn new(
        id: String,
        name: String,
        currency_code: String,
        tz: Tz,
        dc: DataCentre,
        owner: String,
        is_default: bool,
        created: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name,
            currency_code,
            tz,
            dc,
            users: vec![owner],
            is_default,
            created,
            contacts: BTreeMap::new(),
            invoices: BTreeMap::new(),
            comments: Vec::new(),
            version: 0,
            contact_list: ListCache::default(),
            invoice_list: ListCache::default(),
            minute: Window::default(),
            day: Window::default(),
        }
    }

    pub fn put_contact(&mut self, contact: FakeContact) {
        self.contacts.insert(contact.contact_id.clone(), contact);
        self.version += 1;
    }

    pub fn put_invoice(&mut self, invoice: FakeInvoice) {
        self.invoices.insert(invoice.invoice_id.clone(), invoice);
        self.version += 1;
    }

    /// Unpaid balance per customer id, in the invoices' minor units.
    pub fn outstanding(&self) -> HashMap<&str, i64> {
        let mut sums = HashMap::new();
        for invoice in self.invoices.values() {
            if invoice.status.is_unpaid() {
                *sums.entry(invoice.customer_id.as_str()).or_insert(0) += invoice.balance_minor;
            }
        }
        sums
    }
}

pub(super) struct State {
    pub base_url: String,
    pub clients: Vec<FakeClient>,
    pub per_minute_limit: Option<u32>,
    pub daily_limit: Option<u32>,
    real_time: bool,
    start: DateTime<Utc>,
    offset: Duration,
    /// The latest modification time handed out; the clock never reads earlier.
    last_stamp: DateTime<Utc>,
    next_id: u64,
    next_org: u64,
    next_serial: u64,
    pub signed_in: Option<String>,
    /// Email (lower case) → home DC.
    pub users: BTreeMap<String, DataCentre>,
    pub orgs: BTreeMap<String, Org>,
    pub codes: HashMap<String, GrantCode>,
    /// (user, client id) pairs that consented once: later consents need `prompt=consent` to
    /// get a refresh token again.
    pub consents: HashSet<(String, String)>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub faults: VecDeque<Fault>,
    pub calls: BTreeMap<String, u64>,
}

pub(super) fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp(), 0).unwrap_or(time)
}

impl State {
    pub fn new(options: FakeOptions) -> Self {
        let start = whole_seconds(options.start_time);
        Self {
            base_url: options.base_url.trim_end_matches('/').to_owned(),
            clients: options.clients,
            per_minute_limit: options.per_minute_limit,
            daily_limit: options.daily_limit,
            real_time: options.real_time,
            start,
            offset: Duration::zero(),
            last_stamp: DateTime::<Utc>::MIN_UTC,
            next_id: 0,
            next_org: 0,
            next_serial: 0,
            signed_in: None,
            users: BTreeMap::new(),
            orgs: BTreeMap::new(),
            codes: HashMap::new(),
            consents: HashSet::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            faults: VecDeque::new(),
            calls: BTreeMap::new(),
        }
    }

    pub fn accounts_url(&self, dc: DataCentre) -> String {
        format!("{}/accounts/{}", self.base_url, dc.location())
    }

    pub fn api_domain(&self, dc: DataCentre) -> String {
        format!("{}/api/{}", self.base_url, dc.location())
    }

    // ---- clock ----

    pub fn now(&self) -> DateTime<Utc> {
        let base = if self.real_time {
            Utc::now()
        } else {
            self.start
        };
        whole_seconds(base + self.offset).max(self.last_stamp)
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }

    /// A modification time strictly later than every earlier one: now, or one second after
    /// the previous modification when that was in the same second (the clock then reads it).
    pub fn stamp(&mut self) -> DateTime<Utc> {
        let now = self.now();
        let stamp = if now > self.last_stamp {
            now
        } else {
            self.last_stamp + Duration::seconds(1)
        };
        self.last_stamp = stamp;
        stamp
    }

    /// Records a time given to seeded data, so later modifications come after it.
    pub fn saw_time(&mut self, time: DateTime<Utc>) {
        self.last_stamp = self.last_stamp.max(time);
    }

    // ---- ids ----

    pub fn next_id(&mut self) -> String {
        self.next_id += 1;
        let n = self.next_id;
        if n.is_multiple_of(4) {
            (BIG_ID_BASE + 2 * n + 1).to_string()
        } else {
            (SMALL_ID_BASE + n * 3).to_string()
        }
    }

    pub fn next_org_id(&mut self) -> String {
        self.next_org += 1;
        (ORG_ID_BASE + self.next_org).to_string()
    }

    fn next_serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// A Zoho-looking secret: `1000.` and two random hex runs.
    pub fn secret() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("1000.{}.{}", &hex[..32], &hex[32..])
    }

    // ---- books ----

    pub fn org(&self, org_id: &str) -> Result<&Org, FakeError> {
        self.orgs
            .get(org_id)
            .ok_or_else(|| FakeError::UnknownOrganization(org_id.to_owned()))
    }

    pub fn org_mut(&mut self, org_id: &str) -> Result<&mut Org, FakeError> {
        self.orgs
            .get_mut(org_id)
            .ok_or_else(|| FakeError::UnknownOrganization(org_id.to_owned()))
    }

    /// Gives a contact (and its new persons) ids and the given times.
    pub fn adopt_contact(
        &mut self,
        mut contact: FakeContact,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
    ) -> FakeContact {
        if contact.contact_id.is_empty() {
            contact.contact_id = self.next_id();
        }
        for person in &mut contact.contact_persons {
            if person.contact_person_id.is_empty() {
                person.contact_person_id = self.next_id();
            }
        }
        contact.created_time = created;
        contact.last_modified_time = modified;
        contact
    }

    // ---- tokens ----

    pub fn client(&self, client_id: &str) -> Option<&FakeClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub fn count(&mut self, kind: &str) {
        *self.calls.entry(kind.to_owned()).or_insert(0) += 1;
    }

    /// A new refresh token; the user's oldest one for this client goes if there are too many.
    pub fn issue_refresh_token(&mut self, code: &GrantCode) -> String {
        let mut mine: Vec<(u64, String)> = self
            .refresh_tokens
            .iter()
            .filter(|(_, t)| t.user == code.user && t.client_id == code.client_id)
            .map(|(id, t)| (t.serial, id.clone()))
            .collect();
        mine.sort();
        while mine.len() >= REFRESH_TOKENS_PER_USER {
            let (_, oldest) = mine.remove(0);
            self.revoke_refresh_token(&oldest);
        }
        let token = Self::secret();
        let serial = self.next_serial();
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                client_id: code.client_id.clone(),
                user: code.user.clone(),
                dc: code.dc,
                scopes: code.scopes.clone(),
                serial,
                requests: Vec::new(),
            },
        );
        token
    }

    /// A new access token; with a refresh token, its oldest live access token dies when it
    /// already has the maximum.
    pub fn issue_access_token(
        &mut self,
        refresh_token: Option<&str>,
        user: &str,
        dc: DataCentre,
        scopes: &[String],
    ) -> String {
        let now = self.now();
        self.access_tokens.retain(|_, t| t.expires_at > now);
        if let Some(refresh) = refresh_token {
            let mut live: Vec<(u64, String)> = self
                .access_tokens
                .iter()
                .filter(|(_, t)| t.refresh_token.as_deref() == Some(refresh))
                .map(|(id, t)| (t.serial, id.clone()))
                .collect();
            live.sort();
            while live.len() >= LIVE_ACCESS_TOKENS {
                let (_, oldest) = live.remove(0);
                self.access_tokens.remove(&oldest);
            }
        }
        let token = Self::secret();
        let serial = self.next_serial();
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                refresh_token: refresh_token.map(str::to_owned),
                user: user.to_owned(),
                dc,
                scopes: scopes.to_vec(),
                serial,
                expires_at: now + Duration::seconds(ACCESS_TOKEN_SECONDS),
            },
        );
        token
    }

    /// Removes a refresh token and every access token made from it.
    pub fn revoke_refresh_token(&mut self, token: &str) {
        self.refresh_tokens.remove(token);
        self.access_tokens
            .retain(|_, t| t.refresh_token.as_deref() != Some(token));
    }
}
