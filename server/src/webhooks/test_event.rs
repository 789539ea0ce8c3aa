//! `duecall send-test-event`: one correctly signed call-status event, sent the way an agent
//! must send it, with the server's answer printed — to try an endpoint, a secret or a
//! reminder before an agent is built against them.

use anyhow::Context;
use clap::Args;
use secrecy::SecretString;

use app::calls::report::{CallStatusBody, CustomerResponse, EventType, OutcomeBody};

use super::CALL_STATUS_PATH;
use super::sender;
use super::signature::sign_legacy;
use crate::config::Config;

#[derive(Debug, Clone, Args)]
pub struct TestEvent {
    /// The reminder the event is about.
    #[arg(long)]
    pub reminder: i64,
    /// The call attempt (from the agent's metadata); the reminder's latest when left out.
    #[arg(long)]
    pub attempt: Option<i64>,
    /// call_answered, call_completed or call_failed.
    #[arg(long, default_value = "call_completed")]
    pub event: String,
    /// What the customer said (call_completed): will_pay_today, promise_to_pay, already_paid,
    /// dispute, callback_requested, wrong_number, opt_out, no_answer, voicemail.
    #[arg(long)]
    pub response: Option<String>,
    /// promise_to_pay: the promised date (YYYY-MM-DD).
    #[arg(long)]
    pub promised_date: Option<String>,
    /// dispute: what is disputed.
    #[arg(long)]
    pub dispute_reason: Option<String>,
    /// callback_requested: when (RFC 3339).
    #[arg(long)]
    pub callback_at: Option<String>,
    /// Seconds the conversation lasted.
    #[arg(long)]
    pub duration: Option<u32>,
    #[arg(long)]
    pub notes: Option<String>,
    /// call_failed: why.
    #[arg(long)]
    pub reason: Option<String>,
    /// The server (default: DUECALL_PUBLIC_URL).
    #[arg(long)]
    pub url: Option<String>,
    /// Sign with this `whsec_` secret (default: the first of DUECALL_WEBHOOK_SECRETS).
    #[arg(long, env = "DUECALL_TEST_EVENT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Sign the original way (X-Webhook-Signature with WEBHOOK_SECRET or --secret).
    #[arg(long)]
    pub legacy: bool,
    /// Sign as the call's agent does: with the attempt's own key (needs --attempt), posted to
    /// the callback URL that names the attempt.
    #[arg(long, requires = "attempt")]
    pub as_call: bool,
    /// Print the signed request instead of sending it (as a curl command).
    #[arg(long)]
    pub dry_run: bool,
}

impl TestEvent {
    fn body(&self) -> anyhow::Result<CallStatusBody> {
        let event_type: EventType =
            serde_json::from_value(serde_json::Value::String(self.event.clone()))
                .context("--event must be call_answered, call_completed or call_failed")?;
        let response = self
            .response
            .as_deref()
            .map(|r| CustomerResponse::parse(r).with_context(|| format!("unknown --response {r}")))
            .transpose()?;
        let outcome = (event_type != EventType::CallAnswered).then(|| OutcomeBody {
            connected: response.is_some_and(CustomerResponse::is_conversation),
            duration: self.duration,
            customer_response: response,
            notes: self.notes.clone(),
            promised_date: self.promised_date.as_deref().and_then(|d| d.parse().ok()),
            dispute_reason: self.dispute_reason.clone(),
            callback_at: self.callback_at.as_deref().and_then(|d| d.parse().ok()),
        });
        Ok(CallStatusBody {
            reminder_id: self.reminder,
            attempt_id: self.attempt,
            event_type,
            outcome,
            reason: self.reason.clone(),
        })
    }
}

pub async fn send(event: &TestEvent, config: &Config) -> anyhow::Result<()> {
    let body = event.body()?;
    let url = format!(
        "{}{CALL_STATUS_PATH}",
        event
            .url
            .as_deref()
            .unwrap_or(&config.public_url)
            .trim_end_matches('/')
    );
    let json = serde_json::to_string(&body)?;
    if event.legacy {
        let secret = event
            .secret
            .clone()
            .map(SecretString::from)
            .or_else(|| config.legacy_webhook_secret.clone())
            .context("--legacy needs WEBHOOK_SECRET or --secret")?;
        let signature = sign_legacy(&secret, json.as_bytes());
        if event.dry_run {
            println!(
                "curl -sS -X POST '{url}' -H 'content-type: application/json' -H 'x-webhook-signature: {signature}' --data '{json}'"
            );
            return Ok(());
        }
        let response = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("x-webhook-signature", signature)
            .body(json)
            .send()
            .await
            .with_context(|| format!("could not reach {url}"))?;
        println!(
            "{} {}",
            response.status().as_u16(),
            response.text().await.unwrap_or_default()
        );
        return Ok(());
    }
    if config.webhook_secret_generated && event.secret.is_none() {
        anyhow::bail!(
            "no secret to sign with: set DUECALL_WEBHOOK_SECRETS (as the server has it) or pass --secret"
        );
    }
    let secret = match &event.secret {
        Some(secret) => SecretString::from(secret.clone()),
        None => config
            .webhook_keys
            .signing_secret()
            .cloned()
            .context("no signing secret configured")?,
    };
    let (secret, url) = match (event.as_call, event.attempt) {
        (true, Some(attempt)) => (
            super::signature::derive_attempt_secret(&secret, attempt)?,
            format!("{url}?attempt={attempt}"),
        ),
        _ => (secret, url),
    };
    let id = format!("test_{}", rand::random::<u64>());
    if event.dry_run {
        let headers = super::signature::sign_standard(
            &secret,
            &id,
            chrono::Utc::now().timestamp(),
            json.as_bytes(),
        )?;
        let flags: Vec<String> = headers
            .iter()
            .map(|(name, value)| format!("-H '{name}: {value}'"))
            .collect();
        println!(
            "curl -sS -X POST '{url}' -H 'content-type: application/json' {} --data '{json}'",
            flags.join(" ")
        );
        return Ok(());
    }
    let now = || chrono::Utc::now().timestamp();
    match sender::send(&reqwest::Client::new(), &url, &secret, &id, now, &body).await {
        Ok(sent) => {
            println!("{} {}", sent.status, sent.body);
            Ok(())
        }
        Err(sender::SendError::Refused { status, body }) => {
            println!("{status} {body}");
            anyhow::bail!("the server refused the event")
        }
        Err(err) => Err(err.into()),
    }
}
