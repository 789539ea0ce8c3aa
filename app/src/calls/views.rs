//! What the calls pages ask for and get back, shared by the server and the browser: the calls
//! list and its filter, a call's detail and timeline, the "needs a human" queue and the
//! dashboard's call figures.

use serde::{Deserialize, Serialize};

/// Calls per page of the list.
pub const CALL_PAGE_SIZE: usize = 50;

/// The outcomes the list filters by, with their labels. `live` is any call under way.
pub const OUTCOMES: [(&str, &str); 13] = [
    ("live", "Under way"),
    ("will_pay_today", "Will pay today"),
    ("promise_to_pay", "Promise to pay"),
    ("already_paid", "Says already paid"),
    ("dispute", "Dispute"),
    ("callback_requested", "Callback requested"),
    ("wrong_number", "Wrong number"),
    ("opt_out", "Opted out"),
    ("voicemail", "Voicemail"),
    ("no_answer", "No answer"),
    ("busy", "Busy"),
    ("failed", "Failed"),
    ("timed_out", "Timed out"),
];

pub fn outcome_label(outcome: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or("Completed", |(_, label)| label)
}

/// An attempt's status, as people say it.
pub fn call_status_label(status: &str) -> &'static str {
    match status {
        "dialling" => "Ringing",
        "answered" => "In conversation",
        "completed" => "Completed",
        "no_answer" => "No answer",
        "failed" => "Failed",
        "timed_out" => "Timed out",
        _ => "Unknown",
    }
}

/// The calls list's filter and position (the page's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallFilter {
    /// One of [`OUTCOMES`], or empty for every call.
    pub outcome: String,
    /// `YYYY-MM-DD`, in the organization's time zone; either may be empty.
    pub from: String,
    pub to: String,
    /// A customer's id, or empty.
    pub customer: String,
    /// Opaque position after which the page starts.
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRow {
    pub id: i64,
    pub reminder_id: i64,
    pub attempt_no: i64,
    pub customer_id: i64,
    pub customer_name: String,
    pub invoice_id: i64,
    pub invoice_number: String,
    /// The balance when the call was placed.
    pub amount: String,
    /// dialling, answered, completed, no_answer, failed, timed_out.
    pub status: String,
    /// What the customer said (a response name), or how the call ended ("busy", "failed"…).
    pub outcome: String,
    /// When it was placed, in the organization's time zone.
    pub placed: String,
    /// "1 min 35 s", or empty.
    pub duration: String,
    /// Whether the call simulator placed it (nothing was dialled).
    pub simulated: bool,
    /// The promised date, if a promise was made.
    pub promised_date: String,
}

impl CallRow {
    pub fn is_live(&self) -> bool {
        matches!(self.status.as_str(), "dialling" | "answered")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPage {
    pub rows: Vec<CallRow>,
    pub next: Option<String>,
    /// Calls under way now (all of the organization's).
    pub live: i64,
    /// The customer the list is limited to, by name.
    pub customer_name: Option<String>,
}

/// One moment of a call's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// In the organization's time zone, with seconds.
    pub at: String,
    pub title: String,
    pub detail: String,
}

/// A webhook delivery about a call or reminder, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub received: String,
    pub source: String,
    pub event_type: String,
    pub status_code: i64,
    pub result: String,
    pub deliveries: i64,
    /// Pretty JSON.
    pub headers: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDetail {
    pub row: CallRow,
    pub phone: String,
    pub reason: String,
    pub notes: String,
    pub callback_at: String,
    pub opening: String,
    pub script: String,
    pub language: String,
    pub provider: String,
    pub provider_ref: String,
    pub timeline: Vec<TimelineEntry>,
    pub deliveries: Vec<DeliveryView>,
}

/// An invoice waiting for a person: a dispute, or a customer saying it is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub invoice_id: i64,
    pub invoice_number: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub amount: String,
    /// `dispute` or `paid_claim`.
    pub kind: String,
    pub note: String,
    pub since: String,
    /// The call it came from, if known.
    pub call_id: Option<i64>,
}

/// What a person can do with a queue item, per kind, with button labels.
pub const REVIEW_ACTIONS: [(&str, &str, &str); 4] = [
    ("dispute", "settled", "Settled — call again"),
    ("dispute", "upheld", "Stop calling"),
    ("paid_claim", "confirmed", "Payment confirmed"),
    ("paid_claim", "not_paid", "Not paid — call again"),
];

/// The dashboard's call figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallKpis {
    pub calls_today: i64,
    pub live: i64,
    /// Connected ÷ finished calls over the last 30 days, in whole percent; `None` without calls.
    pub connection_rate: Option<i64>,
    /// Promises (to pay today or by a date) in the last 30 days.
    pub promises: i64,
    /// What those promises cover, in the organization's main currency.
    pub promised_amount: String,
    /// Payments that arrived within 7 days of a conversation, over the last 30 days.
    pub paid_after_calls: String,
    /// Invoices waiting for a person.
    pub needs_human: i64,
    /// Promises whose date passed with the invoice still unpaid.
    pub broken_promises: i64,
}

/// A change the live feed reports: which reminder and call moved, and to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveChange {
    pub id: i64,
    pub reminder_id: i64,
    pub attempt_id: Option<i64>,
    pub transition: String,
    pub status: String,
}

/// "1 min 35 s" for a number of seconds.
pub fn duration_label(seconds: Option<i64>) -> String {
    match seconds {
        None => String::new(),
        Some(s) if s < 60 => format!("{s} s"),
        Some(s) => format!("{} min {} s", s / 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_label(None), "");
        assert_eq!(duration_label(Some(42)), "42 s");
        assert_eq!(duration_label(Some(95)), "1 min 35 s");
    }

    #[test]
    fn every_outcome_has_a_label() {
        for (outcome, label) in OUTCOMES {
            assert_eq!(outcome_label(outcome), label);
        }
        assert_eq!(outcome_label(""), "Completed");
    }
}
