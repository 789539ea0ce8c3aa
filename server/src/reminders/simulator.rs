//! The call simulator: the call provider when no telephony is configured, and the demo's.
//! It "places" each call and, after believable delays, reports what happened — answered and
//! a promise, already paid, a dispute, no answer, busy, a failed line, or an agent that goes
//! silent so the timeout path runs. The outcome follows from the attempt id, so a run can be
//! repeated.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use app::db::Db;
use app::reminders::dispatch::{self, CallEvent, CallRequest};
use app::reminders::store::Actor;

use super::{CallProvider, Clock, PlaceError, Placed};

/// How a simulated call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Conversation(&'static str),
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
        0..=24 => Script::Conversation("will_pay_today"),
        25..=44 => Script::Conversation("promise_to_pay"),
        45..=51 => Script::Conversation("already_paid"),
        52..=56 => Script::Conversation("dispute"),
        57..=59 => Script::Conversation("callback_requested"),
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

pub struct Simulator {
    db: Db,
    clock: Arc<dyn Clock>,
    timing: Timing,
}

impl Simulator {
    pub fn new(db: Db, clock: Arc<dyn Clock>, timing: Timing) -> Self {
        Self { db, clock, timing }
    }
}

#[async_trait::async_trait]
impl CallProvider for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    async fn place(&self, call: &CallRequest) -> Result<Placed, PlaceError> {
        let script = script_for(call.attempt_id);
        let (db, clock, timing) = (self.db.clone(), self.clock.clone(), self.timing);
        let call = call.clone();
        tokio::spawn(async move {
            let report = |event: CallEvent| {
                let (db, clock) = (db.clone(), clock.clone());
                async move {
                    if let Err(err) = dispatch::report(
                        &db,
                        call.org_id,
                        call.reminder_id,
                        event,
                        &Actor::Webhook,
                        clock.now(),
                    )
                    .await
                    {
                        tracing::warn!(reminder_id = call.reminder_id, error = %err, "simulated report not applied");
                    }
                }
            };
            tokio::time::sleep(timing.ring).await;
            match script {
                Script::Conversation(outcome) => {
                    report(CallEvent::Answered).await;
                    tokio::time::sleep(timing.talk).await;
                    report(CallEvent::Completed {
                        outcome: outcome.to_owned(),
                    })
                    .await;
                }
                Script::NoAnswer => report(CallEvent::NoAnswer).await,
                Script::Busy => report(CallEvent::Busy).await,
                Script::LineFailure => {
                    report(CallEvent::Failed {
                        reason: "The line dropped (simulated).".into(),
                        retry: true,
                    })
                    .await;
                }
                Script::Silent => {}
            }
        });
        Ok(Placed {
            reference: format!("sim-{}", call.attempt_id),
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
