//! What Duecall does with a call-status report: the reminder's transition, the attempt's
//! details, and the follow-up each outcome calls for — all in the caller's transaction, so a
//! report and its consequences are stored together or not at all.
//!
//! | response            | follow-up                                                       |
//! |---------------------|-----------------------------------------------------------------|
//! | will_pay_today      | calls wait until tomorrow; then check the invoice and call again |
//! | promise_to_pay      | calls wait until the day after the promised date (a broken promise shows) |
//! | already_paid        | reminders paused; the invoice waits in "needs a human"           |
//! | dispute             | reminders cancelled; the invoice disputed, in "needs a human"    |
//! | callback_requested  | the next call at the requested time, inside the calling rules    |
//! | wrong_number        | the number marked invalid; the customer's reminders cancelled    |
//! | opt_out             | the customer opted out; every reminder of theirs cancelled       |
//! | no_answer/voicemail | retried like an unanswered call                                  |
//!
//! Reports may arrive twice or out of order: a report about an attempt that already moved past
//! it is acknowledged without changing anything (an `answered` after the `completed`), and a
//! report that contradicts what happened is refused (a `completed` after a timeout).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::report::{CallReport, EventType, ReportedEvent, Response};
use crate::db::time::to_millis;
use crate::db::{Conn, Dialect, Script, from_json};
use crate::reminders::dispatch::{self, AttemptDetails, CallEvent, Reported, Reports};
use crate::reminders::machine::Status;
use crate::reminders::profile::BusinessProfile;
use crate::reminders::queries::{OPEN, Scope, cancel_open, pause_open};
use crate::reminders::service::profile_in;
use crate::reminders::store::{Actor, COLUMNS, FOLLOW_UP, Row, TransitionError};
use crate::reminders::verify::{local_day_start, org_zone};

/// A report that was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub org_id: i64,
    pub reminder_id: i64,
    pub attempt_id: i64,
    /// `false` when the report was already known or the call had moved past it.
    pub changed: bool,
    /// What was done, in words (stored with the webhook event).
    pub summary: String,
    /// The reminder's status afterwards.
    pub status: Status,
    /// A note for the invoice in the accounting system, if the outcome deserves one.
    pub write_back: Option<WriteBack>,
}

/// A comment (and promised date) for the invoice in the accounting system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBack {
    pub invoice_id: i64,
    /// Where the invoice came from (`zoho`, `csv`, …): only a connected system's get a note.
    pub invoice_source: String,
    pub description: String,
    pub payment_expected_date: Option<NaiveDate>,
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// 404: no such reminder (for this sender), or no such attempt of it.
    #[error("{0}")]
    NotFound(String),
    /// 409: the report contradicts the reminder's or the call's state.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Anything else that went wrong on our side (already logged).
    #[error("{0}")]
    Internal(String),
    /// A failure after the report had begun to write: the transaction must be rolled back.
    #[error("{0}")]
    Unfinished(Box<ApplyError>),
}

impl From<TransitionError> for ApplyError {
    fn from(err: TransitionError) -> Self {
        match err {
            TransitionError::Db(e) => Self::Db(e),
            TransitionError::NotFound => Self::NotFound("There is no such reminder.".into()),
            other => Self::Conflict(other.to_string()),
        }
    }
}

