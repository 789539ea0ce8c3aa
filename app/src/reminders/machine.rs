//! A reminder's life, in one place: its statuses, every transition by name, and the checks
//! that reject the illegal ones. The store applies a transition only through [`Reminder::apply`]
//! and appends the returned [`Change`] to the reminder's history, so the history always
//! replays to the current state.
//!
//! ```text
//!            claim            dial             answered          completed
//! pending ─────────▶ in_progress ──▶ (dialled) ─────────▶ processing ─────────▶ completed
//!    ▲  ▲               │  skip(until)     │ no_answer / failed / timed_out
//!    │  └───────────────┘                  ▼
//!    │        retry                      failed ──(attempts left)──▶ pending
//!    └──── resume ── paused ◀── pause ── pending / failed
//! skip (no retry) → skipped; cancel → cancelled. completed, skipped, cancelled are final.
//! ```
//!
//! The attempt is written down (`dial`) before the call is placed: after a crash, a claimed
//! reminder that was never dialled goes back to pending; one that was dialled, whose fate is
//! unknown, times out to failed and is never dialled again silently.

use chrono::{DateTime, Utc};

use super::rules::{Attempt, frequency_check};

/// Where a reminder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pending,
    InProgress,
    Processing,
    Completed,
    Failed,
    Skipped,
    Cancelled,
    Paused,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Self::Pending,
        Self::InProgress,
        Self::Processing,
        Self::Completed,
        Self::Failed,
        Self::Skipped,
        Self::Cancelled,
        Self::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::Paused => "paused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No transition leaves a final status.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped | Self::Cancelled)
    }
}

/// The reason recorded when an agent never reports on a call.
pub const TIMEOUT_REASON: &str = "Call timeout - no agent response";

/// Everything that can happen to a reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Taken by a scheduler for dialling.
    Claim,
    /// The attempt is written down; the call is placed right after.
    Dial,
    /// Pre-call verification said no: back to pending until `until`, or for good.
    Skip {
        reason: String,
        until: Option<DateTime<Utc>>,
    },
    /// The debtor picked up.
    Answered,
    /// The call ended in a conversation.
    Completed {
        outcome: String,
    },
    /// Nobody answered (or busy): try again at `next_at`.
    NoAnswer {
        next_at: DateTime<Utc>,
    },
    /// The call could not be placed or broke off.
    CallFailed {
        reason: String,
    },
    /// The agent stayed silent past the timeout.
    TimedOut,
    /// A failed reminder with attempts left is tried again at `at`.
    Retry {
        at: DateTime<Utc>,
    },
    /// A claim that was never dialled is given back (its scheduler stopped).
    Release,
    Pause,
    Resume,
    /// Paid, voided, disputed, opted out, or cancelled by a person.
    Cancel {
        reason: String,
    },
}

impl Transition {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Dial => "dial",
            Self::Skip { .. } => "skip",
            Self::Answered => "answered",
            Self::Completed { .. } => "completed",
            Self::NoAnswer { .. } => "no_answer",
            Self::CallFailed { .. } => "call_failed",
            Self::TimedOut => "timed_out",
            Self::Retry { .. } => "retry",
            Self::Release => "release",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel { .. } => "cancel",
        }
    }

    fn reason(&self) -> String {
        match self {
            Self::Skip { reason, .. } | Self::CallFailed { reason } | Self::Cancel { reason } => {
                reason.clone()
            }
            Self::Completed { outcome } => outcome.clone(),
            Self::TimedOut => TIMEOUT_REASON.to_owned(),
            _ => String::new(),
        }
    }
}

/// A refused transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a {transition} cannot happen to a reminder that is {from}")]
    Illegal {
        transition: &'static str,
        from: &'static str,
    },
    #[error("all {max} attempts have been made")]
    AttemptsUsed { max: u32 },
    #[error("the calling frequency rules hold calls until {until}")]
    Frequency { until: DateTime<Utc> },
}

/// One recorded transition: the history's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub transition: Transition,
    pub from: Status,
    pub to: Status,
    pub reason: String,
}

/// The part of a reminder the machine decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub status: Status,
    /// Attempts dialled so far.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Whether the current claim has been dialled.
    pub dialled: bool,
    /// When the next attempt is due (pending).
    pub due_at: DateTime<Utc>,
    /// Calls about the invoice (every reminder of it), for the frequency rules.
    pub calls: Vec<Attempt>,
}

impl Reminder {
    pub fn new(due_at: DateTime<Utc>, max_attempts: u32) -> Self {
        Self {
            status: Status::Pending,
            attempts: 0,
            max_attempts,
            dialled: false,
            due_at,
            calls: Vec::new(),
        }
    }

