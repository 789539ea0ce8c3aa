//! The Books API v3 client of one connection: Zoho's bearer form, `organization_id` on every
//! call, the envelope (a non-zero `code` is an error even with HTTP 200), pagination, a
//! per-organization rate limiter, and the error policy:
//!
//! - 429 with code 44 (per-minute) or 1070 (concurrency): wait for `X-Rate-Limit-Reset` (or the
//!   minute window) plus jitter, a bounded number of times;
//! - 429 with code 45 (daily limit): stop at once with [`ZohoError::DailyLimit`];
//! - 5xx, timeouts and broken connections: exponential backoff with jitter, bounded;
//! - 401 or code 57: one token refresh, then [`ZohoError::Unauthorized`] (the connection needs
//!   reconnecting).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{ContactDetail, ContactRow, InvoiceRow, Organization, PageContext};

/// Why a Books call failed, after the retries the policy allows.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ZohoError {
    /// The token was refused and a refresh did not help: the user must reconnect.
    #[error("Zoho refused the connection's authorization; reconnect Zoho Books")]
    Unauthorized,
    /// The organization's daily API quota is spent.
    #[error("Zoho's daily API limit is reached; syncing resumes tomorrow")]
    DailyLimit { reset: Option<Duration> },
    /// Per-minute or concurrency limits persisted through every wait.
    #[error("Zoho kept answering 'too many requests'")]
    RateLimited,
    /// Server errors or timeouts persisted through every retry.
    #[error("Zoho is unavailable: {0}")]
    Unavailable(String),
    #[error("Zoho has no such record")]
    NotFound,
    /// Any other refusal, with Zoho's code and message.
    #[error("Zoho answered code {code}: {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
    },
    /// An answer that is not what the API documents.
    #[error("unexpected answer from Zoho: {0}")]
    Decode(String),
}

impl ZohoError {
    /// Whether the failure says nothing about the data (a later run may well succeed).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable(_))
    }
}

/// Where access tokens come from: the connection's token store (with single-flight refresh).
pub trait AccessTokens: Send + Sync {
    /// A usable access token (refreshed first if it expires soon).
    fn current(&self) -> impl Future<Output = Result<SecretString, ZohoError>> + Send;
    /// Zoho refused `rejected`: refresh (unless someone already did) and return the new token.
    fn after_rejection(
        &self,
        rejected: &SecretString,
    ) -> impl Future<Output = Result<SecretString, ZohoError>> + Send;
}

/// Timeouts, retries and waits. The defaults suit the real Zoho; tests shorten them.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub timeout: Duration,
    /// Retries of server errors and timeouts.
    pub transient_retries: usize,
    pub transient_min_delay: Duration,
    pub transient_max_delay: Duration,
    /// Waits on per-minute or concurrency 429s before giving up.
    pub rate_limit_waits: usize,
    /// The longest single wait on a 429 (Zoho's window is a minute).
    pub max_rate_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            transient_retries: 4,
            transient_min_delay: Duration::from_millis(500),
            transient_max_delay: Duration::from_secs(30),
            rate_limit_waits: 5,
            max_rate_wait: Duration::from_secs(65),
        }
    }
}

/// A per-organization request budget, shared by everything that calls Zoho for it.
pub type Limiter = Arc<DefaultDirectRateLimiter>;

/// A limiter admitting `per_minute` requests a minute, spread evenly (no bursts that would
/// trip Zoho's own window).
pub fn limiter(per_minute: std::num::NonZeroU32) -> Limiter {
    let burst = std::num::NonZeroU32::new((per_minute.get() / 10).max(1)).unwrap_or(per_minute);
    Arc::new(RateLimiter::direct(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

/// One connection's view of Books.
pub struct BooksApi<T> {
    http: reqwest::Client,
    /// `https://www.zohoapis.eu` (the connection's DC).
    api_domain: String,
    organization_id: String,
    tokens: T,
    limiter: Limiter,
    policy: RetryPolicy,
    calls: AtomicU64,
}

/// What one attempt ended in.
enum Attempt {
    Done(Value),
    Unauthorized,
    RateLimited { reset: Option<Duration> },
    DailyLimit { reset: Option<Duration> },
    Transient(String),
    Failed(ZohoError),
}

fn reset_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Classifies a Books answer by HTTP status and envelope code.
fn classify(status: StatusCode, reset: Option<Duration>, body: &[u8]) -> Attempt {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let code = json
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_i64);
    let message = json
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match (status.as_u16(), code) {
        (_, Some(45)) => Attempt::DailyLimit { reset },
        (_, Some(44 | 1070)) | (429, _) => Attempt::RateLimited { reset },
        (_, Some(57 | 14)) | (401, _) => Attempt::Unauthorized,
        (_, Some(1002)) | (404, _) => Attempt::Failed(ZohoError::NotFound),
        (500..=599, _) | (_, Some(1000)) => {
            Attempt::Transient(format!("HTTP {status}, code {code:?}: {message}"))
        }
        (200..=299, Some(0)) => match json {
            Some(value) => Attempt::Done(value),
            None => Attempt::Failed(ZohoError::Decode("empty answer".into())),
        },
        (200..=299, None) => {
            // Not Zoho's envelope: a proxy or load balancer answered. Worth another try.
            Attempt::Transient(format!("HTTP {status} without Zoho's envelope"))
        }
        (status, code) => Attempt::Failed(ZohoError::Api {
            status,
            code: code.unwrap_or(-1),
            message,
        }),
    }
}

fn jitter(max: Duration) -> Duration {
    let millis = max.as_millis().min(u128::from(u64::MAX)) as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis.max(1)))
}

