//! The call-status report a voice agent posts to `/api/webhooks/call-status`: its wire format
//! (shared by the server, the call simulator, `duecall send-test-event` and agent builders in
//! Rust) and its validation into a [`CallReport`] that cannot be half-valid.
//!
//! ```json
//! {"reminder_id": 42, "attempt_id": 7, "event_type": "call_completed",
//!  "outcome": {"connected": true, "duration": 94, "customer_response": "promise_to_pay",
//!              "promised_date": "2026-12-04", "notes": "Paying after their client pays them."}}
//! ```
//!
//! `attempt_id` is optional (agents built for the original format send only the reminder);
//! it is in the metadata every dispatched agent receives.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The longest notes kept from one call.
pub const MAX_NOTES: usize = 2_000;
/// The longest call believed (a longer duration is refused as a bad report).
pub const MAX_DURATION_SECONDS: u32 = 4 * 3600;
/// How far ahead a promise or a callback may be.
pub const MAX_AHEAD_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    CallAnswered,
    CallCompleted,
    CallFailed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallAnswered => "call_answered",
            Self::CallCompleted => "call_completed",
            Self::CallFailed => "call_failed",
        }
    }
}

/// What the customer said, as the agent classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerResponse {
    WillPayToday,
    PromiseToPay,
    AlreadyPaid,
    Dispute,
    CallbackRequested,
    WrongNumber,
    OptOut,
    NoAnswer,
    Voicemail,
}

impl CustomerResponse {
    pub const ALL: [Self; 9] = [
        Self::WillPayToday,
        Self::PromiseToPay,
        Self::AlreadyPaid,
        Self::Dispute,
        Self::CallbackRequested,
        Self::WrongNumber,
        Self::OptOut,
        Self::NoAnswer,
        Self::Voicemail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WillPayToday => "will_pay_today",
            Self::PromiseToPay => "promise_to_pay",
            Self::AlreadyPaid => "already_paid",
            Self::Dispute => "dispute",
            Self::CallbackRequested => "callback_requested",
            Self::WrongNumber => "wrong_number",
            Self::OptOut => "opt_out",
            Self::NoAnswer => "no_answer",
            Self::Voicemail => "voicemail",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether the debtor was spoken to (a conversation holds calls about the debt for 7 days).
    pub fn is_conversation(self) -> bool {
        !matches!(self, Self::NoAnswer | Self::Voicemail | Self::WrongNumber)
    }
}

/// The body as sent. Unknown fields are ignored so agents can add their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStatusBody {
    #[serde(deserialize_with = "id_from_number_or_text")]
    pub reminder_id: i64,
    #[serde(
        default,
        deserialize_with = "optional_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt_id: Option<i64>,
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeBody>,
    /// Why a call failed (`call_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeBody {
    #[serde(default)]
    pub connected: bool,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_response: Option<CustomerResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// `promise_to_pay`: the date the customer promised (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_date: Option<NaiveDate>,
    /// `dispute`: what the customer disputes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_reason: Option<String>,
    /// `callback_requested`: when (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_at: Option<DateTime<Utc>>,
}

fn id_from_number_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    match Id::deserialize(deserializer)? {
        Id::Number(n) if n > 0 => Ok(n),
        Id::Text(text) => match text.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(serde::de::Error::custom("an id is a positive whole number")),
        },
        Id::Number(_) => Err(serde::de::Error::custom("an id is a positive whole number")),
    }
}

fn optional_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapper(#[serde(deserialize_with = "id_from_number_or_text")] i64);
    Ok(Option::<Wrapper>::deserialize(deserializer)?.map(|w| w.0))
}

/// A conversation's result, with what each result needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    WillPayToday,
    PromiseToPay {
        date: NaiveDate,
    },
    AlreadyPaid,
    Dispute {
        reason: String,
    },
    CallbackRequested {
        at: DateTime<Utc>,
    },
    WrongNumber,
    OptOut,
    NoAnswer,
    Voicemail,
    /// Connected, nothing classified.
    Unclassified,
}

impl Response {
    /// The stored name (empty when unclassified).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::WillPayToday => "will_pay_today",
            Self::PromiseToPay { .. } => "promise_to_pay",
            Self::AlreadyPaid => "already_paid",
            Self::Dispute { .. } => "dispute",
            Self::CallbackRequested { .. } => "callback_requested",
            Self::WrongNumber => "wrong_number",
            Self::OptOut => "opt_out",
            Self::NoAnswer => "no_answer",
            Self::Voicemail => "voicemail",
            Self::Unclassified => "",
        }
    }

    /// Whether the debtor was spoken to (a wrong number reached somebody else).
    pub fn is_conversation(&self) -> bool {
        !matches!(self, Self::NoAnswer | Self::Voicemail | Self::WrongNumber)
    }

    /// Whether the call reached nobody (it is retried as an unanswered call).
    pub fn unanswered(&self) -> bool {
        matches!(self, Self::NoAnswer | Self::Voicemail)
    }
}