    /// Applies `transition` at `now`, or refuses it and changes nothing.
    pub fn apply(&mut self, transition: Transition, now: DateTime<Utc>) -> Result<Change, Refused> {
        use Status::*;
        let from = self.status;
        let illegal = || Refused::Illegal {
            transition: transition.name(),
            from: from.as_str(),
        };
        let to =
            match (&transition, from) {
                (Transition::Claim, Pending) => {
                    if self.attempts >= self.max_attempts {
                        return Err(Refused::AttemptsUsed {
                            max: self.max_attempts,
                        });
                    }
                    InProgress
                }
                (Transition::Dial, InProgress) if !self.dialled => {
                    if self.attempts >= self.max_attempts {
                        return Err(Refused::AttemptsUsed {
                            max: self.max_attempts,
                        });
                    }
                    frequency_check(&self.calls, now).map_err(|held| Refused::Frequency {
                        until: held.until(),
                    })?;
                    InProgress
                }
                (Transition::Skip { until, .. }, InProgress) if !self.dialled => {
                    if until.is_some() { Pending } else { Skipped }
                }
                (Transition::Release, InProgress) if !self.dialled => Pending,
                (Transition::Answered, InProgress) if self.dialled => Processing,
                (Transition::Completed { .. }, Processing) => Completed,
                // After the last attempt there is nothing to wait for.
                (Transition::NoAnswer { .. }, InProgress | Processing) if self.dialled => {
                    if self.attempts < self.max_attempts {
                        Pending
                    } else {
                        Failed
                    }
                }
                (Transition::CallFailed { .. } | Transition::TimedOut, InProgress | Processing)
                    if self.dialled =>
                {
                    Failed
                }
                (Transition::Retry { .. }, Failed) => {
                    if self.attempts >= self.max_attempts {
                        return Err(Refused::AttemptsUsed {
                            max: self.max_attempts,
                        });
                    }
                    Pending
                }
                (Transition::Pause, Pending | Failed) => Paused,
                (Transition::Resume, Paused) => Pending,
                (Transition::Cancel { .. }, Pending | Failed | Paused) => Cancelled,
                (Transition::Cancel { .. }, InProgress) if !self.dialled => Cancelled,
                _ => return Err(illegal()),
            };
        // The effects, once the transition is known to be legal.
        match &transition {
            Transition::Dial => {
                self.attempts += 1;
                self.dialled = true;
                self.calls.push(Attempt {
                    at: now,
                    conversation: false,
                });
            }
            Transition::Answered => {
                if let Some(call) = self.calls.last_mut() {
                    call.conversation = true;
                }
            }
            Transition::Skip {
                until: Some(at), ..
            } => self.due_at = *at,
            Transition::NoAnswer { next_at } => self.due_at = *next_at,
            Transition::Retry { at } => self.due_at = *at,
            Transition::Resume | Transition::Release => self.due_at = self.due_at.max(now),
            _ => {}
        }
        if to != InProgress && to != Processing {
            self.dialled = false;
        }
        self.status = to;
        Ok(Change {
            at: now,
            reason: transition.reason(),
            transition,
            from,
            to,
        })
    }