impl<T: AccessTokens> BooksApi<T> {
    pub fn new(
        http: reqwest::Client,
        api_domain: &str,
        organization_id: &str,
        tokens: T,
        limiter: Limiter,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            http,
            api_domain: api_domain.trim_end_matches('/').to_owned(),
            organization_id: organization_id.to_owned(),
            tokens,
            limiter,
            policy,
            calls: AtomicU64::new(0),
        }
    }

    /// Requests sent so far (retries included): what this client cost of Zoho's quota.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn tokens(&self) -> &T {
        &self.tokens
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<&[(&str, String)]>,
        token: &SecretString,
    ) -> Attempt {
        self.limiter.until_ready().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/books/v3{path}", self.api_domain);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .timeout(self.policy.timeout)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Zoho-oauthtoken {}", token.expose_secret()),
            )
            .query(&[("organization_id", self.organization_id.as_str())])
            .query(query);
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_timeout() => return Attempt::Transient("timed out".into()),
            Err(err) => return Attempt::Transient(format!("request failed: {err}")),
        };
        let status = response.status();
        let reset = reset_header(response.headers());
        match response.bytes().await {
            Ok(body) => classify(status, reset, &body),
            Err(err) => Attempt::Transient(format!("answer cut short: {err}")),
        }
    }

    /// One logical call with the retry policy applied.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<&[(&str, String)]>,
    ) -> Result<Value, ZohoError> {
        let mut token = self.tokens.current().await?;
        let mut refreshed = false;
        let mut rate_waits = 0;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.transient_min_delay)
            .with_max_delay(self.policy.transient_max_delay)
            .with_max_times(self.policy.transient_retries)
            .with_jitter()
            .build();
        loop {
            match self.attempt(&method, path, query, form, &token).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Unauthorized if !refreshed => {
                    refreshed = true;
                    token = self.tokens.after_rejection(&token).await?;
                }
                Attempt::Unauthorized => return Err(ZohoError::Unauthorized),
                Attempt::DailyLimit { reset } => return Err(ZohoError::DailyLimit { reset }),
                Attempt::RateLimited { reset } => {
                    rate_waits += 1;
                    if rate_waits > self.policy.rate_limit_waits {
                        return Err(ZohoError::RateLimited);
                    }
                    let window = reset.unwrap_or(Duration::from_secs(60));
                    let wait = window.min(self.policy.max_rate_wait)
                        + jitter(self.policy.max_rate_wait.min(Duration::from_secs(1)) / 2);
                    tracing::info!(
                        path,
                        wait_ms = wait.as_millis() as u64,
                        "Zoho rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                Attempt::Transient(reason) => match backoff.next() {
                    Some(delay) => {
                        tracing::info!(path, %reason, delay_ms = delay.as_millis() as u64, "Zoho call failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(ZohoError::Unavailable(reason)),
                },
                Attempt::Failed(err) => return Err(err),
            }
        }
    }

    async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<R, ZohoError> {
        let value = self.call(Method::GET, path, query, None).await?;
        serde_json::from_value(value).map_err(|e| ZohoError::Decode(format!("{path}: {e}")))
    }

    /// One page of customers (contacts of type customer), newest modification first.
    pub async fn contacts_page(
        &self,
        page: u32,
    ) -> Result<(Vec<ContactRow>, PageContext), ZohoError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            contacts: Vec<ContactRow>,
            #[serde(default)]
            page_context: PageContext,
        }
        let answer: Answer = self
            .get(
                "/contacts",
                &[
                    ("contact_type", "customer".into()),
                    ("filter_by", "Status.All".into()),
                    ("sort_column", "last_modified_time".into()),
                    ("sort_order", "D".into()),
                    ("page", page.to_string()),
                    ("per_page", "200".into()),
                ],
            )
            .await?;
        Ok((answer.contacts, answer.page_context))
    }

    pub async fn contact(&self, contact_id: &str) -> Result<ContactDetail, ZohoError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            contact: ContactDetail,
        }
        let answer: Answer = self.get(&format!("/contacts/{contact_id}"), &[]).await?;
        Ok(answer.contact)
    }

    /// One page of invoices modified strictly after `modified_after` (all of them without),
    /// oldest first by creation so pages stay put while Zoho adds invoices.
    pub async fn invoices_page(
        &self,
        modified_after: Option<&str>,
        page: u32,
    ) -> Result<(Vec<InvoiceRow>, PageContext), ZohoError> {
        self.list_invoices("Status.All", modified_after, page).await
    }

    /// One page of the invoices still to be paid (sent, overdue, partially paid), oldest first
    /// by creation.
    pub async fn unpaid_invoices_page(
        &self,
        page: u32,
    ) -> Result<(Vec<InvoiceRow>, PageContext), ZohoError> {
        self.list_invoices("Status.Unpaid", None, page).await
    }

    async fn list_invoices(
        &self,
        filter_by: &str,
        modified_after: Option<&str>,
        page: u32,
    ) -> Result<(Vec<InvoiceRow>, PageContext), ZohoError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            invoices: Vec<InvoiceRow>,
            #[serde(default)]
            page_context: PageContext,
        }
        let mut query = vec![
            ("filter_by", filter_by.to_owned()),
            ("sort_column", "created_time".into()),
            ("sort_order", "A".into()),
            ("page", page.to_string()),
            ("per_page", "200".into()),
        ];
        if let Some(after) = modified_after {
            query.push(("last_modified_time", after.to_owned()));
        }
        let answer: Answer = self.get("/invoices", &query).await?;
        Ok((answer.invoices, answer.page_context))
    }

    /// One invoice (its list fields; `NotFound` when it was deleted).
    pub async fn invoice(&self, invoice_id: &str) -> Result<InvoiceRow, ZohoError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            invoice: InvoiceRow,
        }
        let answer: Answer = self.get(&format!("/invoices/{invoice_id}"), &[]).await?;
        Ok(answer.invoice)
    }

    /// Adds a comment to an invoice, optionally setting the date the customer promised to pay.
    pub async fn add_invoice_comment(
        &self,
        invoice_id: &str,
        description: &str,
        payment_expected_date: Option<&str>,
    ) -> Result<(), ZohoError> {
        let mut form = vec![
            ("description", description.to_owned()),
            ("show_comment_to_clients", "false".to_owned()),
        ];
        if let Some(date) = payment_expected_date {
            form.push(("payment_expected_date", date.to_owned()));
        }
        self.call(
            Method::POST,
            &format!("/invoices/{invoice_id}/comments"),
            &[],
            Some(&form),
        )
        .await?;
        Ok(())
    }
}

