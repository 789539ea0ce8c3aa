//! The one state value shared by axum routes and, through Leptos context, server functions.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::FromRef;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use leptos::config::LeptosOptions;

use crate::db::Db;
use crate::error::AppError;

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub leptos_options: LeptosOptions,
    pub sign_in_limiter: Arc<SignInLimiter>,
    /// Whether cookies get the `Secure` attribute (the public URL is https).
    pub secure_cookies: bool,
    /// The header a trusted reverse proxy puts the client's address in, if any.
    pub client_ip_header: Option<http::HeaderName>,
    /// What the integrations of this instance are, as the pages need to know them.
    pub integrations: crate::integrations::IntegrationsInfo,
    /// Wakes the live feeds when calls or reminders change.
    pub live: crate::calls::live::Hub,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// The state inside a server function or component rendering on the server.
    pub fn from_context() -> Result<Self, AppError> {
        leptos::prelude::use_context::<Self>().ok_or_else(|| {
            AppError::internal("server state", "AppState missing from Leptos context")
        })
    }
}

/// Limits sign-in attempts per email address and per client address, in memory.
///
/// Per-instance limits: with several instances an attacker gets the quota once per instance,
/// which still rules out online guessing at any useful speed.
#[derive(Debug)]
pub struct SignInLimiter {
    per_email: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl SignInLimiter {
    /// `per_email` attempts a minute for one email address, four times that for one client address.
    pub fn new(per_email: NonZeroU32) -> Self {
        let per_ip = per_email.saturating_mul(NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN));
        Self {
            per_email: RateLimiter::keyed(Quota::per_minute(per_email)),
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip)),
        }
    }

    /// Counts one attempt; `RateLimited` once either quota is spent.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> Result<(), AppError> {
        let clock = DefaultClock::default();
        let limited = |not_until: governor::NotUntil<_>| AppError::RateLimited {
            retry_after_secs: not_until.wait_time_from(clock.now()).as_secs().max(1),
        };
        if let Some(ip) = ip {
            self.per_ip.check_key(&ip).map_err(limited)?;
        }
        self.per_email
            .check_key(&email.trim().to_lowercase())
            .map_err(limited)?;
        if self.per_email.len() > 10_000 {
            self.per_email.retain_recent();
            self.per_ip.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_email_separately() {
        let limiter = SignInLimiter::new(NonZeroU32::new(3).unwrap());
        for _ in 0..3 {
            limiter.check("a@example.com", None).unwrap();
        }
        assert!(matches!(
            limiter.check(" A@example.com ", None),
            Err(AppError::RateLimited { retry_after_secs }) if retry_after_secs >= 1
        ));
        limiter.check("b@example.com", None).unwrap();
    }

    #[test]
    fn limits_one_address_across_emails() {
        let limiter = SignInLimiter::new(NonZeroU32::new(1).unwrap());
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for i in 0..4 {
            limiter.check(&format!("user{i}@example.com"), ip).unwrap();
        }
        assert!(limiter.check("user9@example.com", ip).is_err());
    }
}