impl From<crate::error::AppError> for ApplyError {
    fn from(err: crate::error::AppError) -> Self {
        match err {
            crate::error::AppError::Conflict(text) => Self::Conflict(text),
            crate::error::AppError::NotFound => Self::NotFound("There is no such reminder.".into()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The key that makes a report idempotent: one event of each type per attempt.
pub fn event_key(attempt_id: i64, report: &CallReport) -> String {
    format!("{attempt_id}:{}", report.event.event_type().as_str())
}

/// Reports applied in one transaction: what they share (each organization's profile, read
/// once; the events applied so far, whose webhook events are stored at the end), and what they
/// decided and is not yet written. [`Session::apply`] decides each report in memory;
/// [`Session::flush`] writes the lot with one statement per table — a batch of reports costs
/// about one round trip each (to read its facts) and a handful for the batch.
#[derive(Debug, Default)]
pub struct Session {
    profiles: HashMap<i64, BusinessProfile>,
    applied: HashSet<String>,
    pending: Pending,
    /// Each reminder reported on, as it stands with the kept writes.
    known: HashMap<i64, Facts>,
    /// Reminders read ahead ([`Session::prefetch`]), as stored before anything was written.
    fresh: HashMap<i64, Facts>,
    /// Reminders with kept writes, by invoice (a follow-up to be made counts as its reporter's).
    dirty: HashMap<i64, HashSet<i64>>,
}

/// Writes decided and not yet made.
#[derive(Debug, Default)]
struct Pending {
    reports: Reports,
    /// Holds on invoices, the latest per invoice.
    holds: Vec<Hold>,
    follow_ups: Vec<NewFollowUp>,
}

/// Serialized as the statement's JSON row.
#[derive(Debug, serde::Serialize)]
struct Hold {
    org_id: i64,
    #[serde(rename = "id")]
    invoice_id: i64,
    until: i64,
    reason: String,
}

/// A follow-up reminder to insert.
#[derive(Debug)]
struct NewFollowUp {
    org_id: i64,
    invoice_id: i64,
    customer_id: i64,
    offset: i64,
    day: String,
    max_attempts: i64,
    due_at: i64,
    reason: String,
    at: i64,
}

impl Pending {
    /// Holds calls about the invoice until `until` (never shortening a longer hold).
    fn hold(&mut self, facts: &FollowUpFacts, until: DateTime<Utc>, reason: &str) {
        let hold = Hold {
            org_id: facts.org_id,
            invoice_id: facts.invoice_id,
            until: to_millis(until),
            reason: reason.to_owned(),
        };
        match self
            .holds
            .iter_mut()
            .find(|held| held.invoice_id == hold.invoice_id)
        {
            Some(held) if held.until <= hold.until => *held = hold,
            Some(_) => {}
            None => self.holds.push(hold),
        }
    }

    async fn flush(&mut self, tx: &mut Conn) -> Result<(), sqlx::Error> {
        let mut script = Script::new(Dialect::of(tx));
        self.write_into(&mut script);
        script.run(tx).await
    }

    fn write_into(&mut self, script: &mut Script) {
        let dialect = script.dialect();
        self.reports.write_into(script);
        let holds = std::mem::take(&mut self.holds);
        if !holds.is_empty() {
            let sql = format!(
                "WITH v AS ({}) \
                 UPDATE invoices SET hold_until = v.until, hold_reason = v.reason FROM v \
                 WHERE invoices.id = v.id AND invoices.org_id = v.org_id \
                   AND (invoices.hold_until IS NULL OR invoices.hold_until <= v.until)",
                dialect.json_rows(&[
                    ("id", "BIGINT"),
                    ("org_id", "BIGINT"),
                    ("until", "BIGINT"),
                    ("reason", "TEXT"),
                ])
            );
            script.statement(&sql).json(&holds);
        }
        let follow_ups = std::mem::take(&mut self.follow_ups);
        if !follow_ups.is_empty() {
            let sql = format!(
                "WITH v AS ({}) \
                 INSERT INTO reminders (org_id, invoice_id, customer_id, step_offset_days, \
                   step_date, status, max_attempts, due_at, last_reason, kind, created_at, \
                   updated_at) \
                 SELECT org_id, invoice_id, customer_id, step_offset_days, step_date, '{}', \
                   max_attempts, due_at, last_reason, '{FOLLOW_UP}', created_at, created_at FROM v",
                dialect.json_rows(&[
                    ("org_id", "BIGINT"),
                    ("invoice_id", "BIGINT"),
                    ("customer_id", "BIGINT"),
                    ("step_offset_days", "BIGINT"),
                    ("step_date", "TEXT"),
                    ("max_attempts", "BIGINT"),
                    ("due_at", "BIGINT"),
                    ("last_reason", "TEXT"),
                    ("created_at", "BIGINT"),
                ]),
                Status::Pending.as_str(),
            );
            #[derive(serde::Serialize)]
            struct Written<'a> {
                org_id: i64,
                invoice_id: i64,
                customer_id: i64,
                step_offset_days: i64,
                step_date: &'a str,
                max_attempts: i64,
                due_at: i64,
                last_reason: String,
                created_at: i64,
            }
            let rows: Vec<Written> = follow_ups
                .iter()
                .map(|new| Written {
                    org_id: new.org_id,
                    invoice_id: new.invoice_id,
                    customer_id: new.customer_id,
                    step_offset_days: new.offset,
                    step_date: &new.day,
                    max_attempts: new.max_attempts,
                    due_at: new.due_at,
                    last_reason: format!("Follow-up: {}", new.reason),
                    created_at: new.at,
                })
                .collect();
            script.statement(&sql).json(&rows);
        }
    }
}

/// Everything a report is checked against, read in one statement: the reminder,
/// its latest attempt, the invoice's due date and other open reminders, and which events of
/// that attempt were applied already. Read as one JSON array ([`FactsSql`]), in field order:
/// a batch's facts come back as one value, where a row each would be a hand-over each from
/// SQLite's connection thread.
#[derive(serde::Deserialize)]
struct FactsRow {
    row: Row,
    attempt_id: Option<i64>,
    attempt_no: Option<i64>,
    attempt_status: Option<String>,
    dialled_at: Option<i64>,
    due_date: Option<String>,
    invoice_source: Option<String>,
    others_open: i64,
    /// The latest attempt's applied events, one bit each ([`SEEN_BITS`]).
    seen: i64,
}

/// A reminder as a report sees it.
#[derive(Debug, Clone)]
struct Facts {
    row: Row,
    /// The latest attempt: id, number and status.
    latest: Option<(i64, i64, String)>,
    dialled_at: Option<i64>,
    due_date: Option<String>,
    invoice_source: String,
    /// Whether another reminder of the invoice is open.
    others_open: bool,
    /// The latest attempt's events applied before this session.
    seen: Vec<EventType>,
}

impl From<FactsRow> for Facts {
    fn from(read: FactsRow) -> Self {
        let latest = match (read.attempt_id, read.attempt_no, read.attempt_status) {
            (Some(id), Some(no), Some(status)) => Some((id, no, status)),
            _ => None,
        };
        let seen = SEEN_BITS
            .into_iter()
            .filter(|(bit, _)| read.seen & bit != 0)
            .map(|(_, event)| event)
            .collect();
        Self {
            row: read.row,
            latest,
            dialled_at: read.dialled_at,
            due_date: read.due_date,
            invoice_source: read.invoice_source.unwrap_or_default(),
            others_open: read.others_open > 0,
            seen,
        }
    }
}

/// The bit of each event type in [`FactsRow::seen`].
const SEEN_BITS: [(i64, EventType); 3] = [
    (1, EventType::CallAnswered),
    (2, EventType::CallCompleted),
    (4, EventType::CallFailed),
];

/// A reminder's [`FactsRow`] as a JSON array (text), read from [`FACTS_FROM`], and the
/// statement reading one reminder's.
///
/// The applied events are found through the attempt's own deliveries (`attempt_id`, a handful
/// of rows), never through `source`: an index leading with `source` matches every delivery
/// ever received, and PostgreSQL, planning while the table was still small, picked one and
/// filtered all of them for each reminder once it had grown.
struct FactsSql {
    item: String,
    one: String,
}

/// Where [`FactsSql::item`] reads from; the reminder is `r`.
const FACTS_FROM: &str = "FROM reminders r \
     LEFT JOIN invoices i ON i.id = r.invoice_id \
     LEFT JOIN call_attempts a ON a.reminder_id = r.id AND a.attempt_no = \
       (SELECT MAX(attempt_no) FROM call_attempts WHERE reminder_id = r.id)";

fn facts_sql(dialect: Dialect) -> &'static FactsSql {
    static SQLITE: LazyLock<FactsSql> = LazyLock::new(|| FactsSql::new(Dialect::Sqlite));
    static POSTGRES: LazyLock<FactsSql> = LazyLock::new(|| FactsSql::new(Dialect::Postgres));
    match dialect {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &POSTGRES,
    }
}

impl FactsSql {
    fn new(dialect: Dialect) -> Self {
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let seen = SEEN_BITS
            .iter()
            .map(|(bit, event)| {
                format!(
                    "WHEN CAST(a.id AS TEXT) || ':{}' THEN {bit}",
                    event.as_str()
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let item = dialect.json_array_text(&format!(
            "{row}, a.id, a.attempt_no, a.status, a.dialled_at, i.due_date, i.source, \
             (SELECT COUNT(*) FROM reminders o WHERE o.invoice_id = r.invoice_id \
                AND +o.org_id = r.org_id AND o.id <> r.id AND o.status IN {OPEN}), \
             (SELECT COALESCE(SUM(CASE w.event_key {seen} ELSE 0 END), 0) FROM webhook_events w \
                WHERE w.attempt_id = a.id AND w.event_key IS NOT NULL)",
            row = dialect.json_array(&columns),
        ));
        let one = format!("SELECT {item} {FACTS_FROM} WHERE r.id = $1");
        Self { item, one }
    }
}

/// A scalar subquery: the facts of every reminder whose id is in the JSON array bound as
/// argument `$arg`, as one JSON array (text). [`Session::prefetched`] takes its value.
pub fn facts_listed(dialect: Dialect, arg: usize) -> String {
    format!(
        "(SELECT {} {FACTS_FROM} WHERE r.id IN ({}))",
        dialect.json_list(&facts_sql(dialect).item),
        dialect.json_values_at(arg, "BIGINT"),
    )
}

/// Takes the row locks of the reminders `ids` on PostgreSQL, in id order, so that what is read
/// next is read after any transaction that held one has committed (SQLite's write lock, taken
/// by `BEGIN IMMEDIATE`, covers everything).
pub async fn lock_reminders(tx: &mut Conn, ids: &[i64]) -> Result<(), sqlx::Error> {
    let dialect = Dialect::of(tx);
    if dialect != Dialect::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let sql = format!(
        "SELECT id FROM reminders WHERE id IN ({}) ORDER BY id FOR UPDATE",
        dialect.json_values("BIGINT")
    );
    sqlx::query(&sql)
        .bind(serde_json::Value::from(ids).to_string())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The reminder's facts as stored (on PostgreSQL after taking its row lock).
async fn read_facts(tx: &mut Conn, reminder_id: i64) -> Result<Option<Facts>, sqlx::Error> {
    lock_reminders(tx, &[reminder_id]).await?;
    let read: Option<String> = sqlx::query_scalar(&facts_sql(Dialect::of(tx)).one)
        .bind(reminder_id)
        .fetch_optional(&mut *tx)
        .await?;
    read.map(|json| from_json::<FactsRow>(&json).map(Facts::from))
        .transpose()
}

/// A failure after the session began to write: the transaction must be rolled back.
fn unfinished(err: impl Into<ApplyError>) -> ApplyError {
    ApplyError::Unfinished(Box::new(err.into()))
}

impl Session {
    /// A session that starts with organizations' profiles already read, by one that came just
    /// before it on the same connection ([`Session::into_profiles`]).
    pub fn with_profiles(profiles: HashMap<i64, BusinessProfile>) -> Self {
        Self {
            profiles,
            ..Self::default()
        }
    }

    /// The organizations' profiles this session read, for the next one.
    pub fn into_profiles(self) -> HashMap<i64, BusinessProfile> {
        self.profiles
    }

    async fn profile(&mut self, tx: &mut Conn, org_id: i64) -> Result<BusinessProfile, ApplyError> {
        if let Some(profile) = self.profiles.get(&org_id) {
            return Ok(profile.clone());
        }
        let profile = profile_in(tx, org_id).await?;
        self.profiles.insert(org_id, profile.clone());
        Ok(profile)
    }

    /// Writes everything the session's reports decided. Must come before the transaction
    /// commits; [`Session::apply`] flushes on its own whenever a report must read what an
    /// earlier one decided.
    pub async fn flush(&mut self, tx: &mut Conn) -> Result<(), sqlx::Error> {
        let mut script = Script::new(Dialect::of(tx));
        self.write_into(&mut script);
        script.run(tx).await
    }

    /// [`Session::flush`] as statements added to `script`, which the caller runs (with its
    /// own) before anything else in the transaction.
    pub fn write_into(&mut self, script: &mut Script) {
        self.pending.write_into(script);
        self.dirty.clear();
        // Another reminder of a remembered one's invoice may have been written meanwhile.
        self.known.clear();
        self.fresh.clear();
    }

    /// The reminders of `ids` whose facts this session has not read, in id order: what
    /// [`facts_listed`] is to read ahead of their reports.
    pub fn unread(&self, ids: &[i64]) -> Vec<i64> {
        let mut ids: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !self.known.contains_key(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Keeps the facts [`facts_listed`] read, for the reports about them.
    pub fn prefetched(&mut self, json: &str) -> Result<(), sqlx::Error> {
        for read in from_json::<Vec<FactsRow>>(json)? {
            let facts = Facts::from(read);
            self.fresh.insert(facts.row.id, facts);
        }
        Ok(())
    }

    /// Reads the facts of every reminder in `ids` in one statement, ahead of their reports
    /// (on PostgreSQL after taking their row locks, in id order).
    pub async fn prefetch(&mut self, tx: &mut Conn, ids: &[i64]) -> Result<(), sqlx::Error> {
        let ids = self.unread(ids);
        if ids.is_empty() {
            return Ok(());
        }
        lock_reminders(tx, &ids).await?;
        let sql = format!("SELECT {}", facts_listed(Dialect::of(tx), 1));
        let read: String = sqlx::query_scalar(&sql)
            .bind(serde_json::Value::from(ids).to_string())
            .fetch_one(&mut *tx)
            .await?;
        self.prefetched(&read)
    }

    /// The reminder as the report must see it: from this session if it decided the
    /// reminder's latest writes (and nothing else about its invoice is pending), otherwise
    /// read — after writing what is pending about its invoice.
    async fn facts(
        &mut self,
        tx: &mut Conn,
        reminder_id: i64,
    ) -> Result<Option<Facts>, ApplyError> {
        if let Some(facts) = self.known.get(&reminder_id) {
            let others = self
                .dirty
                .get(&facts.row.invoice_id)
                .is_some_and(|ids| ids.iter().any(|&id| id != reminder_id));
            if !others {
                return Ok(Some(facts.clone()));
            }
            self.flush(tx).await.map_err(unfinished)?;
        }
        if let Some(facts) = self.fresh.remove(&reminder_id)
            && !self.dirty.contains_key(&facts.row.invoice_id)
        {
            self.known.insert(reminder_id, facts.clone());
            return Ok(Some(facts));
        }
        let mut facts = read_facts(tx, reminder_id).await?;
        if let Some(read) = &facts
            && self.dirty.contains_key(&read.row.invoice_id)
        {
            self.flush(tx).await.map_err(unfinished)?;
            facts = read_facts(tx, reminder_id).await?;
        }
        if let Some(read) = &facts {
            self.known.insert(reminder_id, read.clone());
        }
        Ok(facts)
    }

    /// Applies a validated report at `now`, in `tx`, which must hold SQLite's write lock
    /// already (see [`crate::db::Db::begin_immediate`]). `only_attempt` limits it to one call
    /// attempt: a report signed with that attempt's own key may touch nothing else — no other
    /// call, no other organization. The caller stores the webhook event with [`event_key`] in
    /// the same transaction when the result `changed` anything, after [`Session::flush`].
    ///
    /// Refusals ([`ApplyError::NotFound`], [`ApplyError::Conflict`]) keep nothing of the
    /// report; any failure once its writes are kept comes back as [`ApplyError::Unfinished`],
    /// and `tx` must be rolled back.
    pub async fn apply(
        &mut self,
        tx: &mut Conn,
        report: &CallReport,
        only_attempt: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, ApplyError> {
        let missing = || ApplyError::NotFound("There is no such reminder.".into());
        let Some(facts) = self.facts(tx, report.reminder_id).await? else {
            return Err(missing());
        };
        let row = facts.row.clone();
        let org_id = row.org_id;
        // The attempt the report is about: the one named (by the body or the signing key),
        // or the latest.
        let named = report.attempt_id.or(only_attempt);
        if let (Some(allowed), Some(named)) = (only_attempt, report.attempt_id)
            && allowed != named
        {
            return Err(missing());
        }
        let (attempt_id, attempt_no, attempt_status) = match (named, facts.latest.clone()) {
            (None, Some(latest)) => latest,
            (Some(id), Some(latest)) if id == latest.0 => latest,
            (named, latest) => {
                let older: Option<i64> = match named {
                    Some(id) => sqlx::query_scalar(
                        "SELECT attempt_no FROM call_attempts WHERE id = $1 AND reminder_id = $2",
                    )
                    .bind(id)
                    .bind(row.id)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => None,
                };
                return Err(match (older, latest) {
                    // A key of another reminder's attempt: this reminder does not exist for it.
                    (None, _) if only_attempt.is_some() => missing(),
                    (None, None) => {
                        ApplyError::Conflict("No call has been placed for this reminder.".into())
                    }
                    (None, Some(_)) => {
                        ApplyError::NotFound("The reminder has no such call attempt.".into())
                    }
                    (Some(no), latest) => ApplyError::Conflict(format!(
                        "Attempt {no} is over; the reminder is on attempt {}.",
                        latest.map_or(no, |l| l.1)
                    )),
                });
            }
        };
        let unchanged = |summary: String| Applied {
            org_id,
            reminder_id: row.id,
            attempt_id,
            changed: false,
            summary,
            status: row.status(),
            write_back: None,
        };
        let event_type = report.event.event_type();
        let key = event_key(attempt_id, report);
        if facts.seen.contains(&event_type) || self.applied.contains(&key) {
            return Ok(unchanged(format!(
                "Already applied: the {} of attempt {attempt_no}.",
                event_type.as_str(),
            )));
        }
        let ended = !matches!(attempt_status.as_str(), "dialling" | "answered");
        if attempt_status == "timed_out" {
            return Err(ApplyError::Conflict(format!(
                "Attempt {attempt_no} timed out before this report arrived; it is not applied."
            )));
        }
        match (&report.event, attempt_status.as_str()) {
            (ReportedEvent::Answered, "answered") => {
                return Ok(unchanged("The call was already answered.".into()));
            }
            // Delivered after the call's end: the end says more.
            (ReportedEvent::Answered, _) if ended => {
                return Ok(unchanged(format!(
                    "The call had already ended ({attempt_status})."
                )));
            }
            (_, status) if ended => {
                return Err(ApplyError::Conflict(format!(
                    "Attempt {attempt_no} already ended ({status})."
                )));
            }
            _ => {}
        }

        let profile = self.profile(tx, org_id).await?;
        // The events, in order: a completed whose answered has not arrived (or never will) is
        // both.
        let answered_first = attempt_status == "dialling";
        let (events, response) = events_of(report, answered_first);
        let details = response.map(|response| attempt_details(report, response));
        // Decided in memory; a refusal keeps nothing.
        let mut reports = Reports::default();
        let mut after = row;
        let mut after_status = attempt_status;
        for (n, event) in events.iter().enumerate() {
            let last = n + 1 == events.len();
            let reported = Reported {
                row: after,
                attempt_id: Some(attempt_id),
                details: if last { details.as_ref() } else { None },
            };
            after = reports
                .report(&profile, reported, event, &Actor::Webhook, now)?
                .0;
            after_status = dispatch::plan(event, &profile, now).2.to_owned();
        }
        self.pending.reports.absorb(reports);
        self.applied.insert(key);
        let invoice_id = after.invoice_id;
        self.dirty.entry(invoice_id).or_default().insert(after.id);
        self.known.insert(
            after.id,
            Facts {
                row: after.clone(),
                latest: Some((attempt_id, attempt_no, after_status)),
                ..facts.clone()
            },
        );

        let follow_up_facts = FollowUpFacts {
            org_id,
            invoice_id,
            customer_id: after.customer_id,
            called_at: crate::db::time::from_millis(facts.dialled_at.unwrap_or_default()),
            due_date: facts.due_date,
            invoice_source: facts.invoice_source,
            others_open: facts.others_open,
        };
        let (said, write_back) = match response {
            Some(response) => {
                let still_open = !after.status().is_final();
                self.follow_up(tx, &profile, &follow_up_facts, still_open, response, now)
                    .await
                    .map_err(unfinished)?
            }
            None => (String::new(), None),
        };
        let mut summary = format!(
            "Attempt {attempt_no}: {} → reminder {}.",
            event_type.as_str(),
            after.status
        );
        if !said.is_empty() {
            summary.push(' ');
            summary.push_str(&said);
        }
        Ok(Applied {
            org_id,
            reminder_id: after.id,
            attempt_id,
            changed: true,
            summary,
            status: after.status(),
            write_back,
        })
    }

    /// The follow-up for `response`: what it did, in words, and the note for the accounting system.
    async fn follow_up(
        &mut self,
        tx: &mut Conn,
        profile: &BusinessProfile,
        facts: &FollowUpFacts,
        still_open: bool,
        response: &Response,
        now: DateTime<Utc>,
    ) -> Result<(String, Option<WriteBack>), ApplyError> {
        let zone = org_zone(profile);
        let today = now.with_timezone(&zone).date_naive();
        let call_day = facts.called_at.with_timezone(&zone).date_naive();
        let actor = Actor::Webhook;
        let note = |text: String, date: Option<NaiveDate>| {
            Some(WriteBack {
                invoice_id: facts.invoice_id,
                invoice_source: facts.invoice_source.clone(),
                description: format!("Duecall call on {call_day}: {text}"),
                payment_expected_date: date,
            })
        };
        let result = match response {
            Response::WillPayToday => {
                let tomorrow = local_day_start(zone, today + Duration::days(1));
                let reason = format!("The customer said on {call_day} they would pay that day.");
                self.pending.hold(facts, tomorrow, &reason);
                let created = self
                    .pending
                    .follow_up_at(profile, facts, still_open, tomorrow, &reason, now);
                (
                    format!(
                        "Calls wait until {}; {}.",
                        today + Duration::days(1),
                        created.describe()
                    ),
                    note(
                        "the customer said they would pay today.".into(),
                        Some(today),
                    ),
                )
            }
            Response::PromiseToPay { date } => {
                let after = local_day_start(zone, *date + Duration::days(1));
                let reason = format!("The customer promised on {call_day} to pay by {date}.");
                self.pending.hold(facts, after, &reason);
                sqlx::query(
                "UPDATE invoices SET promised_date = $1, promised_at = $2 WHERE id = $3 AND org_id = $4",
            )
            .bind(date.to_string())
            .bind(to_millis(now))
            .bind(facts.invoice_id)
            .bind(facts.org_id)
            .execute(&mut *tx)
            .await?;
                let created = self
                    .pending
                    .follow_up_at(profile, facts, still_open, after, &reason, now);
                (
                    format!("Calls wait until after {date}; {}.", created.describe()),
                    note(
                        format!("the customer promised to pay by {date}."),
                        Some(*date),
                    ),
                )
            }
            Response::AlreadyPaid => {
                review(
                    tx,
                    facts,
                    "paid_claim",
                    "The customer says the invoice is paid.",
                    now,
                )
                .await?;
                // Other reminders are read and moved: what is pending is written first.
                self.flush(tx).await?;
                let paused = pause_open(
                    tx,
                    facts.org_id,
                    Scope::Invoice(facts.invoice_id),
                    &actor,
                    now,
                )
                .await?;
                (
                    format!("The team is to check the payment; {paused} reminders paused."),
                    note(
                        "the customer says the invoice is already paid; to be checked.".into(),
                        None,
                    ),
                )
            }
            Response::Dispute { reason } => {
                sqlx::query(
                "UPDATE invoices SET disputed = 1, dispute_reason = $1 WHERE id = $2 AND org_id = $3",
            )
            .bind(reason)
            .bind(facts.invoice_id)
            .bind(facts.org_id)
            .execute(&mut *tx)
            .await?;
                review(tx, facts, "dispute", reason, now).await?;
                let why = format!("The invoice is disputed: {reason}");
                self.flush(tx).await?;
                let cancelled = cancel_open(
                    tx,
                    facts.org_id,
                    Scope::Invoice(facts.invoice_id),
                    &why,
                    &actor,
                    now,
                )
                .await?;
                (
                    format!("Disputed; {cancelled} reminders cancelled; a person is to settle it."),
                    note(format!("the customer disputes the invoice: {reason}"), None),
                )
            }
            Response::CallbackRequested { at } => {
                let reason = format!("The customer asked on {call_day} to be called back then.");
                self.pending.hold(facts, *at, &reason);
                let created = self
                    .pending
                    .follow_up_at(profile, facts, still_open, *at, &reason, now);
                (
                    format!(
                        "Callback at {}; {}.",
                        at.format("%Y-%m-%d %H:%M UTC"),
                        created.describe()
                    ),
                    note(
                        format!(
                            "the customer asked to be called back at {}.",
                            at.format("%Y-%m-%d %H:%M UTC")
                        ),
                        None,
                    ),
                )
            }
            Response::WrongNumber => {
                let reason = format!("reported as a wrong number on the call of {call_day}");
                sqlx::query(
                    "UPDATE customers SET phone_status = 'invalid', best_phone_reason = $1 \
                 WHERE id = $2 AND org_id = $3",
                )
                .bind(&reason)
                .bind(facts.customer_id)
                .bind(facts.org_id)
                .execute(&mut *tx)
                .await?;
                let why = format!("The customer's phone number is not valid: {reason}");
                self.flush(tx).await?;
                let cancelled = cancel_open(
                    tx,
                    facts.org_id,
                    Scope::Customer(facts.customer_id),
                    &why,
                    &actor,
                    now,
                )
                .await?;
                (
                    format!("The number is marked invalid; {cancelled} reminders cancelled."),
                    note("the number called was a wrong number.".into(), None),
                )
            }
            Response::OptOut => {
                sqlx::query("UPDATE customers SET opted_out = 1 WHERE id = $1 AND org_id = $2")
                    .bind(facts.customer_id)
                    .bind(facts.org_id)
                    .execute(&mut *tx)
                    .await?;
                self.flush(tx).await?;
                let cancelled = cancel_open(
                    tx,
                    facts.org_id,
                    Scope::Customer(facts.customer_id),
                    "The customer opted out of calls.",
                    &actor,
                    now,
                )
                .await?;
                (
                    format!("The customer is opted out; {cancelled} reminders cancelled."),
                    note("the customer asked not to be called again.".into(), None),
                )
            }
            Response::NoAnswer | Response::Voicemail | Response::Unclassified => {
                (String::new(), None)
            }
        };
        Ok(result)
    }
}

/// The reminder's events for `report`, and the customer's response if it gave one.
fn events_of(report: &CallReport, answered_first: bool) -> (Vec<CallEvent>, Option<&Response>) {
    match &report.event {
        ReportedEvent::Answered => (vec![CallEvent::Answered], None),
        ReportedEvent::Completed { response, .. } if response.unanswered() => {
            (vec![CallEvent::NoAnswer], Some(response))
        }
        ReportedEvent::Completed { response, .. } => {
            let outcome = match response.as_str() {
                "" => "completed".to_owned(),
                name => name.to_owned(),
            };
            let mut events = Vec::with_capacity(2);
            if answered_first {
                events.push(CallEvent::Answered);
            }
            events.push(CallEvent::Completed { outcome });
            (events, Some(response))
        }
        ReportedEvent::Failed {
            response: Some(response),
            ..
        } if response.unanswered() => (vec![CallEvent::NoAnswer], Some(response)),
        // Agents report a busy line as a failure whose reason is "busy".
        ReportedEvent::Failed {
            reason,
            response: None,
        } if reason.eq_ignore_ascii_case("busy") => (vec![CallEvent::Busy], None),
        ReportedEvent::Failed { reason, response } => {
            let wrong = matches!(response, Some(Response::WrongNumber));
            let event = CallEvent::Failed {
                reason: reason.clone(),
                retry: !wrong,
            };
            (vec![event], response.as_ref())
        }
    }
}

#[derive(Debug)]
pub(crate) struct FollowUpFacts {
    pub org_id: i64,
    pub invoice_id: i64,
    pub customer_id: i64,
    pub called_at: DateTime<Utc>,
    /// The invoice's due date (`YYYY-MM-DD`), if known.
    pub due_date: Option<String>,
    pub invoice_source: String,
    /// Whether another reminder of the invoice is open.
    pub others_open: bool,
}

/// Puts the invoice in the "needs a human" queue.
async fn review(
    tx: &mut Conn,
    facts: &FollowUpFacts,
    kind: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET review = $1, review_note = $2, review_at = $3 WHERE id = $4 AND org_id = $5",
    )
    .bind(kind)
    .bind(note)
    .bind(to_millis(now))
    .bind(facts.invoice_id)
    .bind(facts.org_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether a follow-up reminder had to be made.
pub(crate) enum FollowUpMade {
    /// Another reminder of the invoice is still open: it makes the next call.
    Existing,
    Created,
}

impl FollowUpMade {
    fn describe(&self) -> &'static str {
        match self {
            Self::Existing => "the invoice's next reminder makes the next call",
            Self::Created => "a follow-up reminder is made for then",
        }
    }
}

impl Pending {
    /// Makes sure a reminder looks at the invoice again at `at`: the reported reminder if it
    /// is still open, or another open reminder of the invoice (the hold keeps them until
    /// then); otherwise a follow-up reminder is made, placed in the sequence by the invoice's
    /// due date.
    fn follow_up_at(
        &mut self,
        profile: &BusinessProfile,
        facts: &FollowUpFacts,
        still_open: bool,
        at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> FollowUpMade {
        if still_open || facts.others_open {
            return FollowUpMade::Existing;
        }
        let day = at.with_timezone(&org_zone(profile)).date_naive();
        let offset = facts
            .due_date
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map_or(0, |due| (day - due).num_days());
        self.follow_ups.push(NewFollowUp {
            org_id: facts.org_id,
            invoice_id: facts.invoice_id,
            customer_id: facts.customer_id,
            offset,
            day: day.to_string(),
            max_attempts: i64::from(profile.max_attempts),
            due_at: to_millis(at),
            reason: reason.to_owned(),
            at: to_millis(now),
        });
        FollowUpMade::Created
    }
}

/// A follow-up due `now` for an invoice none of whose facts were read yet (a person's decision
/// rather than a call), unless another reminder of the invoice is open.
pub(crate) async fn ensure_follow_up(
    tx: &mut Conn,
    profile: &BusinessProfile,
    org_id: i64,
    invoice_id: i64,
    customer_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<FollowUpMade, sqlx::Error> {
    let (due_date, invoice_source, open): (String, String, i64) = sqlx::query_as(&format!(
        // `+org_id`: walk the invoice's reminders, not the organization's.
        "SELECT i.due_date, i.source, (SELECT COUNT(*) FROM reminders o \
           WHERE o.invoice_id = i.id AND +o.org_id = i.org_id AND o.status IN {OPEN}) \
         FROM invoices i WHERE i.id = $1 AND i.org_id = $2"
    ))
    .bind(invoice_id)
    .bind(org_id)
    .fetch_one(&mut *tx)
    .await?;
    let facts = FollowUpFacts {
        org_id,
        invoice_id,
        customer_id,
        called_at: now,
        due_date: Some(due_date),
        invoice_source,
        others_open: open > 0,
    };
    let mut pending = Pending::default();
    let made = pending.follow_up_at(profile, &facts, false, now, reason, now);
    pending.flush(tx).await?;
    Ok(made)
}

/// The conversation's particulars for the attempt, from the report.
fn attempt_details(report: &CallReport, response: &Response) -> AttemptDetails {
    let (duration_seconds, notes) = match &report.event {
        ReportedEvent::Completed {
            duration_seconds,
            notes,
            ..
        } => (duration_seconds.map(i64::from), notes.clone()),
        _ => (None, String::new()),
    };
    AttemptDetails {
        duration_seconds,
        response: response.as_str().to_owned(),
        notes,
        promised_date: match response {
            Response::PromiseToPay { date } => date.to_string(),
            _ => String::new(),
        },
        callback_at: match response {
            Response::CallbackRequested { at } => Some(to_millis(*at)),
            _ => None,
        },
        conversation: response.is_conversation(),
    }
}