    /// The state `history` leads to from a new reminder (what the stored row must equal).
    pub fn replay(
        due_at: DateTime<Utc>,
        max_attempts: u32,
        history: &[Change],
    ) -> Result<Self, Refused> {
        let mut reminder = Self::new(due_at, max_attempts);
        for change in history {
            reminder.apply(change.transition.clone(), change.at)?;
        }
        Ok(reminder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::rules::{MAX_ATTEMPTS_PER_WEEK, WEEK};
    use chrono::Duration;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_call_that_connects_completes() {
        let mut r = Reminder::new(t0(), 3);
        let steps = [
            Transition::Claim,
            Transition::Dial,
            Transition::Answered,
            Transition::Completed {
                outcome: "will pay today".into(),
            },
        ];
        let history: Vec<Change> = steps
            .into_iter()
            .map(|step| r.apply(step, t0()).unwrap())
            .collect();
        assert_eq!(r.status, Status::Completed);
        assert_eq!(r.attempts, 1);
        assert_eq!(
            Reminder::apply(&mut r.clone(), Transition::Claim, t0()),
            Err(Refused::Illegal {
                transition: "claim",
                from: "completed"
            })
        );
        assert_eq!(Reminder::replay(t0(), 3, &history).unwrap(), r);
    }

    #[test]
    fn a_silent_agent_times_out_to_failed_and_is_never_redialled_silently() {
        let mut r = Reminder::new(t0(), 3);
        r.apply(Transition::Claim, t0()).unwrap();
        r.apply(Transition::Dial, t0()).unwrap();
        // Its claim cannot be given back: the call may have been placed.
        assert!(r.apply(Transition::Release, t0()).is_err());
        assert!(
            r.apply(Transition::Dial, t0()).is_err(),
            "one dial per claim"
        );
        let change = r.apply(Transition::TimedOut, t0()).unwrap();
        assert_eq!(
            (change.to, change.reason.as_str()),
            (Status::Failed, TIMEOUT_REASON)
        );
        // A person (or the engine, attempts permitting) retries it explicitly.
        r.apply(Transition::Retry { at: t0() }, t0()).unwrap();
        assert_eq!(r.status, Status::Pending);
    }

    #[test]
    fn attempts_and_skips() {
        let mut r = Reminder::new(t0(), 1);
        r.apply(Transition::Claim, t0()).unwrap();
        // Outside the window: back to pending, no attempt used.
        let later = t0() + Duration::hours(3);
        r.apply(
            Transition::Skip {
                reason: "outside calling hours".into(),
                until: Some(later),
            },
            t0(),
        )
        .unwrap();
        assert_eq!(
            (r.status, r.attempts, r.due_at),
            (Status::Pending, 0, later)
        );
        r.apply(Transition::Claim, later).unwrap();
        r.apply(Transition::Dial, later).unwrap();
        r.apply(
            Transition::NoAnswer {
                next_at: later + Duration::days(1),
            },
            later,
        )
        .unwrap();
        // That was the only attempt: failed, and no retry.
        assert_eq!(r.status, Status::Failed);
        assert_eq!(
            r.apply(Transition::Retry { at: later }, later),
            Err(Refused::AttemptsUsed { max: 1 })
        );
        // Paid meanwhile: cancelled.
        r.apply(
            Transition::Cancel {
                reason: "invoice paid".into(),
            },
            later,
        )
        .unwrap();
        assert!(r.status.is_final());
    }

    /// Any transition with any parameters, to throw at the machine.
    fn transition() -> impl Strategy<Value = Transition> {
        let at = (0i64..21 * 24 * 60).prop_map(|m| t0() + Duration::minutes(m));
        prop_oneof![
            Just(Transition::Claim),
            Just(Transition::Claim),
            Just(Transition::Dial),
            Just(Transition::Dial),
            (prop::option::of(at.clone())).prop_map(|until| Transition::Skip {
                reason: "check".into(),
                until
            }),
            Just(Transition::Answered),
            Just(Transition::Completed {
                outcome: "promise".into()
            }),
            at.clone()
                .prop_map(|next_at| Transition::NoAnswer { next_at }),
            Just(Transition::CallFailed {
                reason: "busy".into()
            }),
            Just(Transition::TimedOut),
            at.prop_map(|at| Transition::Retry { at }),
            Just(Transition::Release),
            Just(Transition::Pause),
            Just(Transition::Resume),
            Just(Transition::Cancel {
                reason: "paid".into()
            }),
        ]
    }

    proptest! {
        #[test]
        fn random_event_sequences_keep_every_invariant(
            events in prop::collection::vec((transition(), 1i64..6 * 60), 0..80),
            max_attempts in 1u32..12,
        ) {
            let mut r = Reminder::new(t0(), max_attempts);
            let mut now = t0();
            let mut history = Vec::new();
            for (transition, step) in events {
                now += Duration::minutes(step);
                let before = r.clone();
                match r.apply(transition, now) {
                    Ok(change) => {
                        prop_assert!(!before.status.is_final(), "left final {:?}", before.status);
                        prop_assert_eq!(change.from, before.status);
                        prop_assert_eq!(change.to, r.status);
                        history.push(change);
                    }
                    Err(_) => prop_assert_eq!(&r, &before, "a refusal changes nothing"),
                }
                prop_assert!(r.attempts <= r.max_attempts);
                prop_assert_eq!(r.attempts as usize, r.calls.len());
                // The frequency rules hold at every dial.
                if let Some(last) = history.last()
                    && last.transition == Transition::Dial
                {
                    let dial = last.at;
                    let earlier = &r.calls[..r.calls.len() - 1];
                    let in_week = earlier.iter().filter(|c| c.at <= dial && dial < c.at + WEEK).count();
                    prop_assert!(in_week < MAX_ATTEMPTS_PER_WEEK);
                    prop_assert!(!earlier.iter().any(|c| c.conversation && dial < c.at + WEEK));
                }
            }
            prop_assert_eq!(Reminder::replay(t0(), max_attempts, &history).unwrap(), r);
        }
    }
}