/// The organizations the token's user can see (no `organization_id` needed).
pub async fn organizations(
    http: &reqwest::Client,
    api_domain: &str,
    access_token: &SecretString,
    timeout: Duration,
) -> Result<Vec<Organization>, ZohoError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        organizations: Vec<Organization>,
    }
    let url = format!(
        "{}/books/v3/organizations",
        api_domain.trim_end_matches('/')
    );
    let response = http
        .get(url)
        .timeout(timeout)
        .header(
            reqwest::header::AUTHORIZATION,
            format!("Zoho-oauthtoken {}", access_token.expose_secret()),
        )
        .send()
        .await
        .map_err(|e| ZohoError::Unavailable(e.to_string()))?;
    let status = response.status();
    let reset = reset_header(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| ZohoError::Unavailable(e.to_string()))?;
    match classify(status, reset, &body) {
        Attempt::Done(value) => serde_json::from_value::<Answer>(value)
            .map(|a| a.organizations)
            .map_err(|e| ZohoError::Decode(format!("/organizations: {e}"))),
        Attempt::Unauthorized => Err(ZohoError::Unauthorized),
        Attempt::DailyLimit { reset } => Err(ZohoError::DailyLimit { reset }),
        Attempt::RateLimited { .. } => Err(ZohoError::RateLimited),
        Attempt::Transient(reason) => Err(ZohoError::Unavailable(reason)),
        Attempt::Failed(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> &'static str {
        match classify(StatusCode::from_u16(status).unwrap(), None, body.as_bytes()) {
            Attempt::Done(_) => "done",
            Attempt::Unauthorized => "unauthorized",
            Attempt::RateLimited { .. } => "rate",
            Attempt::DailyLimit { .. } => "daily",
            Attempt::Transient(_) => "transient",
            Attempt::Failed(_) => "failed",
        }
    }

    #[test]
    fn answers_are_classified_by_status_and_code() {
        assert_eq!(kind(200, r#"{"code":0,"message":"success"}"#), "done");
        // A non-zero code is an error even with HTTP 200.
        assert_eq!(kind(200, r#"{"code":57,"message":"no"}"#), "unauthorized");
        assert_eq!(kind(200, r#"{"code":2,"message":"bad"}"#), "failed");
        assert_eq!(kind(401, r#"{"code":57,"message":"no"}"#), "unauthorized");
        assert_eq!(kind(429, r#"{"code":44,"message":"slow down"}"#), "rate");
        assert_eq!(kind(429, r#"{"code":1070,"message":"slow down"}"#), "rate");
        assert_eq!(kind(429, r#"{"code":45,"message":"tomorrow"}"#), "daily");
        assert_eq!(kind(500, r#"{"code":1000,"message":"oops"}"#), "transient");
        assert_eq!(kind(502, "<html>bad gateway</html>"), "transient");
        assert_eq!(kind(200, "<html>captive portal</html>"), "transient");
        assert_eq!(kind(404, r#"{"code":1002,"message":"gone"}"#), "failed");
    }
}
