//! What the reminder pages ask for and get back: the dry-run calendar and the reminders list,
//! shared by the server and the browser.

use serde::{Deserialize, Serialize};

/// Days the dry-run calendar looks ahead by default, and at most.
pub const CALENDAR_DAYS: u32 = 14;
pub const CALENDAR_MAX_DAYS: u32 = 60;
/// Calls listed per day, and invoices per reason, on the page (the counts are complete).
pub const CALENDAR_LIST_LIMIT: usize = 100;

/// A call the engine would place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCall {
    /// Unix milliseconds (UTC).
    pub at: i64,
    /// In the debtor's time zone, e.g. "Mon 2 Mar 09:00 EST".
    pub debtor_time: String,
    /// In the organization's time zone.
    pub org_time: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub invoice_id: i64,
    pub invoice_number: String,
    pub amount: String,
    /// The sequence step, e.g. "7 days after the due date".
    pub step: String,
    /// Why the call is not at the step's first opening (a hold), if it is not.
    pub note: String,
}

/// One day of the calendar (the organization's local date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// e.g. "Monday 2 March".
    pub label: String,
    pub total: usize,
    /// The first [`CALENDAR_LIST_LIMIT`] calls, in time order.
    pub calls: Vec<PlannedCall>,
}

/// An invoice that would not be called in the period, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCalled {
    pub customer_id: i64,
    pub customer_name: String,
    pub invoice_id: i64,
    pub invoice_number: String,
    pub amount: String,
    pub reason: String,
}

/// Invoices not called for one kind of reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonGroup {
    /// e.g. "opted_out", "outside_window", "no_phone".
    pub kind: String,
    pub label: String,
    pub total: usize,
    /// The first [`CALENDAR_LIST_LIMIT`] invoices.
    pub invoices: Vec<NotCalled>,
}

/// Who would be called when over the next days, and who would not and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub days_ahead: u32,
    pub calls_enabled: bool,
    pub timezone: String,
    pub total_calls: usize,
    pub open_invoices: usize,
    pub days: Vec<CalendarDay>,
    pub not_called: Vec<ReasonGroup>,
}

/// The kinds of reasons, in the order the page lists them, with their headings.
pub const REASON_KINDS: [(&str, &str); 13] = [
    ("paid", "Paid or settled"),
    ("disputed", "Disputed"),
    ("opted_out", "Opted out"),
    ("below_minimum", "Below the minimum balance"),
    ("no_phone", "No phone number"),
    ("invalid_phone", "Invalid phone number"),
    ("unknown_zone", "Local time unknown"),
    ("window_closed", "Calling window never opens"),
    ("attempts_used", "All attempts made"),
    ("held", "Held by the 7-day calling limits"),
    ("in_call", "Call under way"),
    ("later", "Next step after this period"),
    ("sequence_done", "Reminder sequence finished"),
];

/// A reason's kind, from its words (the engine's reasons are fixed sentences).
pub fn reason_kind(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("is paid")
        || r.contains("is void")
        || r.contains("nothing is owed")
        || r.contains("draft")
    {
        "paid"
    } else if r.contains("disputed") {
        "disputed"
    } else if r.contains("opted out") {
        "opted_out"
    } else if r.contains("below the minimum") {
        "below_minimum"
    } else if r.contains("no phone number") {
        "no_phone"
    } else if r.contains("phone number is not valid") {
        "invalid_phone"
    } else if r.contains("time zone") || r.contains("country") || r.contains("local time") {
        "unknown_zone"
    } else if r.contains("calling window does not open") {
        "window_closed"
    } else if r.contains("in the last 7 days") || r.contains("less than 7 days ago") {
        "held"
    } else if r.contains("attempts") {
        "attempts_used"
    } else if r.contains("under way") {
        "in_call"
    } else if r.contains("sequence") {
        "sequence_done"
    } else {
        "later"
    }
}

/// Reminders per page of the list.
pub const REMINDER_PAGE_SIZE: usize = 50;

/// The reminders list's filter and position (the page's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReminderFilter {
    /// A status, `open` (pending, in progress, processing, failed, paused), or empty for all.
    pub status: String,
    /// Opaque position after which the page starts.
    pub after: Option<String>,
}

/// The statuses a reminder can be in, with their labels, for filters and badges.
pub const STATUSES: [(&str, &str); 8] = [
    ("pending", "Pending"),
    ("in_progress", "Dialling"),
    ("processing", "In conversation"),
    ("completed", "Completed"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
    ("cancelled", "Cancelled"),
    ("paused", "Paused"),
];

pub fn status_label(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("Unknown", |(_, label)| label)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderRow {
    pub id: i64,
    pub status: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub invoice_id: i64,
    pub invoice_number: String,
    pub amount: String,
    /// e.g. "7 days after the due date".
    pub step: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The next attempt (pending) or when it was due, on the debtor's clock and the
    /// organization's; empty when the debtor's zone is unknown.
    pub next_debtor: String,
    pub next_org: String,
    /// The last skip, failure or cancellation reason.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderPage {
    pub rows: Vec<ReminderRow>,
    /// The position of the next page, if there is one.
    pub next: Option<String>,
    /// Reminders per status (all of the organization's).
    pub counts: Vec<(String, i64)>,
    pub calls_enabled: bool,
}

/// One entry of a reminder's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// In the organization's time zone.
    pub at: String,
    pub transition: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    /// Who or what: "Scheduler", "Ana Lopez", "Call report", "Generator".
    pub actor: String,
}

/// One call attempt of a reminder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub id: i64,
    pub attempt_no: i64,
    pub dialled_at: String,
    pub phone: String,
    pub status: String,
    pub outcome: String,
    pub reason: String,
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderDetail {
    pub row: ReminderRow,
    pub history: Vec<HistoryEntry>,
    pub attempts: Vec<AttemptView>,
    /// The actions the reminder's state allows.
    pub actions: Vec<String>,
    /// Every call-status report received about the reminder.
    pub deliveries: Vec<crate::calls::views::DeliveryView>,
}

/// What a person can do to a reminder, with button labels.
pub const ACTIONS: [(&str, &str); 6] = [
    ("call_now", "Call now"),
    ("pause", "Pause"),
    ("resume", "Resume"),
    ("cancel", "Cancel"),
    ("dispute", "Mark disputed"),
    ("opt_out", "Opt the customer out"),
];
