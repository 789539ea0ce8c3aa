//! Sending a call-status event the way a well-behaved agent does: signed with Standard
//! Webhooks, one `webhook-id` per event (so a retry is recognised), retried on network errors
//! and 5xx with growing delays (immediately, after 2 s, after 4 s), never on 4xx. Used by the
//! call simulator and `duecall send-test-event`.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use secrecy::SecretString;

use app::calls::report::CallStatusBody;

use super::signature::sign_standard;

/// What the endpoint answered, for the last try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the endpoint answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("{0}")]
    Secret(String),
}

impl SendError {
    fn retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status >= 500,
            Self::Secret(_) => false,
        }
    }
}

/// Signs and posts `event` to `url` with `id` as its `webhook-id`, at `timestamp` (Unix
/// seconds) — retried as a sender must.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &SecretString,
    id: &str,
    timestamp: impl Fn() -> i64,
    event: &CallStatusBody,
) -> Result<Sent, SendError> {
    let body = serde_json::to_vec(event).map_err(|e| SendError::Secret(e.to_string()))?;
    let attempt = || async {
        let headers = sign_standard(secret, id, timestamp(), &body)
            .map_err(|e| SendError::Secret(e.to_string()))?;
        let mut request = client
            .post(url)
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .body(body.clone())
            .send()
            .await
            .map_err(|e| SendError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            Ok(Sent { status, body: text })
        } else {
            Err(SendError::Refused { status, body: text })
        }
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(2))
                .with_factor(2.0)
                .with_max_times(2)
                .with_jitter(),
        )
        .when(SendError::retryable)
        .await
}
