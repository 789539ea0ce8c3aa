//! The call simulator: the call provider when no telephony is configured, and the demo's.
//! It "places" each call and, after believable delays, reports what happened the way a real
//! voice agent does — signed call-status webhooks over HTTP to Duecall's own endpoint: answered
//! and paying today, a promise, already paid, a dispute, a callback, no answer, busy, a failed
//! line, or an agent that goes silent so the timeout path runs. The outcome follows from the
//! attempt id, so a run can be repeated.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use app::calls::report::{CallStatusBody, CustomerResponse, EventType, OutcomeBody};
use app::reminders::dispatch::CallRequest;
use chrono::Duration;
use secrecy::SecretString;

use super::{CallProvider, Clock, PlaceError, Placed};
use crate::webhooks::sender;
use crate::webhooks::signature::derive_attempt_secret;

/// How a simulated call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Conversation(CustomerResponse),
    NoAnswer,
    Busy,
    LineFailure,
    /// The agent never reports: the call times out.
    Silent,
}

/// The simulated fate of attempt `attempt_id`: a fixed mix, spread evenly over ids.
pub fn script_for(attempt_id: i64) -> Script {
    // A multiplicative hash so neighbouring ids get different fates.
    let roll = (attempt_id.unsigned_abs().wrapping_mul(2_654_435_761) >> 8) % 100;
    match roll {
        0..=24 => Script::Conversation(CustomerResponse::WillPayToday),
        25..=44 => Script::Conversation(CustomerResponse::PromiseToPay),
        45..=51 => Script::Conversation(CustomerResponse::AlreadyPaid),
        52..=56 => Script::Conversation(CustomerResponse::Dispute),
        57..=59 => Script::Conversation(CustomerResponse::CallbackRequested),
        60..=76 => Script::NoAnswer,
        77..=85 => Script::Busy,
        86..=93 => Script::LineFailure,
        _ => Script::Silent,
    }
}

/// Delays of a simulated call.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// From placing to answered, no answer or busy.
    pub ring: StdDuration,
    /// From answered to the end of the conversation.
    pub talk: StdDuration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ring: StdDuration::from_secs(4),
            talk: StdDuration::from_secs(15),
        }
    }
}

/// Where the simulator sends its reports, and what it signs them with.
#[derive(Clone)]
pub struct Endpoint {
    /// `{public URL}/api/webhooks/call-status`.
    pub url: String,
    /// The platform's signing secret (each call signs with a key derived from it).
    pub secret: SecretString,
}

pub struct Simulator {
    client: reqwest::Client,
    endpoint: Endpoint,
    clock: Arc<dyn Clock>,
    timing: Timing,
}

impl Simulator {
    pub fn new(endpoint: Endpoint, clock: Arc<dyn Clock>, timing: Timing) -> Self {
        Self {
            client: reqwest::Client::new(),
            endpoint,
            clock,
            timing,
        }
    }
}

/// The events a simulated call reports, in order, with the pause before each.
pub fn events(
    call: &CallRequest,
    script: Script,
    timing: Timing,
    clock: &dyn Clock,
) -> Vec<(StdDuration, CallStatusBody)> {
    let event = |event_type, outcome, reason: Option<&str>| CallStatusBody {
        reminder_id: call.reminder_id,
        attempt_id: Some(call.attempt_id),
        event_type,
        outcome,
        reason: reason.map(str::to_owned),
    };
    let unanswered = |response| OutcomeBody {
        connected: false,
        customer_response: Some(response),
        ..OutcomeBody::default()
    };
    match script {
        Script::Conversation(response) => {
            let now = clock.now();
            let talk = timing.talk;
            let mut outcome = OutcomeBody {
                connected: true,
                duration: Some(u32::try_from(talk.as_secs()).unwrap_or(u32::MAX).max(1)),
                customer_response: Some(response),
                notes: Some(format!(
                    "Simulated call about invoice {}.",
                    call.context.invoice_number
                )),
                ..OutcomeBody::default()
            };
            match response {
                CustomerResponse::PromiseToPay => {
                    outcome.promised_date = Some((now + Duration::days(7)).date_naive());
                }
                CustomerResponse::Dispute => {
                    outcome.dispute_reason = Some(
                        "The customer says part of the order arrived damaged (simulated).".into(),
                    );
                }
                CustomerResponse::CallbackRequested => {
                    outcome.callback_at = Some(now + Duration::hours(2));
                }
                _ => {}
            }
            vec![
                (timing.ring, event(EventType::CallAnswered, None, None)),
                (talk, event(EventType::CallCompleted, Some(outcome), None)),
            ]
        }
        Script::NoAnswer => vec![(
            timing.ring,
            event(
                EventType::CallCompleted,
                Some(unanswered(CustomerResponse::NoAnswer)),
                None,
            ),
        )],
        Script::Busy => vec![(
            timing.ring,
            event(EventType::CallFailed, None, Some("busy")),
        )],
        Script::LineFailure => vec![(
            timing.ring,
            event(
                EventType::CallFailed,
                None,
                Some("The line dropped (simulated)."),
            ),
        )],
        Script::Silent => Vec::new(),
    }
}

#[async_trait::async_trait]
impl CallProvider for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    async fn place(&self, call: &CallRequest) -> Result<Placed, PlaceError> {
        let script = script_for(call.attempt_id);
        let events = events(call, script, self.timing, self.clock.as_ref());
        let (client, endpoint, clock) = (
            self.client.clone(),
            self.endpoint.clone(),
            self.clock.clone(),
        );
        let (reminder_id, attempt_id) = (call.reminder_id, call.attempt_id);
        // Like a real agent, it signs with the call's own key, good for this call only.
        let secret = derive_attempt_secret(&self.endpoint.secret, attempt_id).map_err(|err| {
            PlaceError::Failed {
                reason: format!("The call's signing key could not be made: {err}"),
                retry: false,
            }
        })?;
        tokio::spawn(async move {
            for (pause, event) in events {
                tokio::time::sleep(pause).await;
                let id = format!("sim_{attempt_id}_{}", event.event_type.as_str());
                let now = || clock.now().timestamp();
                let url = format!("{}?attempt={attempt_id}", endpoint.url);
                if let Err(err) = sender::send(&client, &url, &secret, &id, now, &event).await {
                    tracing::warn!(reminder_id, attempt_id, error = %err, "simulated report not delivered");
                    return;
                }
            }
        });
        Ok(Placed {
            reference: format!("sim-{attempt_id}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_covers_every_fate() {
        let mut seen = std::collections::HashMap::new();
        for id in 1..=1_000 {
            *seen.entry(format!("{:?}", script_for(id))).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 9, "{seen:?}");
        let silent = seen["Silent"];
        assert!((20..=100).contains(&silent), "{silent} silent of 1000");
    }
}