/// A validated report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    pub reminder_id: i64,
    pub attempt_id: Option<i64>,
    pub event: ReportedEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedEvent {
    Answered,
    Completed {
        response: Response,
        duration_seconds: Option<u32>,
        notes: String,
    },
    Failed {
        reason: String,
        /// `no_answer`, `voicemail` or `wrong_number` when the agent knows.
        response: Option<Response>,
    },
}

impl ReportedEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Answered => EventType::CallAnswered,
            Self::Completed { .. } => EventType::CallCompleted,
            Self::Failed { .. } => EventType::CallFailed,
        }
    }
}

/// Why a report was refused (a 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReport(pub String);

fn invalid(text: impl Into<String>) -> InvalidReport {
    InvalidReport(text.into())
}

/// Text from an agent: control characters dropped, trimmed, at most `max` characters.
pub fn clean_text(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    kept.trim()
        .chars()
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

impl CallStatusBody {
    /// Parses a raw body (after its signature was checked).
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidReport> {
        serde_json::from_slice(raw)
            .map_err(|e| invalid(format!("The body is not a valid call-status event: {e}")))
    }

    /// Checks what the event needs; `now` bounds promise dates and callback times.
    pub fn validate(self, now: DateTime<Utc>) -> Result<CallReport, InvalidReport> {
        let outcome = self.outcome.unwrap_or_default();
        let notes = clean_text(outcome.notes.as_deref().unwrap_or_default(), MAX_NOTES);
        if outcome.duration.is_some_and(|d| d > MAX_DURATION_SECONDS) {
            return Err(invalid(format!(
                "duration must be at most {MAX_DURATION_SECONDS} seconds"
            )));
        }
        let latest = now + Duration::days(MAX_AHEAD_DAYS);
        let response = match outcome.customer_response {
            None => None,
            Some(CustomerResponse::WillPayToday) => Some(Response::WillPayToday),
            Some(CustomerResponse::PromiseToPay) => {
                let date = outcome
                    .promised_date
                    .ok_or_else(|| invalid("promise_to_pay needs promised_date (YYYY-MM-DD)"))?;
                // A day of slack: the debtor's today may be the server's yesterday.
                if date < (now - Duration::days(1)).date_naive() || date > latest.date_naive() {
                    return Err(invalid(format!(
                        "promised_date {date} must be from today to {MAX_AHEAD_DAYS} days ahead"
                    )));
                }
                Some(Response::PromiseToPay { date })
            }
            Some(CustomerResponse::AlreadyPaid) => Some(Response::AlreadyPaid),
            Some(CustomerResponse::Dispute) => {
                let reason = clean_text(outcome.dispute_reason.as_deref().unwrap_or_default(), 500);
                if reason.is_empty() {
                    return Err(invalid("dispute needs dispute_reason"));
                }
                Some(Response::Dispute { reason })
            }
            Some(CustomerResponse::CallbackRequested) => {
                let at = outcome
                    .callback_at
                    .ok_or_else(|| invalid("callback_requested needs callback_at (RFC 3339)"))?;
                if at < now - Duration::minutes(5) || at > latest {
                    return Err(invalid(format!(
                        "callback_at {at} must be from now to {MAX_AHEAD_DAYS} days ahead"
                    )));
                }
                Some(Response::CallbackRequested { at })
            }
            Some(CustomerResponse::WrongNumber) => Some(Response::WrongNumber),
            Some(CustomerResponse::OptOut) => Some(Response::OptOut),
            Some(CustomerResponse::NoAnswer) => Some(Response::NoAnswer),
            Some(CustomerResponse::Voicemail) => Some(Response::Voicemail),
        };
        let event = match self.event_type {
            EventType::CallAnswered => ReportedEvent::Answered,
            EventType::CallCompleted => {
                let response = match response {
                    Some(response) => response,
                    None if outcome.connected => Response::Unclassified,
                    None => Response::NoAnswer,
                };
                ReportedEvent::Completed {
                    response,
                    duration_seconds: outcome.duration,
                    notes,
                }
            }
            EventType::CallFailed => {
                if let Some(other) = response.as_ref().filter(|r| {
                    !matches!(
                        r,
                        Response::NoAnswer | Response::Voicemail | Response::WrongNumber
                    )
                }) {
                    return Err(invalid(format!(
                        "call_failed cannot carry the response {}; send call_completed",
                        other.as_str()
                    )));
                }
                let reason = clean_text(self.reason.as_deref().unwrap_or_default(), 500);
                ReportedEvent::Failed {
                    reason: if reason.is_empty() {
                        "The agent reported the call failed.".to_owned()
                    } else {
                        reason
                    },
                    response,
                }
            }
        };
        Ok(CallReport {
            reminder_id: self.reminder_id,
            attempt_id: self.attempt_id,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    fn parse(json: &str) -> Result<CallReport, InvalidReport> {
        CallStatusBody::parse(json.as_bytes())?.validate(now())
    }

    #[test]
    fn the_original_format_still_parses() {
        let report = parse(
            r#"{"reminder_id":"42","event_type":"call_completed",
               "outcome":{"connected":true,"duration":61,"customer_response":"will_pay_today"}}"#,
        )
        .unwrap();
        assert_eq!(report.reminder_id, 42);
        assert_eq!(report.attempt_id, None);
        assert_eq!(
            report.event,
            ReportedEvent::Completed {
                response: Response::WillPayToday,
                duration_seconds: Some(61),
                notes: String::new()
            }
        );
        let answered =
            parse(r#"{"reminder_id":7,"attempt_id":"9","event_type":"call_answered","extra":1}"#)
                .unwrap();
        assert_eq!(
            (answered.attempt_id, answered.event),
            (Some(9), ReportedEvent::Answered)
        );
    }

    #[test]
    fn responses_need_their_details() {
        let body = |outcome: &str| {
            format!(r#"{{"reminder_id":1,"event_type":"call_completed","outcome":{outcome}}}"#)
        };
        assert!(
            parse(&body(
                r#"{"connected":true,"customer_response":"promise_to_pay"}"#
            ))
            .is_err()
        );
        assert!(parse(&body(r#"{"connected":true,"customer_response":"promise_to_pay","promised_date":"2026-11-01"}"#)).is_err(), "in the past");
        assert!(parse(&body(r#"{"connected":true,"customer_response":"promise_to_pay","promised_date":"2028-01-01"}"#)).is_err(), "too far");
        let promise = parse(&body(r#"{"connected":true,"customer_response":"promise_to_pay","promised_date":"2026-12-04"}"#)).unwrap();
        assert!(matches!(
            promise.event,
            ReportedEvent::Completed {
                response: Response::PromiseToPay { .. },
                ..
            }
        ));
        assert!(
            parse(&body(
                r#"{"connected":true,"customer_response":"dispute","dispute_reason":"  "}"#
            ))
            .is_err()
        );
        assert!(
            parse(&body(
                r#"{"connected":true,"customer_response":"callback_requested"}"#
            ))
            .is_err()
        );
        assert!(parse(&body(r#"{"connected":true,"customer_response":"callback_requested","callback_at":"2026-11-22T09:30:00Z"}"#)).is_ok());
        assert!(parse(&body(r#"{"connected":true,"duration":999999}"#)).is_err());
        assert!(
            parse(&body(
                r#"{"connected":true,"customer_response":"sing_a_song"}"#
            ))
            .is_err()
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        for body in [
            "",
            "[]",
            r#"{"event_type":"call_answered"}"#,
            r#"{"reminder_id":-3,"event_type":"call_answered"}"#,
            r#"{"reminder_id":"abc","event_type":"call_answered"}"#,
            r#"{"reminder_id":1,"event_type":"call_exploded"}"#,
            r#"{"reminder_id":1,"event_type":"call_failed","outcome":{"customer_response":"will_pay_today"}}"#,
        ] {
            let err = parse(body).unwrap_err();
            assert!(!err.0.is_empty(), "{body}");
        }
    }

    #[test]
    fn notes_lose_control_characters_and_length() {
        let long = "x".repeat(5000);
        assert_eq!(
            clean_text(&format!("  a\u{0}b\u{7}\n{long}"), 10),
            "ab\nxxxxxxx"
        );
    }

    #[test]
    fn a_completed_call_without_a_response_is_unanswered_unless_connected() {
        let r = parse(
            r#"{"reminder_id":1,"event_type":"call_completed","outcome":{"connected":false}}"#,
        )
        .unwrap();
        assert!(matches!(
            r.event,
            ReportedEvent::Completed {
                response: Response::NoAnswer,
                ..
            }
        ));
        let r = parse(
            r#"{"reminder_id":1,"event_type":"call_completed","outcome":{"connected":true}}"#,
        )
        .unwrap();
        assert!(matches!(
            r.event,
            ReportedEvent::Completed {
                response: Response::Unclassified,
                ..
            }
        ));
        let r = parse(r#"{"reminder_id":1,"event_type":"call_completed"}"#).unwrap();
        assert!(matches!(
            r.event,
            ReportedEvent::Completed {
                response: Response::NoAnswer,
                ..
            }
        ));
    }
}
