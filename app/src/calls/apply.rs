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

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::report::{CallReport, ReportedEvent, Response};
use crate::db::Tx;
use crate::db::time::to_millis;
use crate::reminders::dispatch::{self, CallEvent, Reported};
use crate::reminders::machine::Status;
use crate::reminders::profile::BusinessProfile;
use crate::reminders::queries::{Scope, cancel_open, pause_open};
use crate::reminders::service::profile_in;
use crate::reminders::store::{self, Actor, FOLLOW_UP, TransitionError};
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

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    attempt_no: i64,
    status: String,
    dialled_at: i64,
}

/// The key that makes a report idempotent: one event of each type per attempt.
pub fn event_key(attempt_id: i64, report: &CallReport) -> String {
    format!("{attempt_id}:{}", report.event.event_type().as_str())
}

/// Takes the reminder's lock and says whose it is: `org` limits the search to one
/// organization (a sender that belongs to one).
pub async fn lock_reminder(
    tx: &mut Tx<'_>,
    reminder_id: i64,
    org: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    // The write comes first: on SQLite a transaction that read first could not write later.
    sqlx::query_scalar(
        "UPDATE reminders SET updated_at = updated_at \
         WHERE id = $1 AND ($2 = 0 OR org_id = $2) RETURNING org_id",
    )
    .bind(reminder_id)
    .bind(org.unwrap_or(0))
    .fetch_optional(&mut **tx)
    .await
}

/// Whether the event with this [`event_key`] was applied already.
async fn seen(tx: &mut Tx<'_>, key: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM webhook_events WHERE source = 'call_status' AND event_key = $1",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Applies a validated report at `now`, in `tx` (which has written already, so it holds
/// SQLite's write lock). `only_attempt` limits it to one call attempt: a report signed with
/// that attempt's own key may touch nothing else — no other call, no other organization. The
/// caller stores the webhook event with [`event_key`] in the same transaction when the result
/// `changed` anything.
pub async fn apply(
    tx: &mut Tx<'_>,
    report: &CallReport,
    only_attempt: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Applied, ApplyError> {
    let missing = || ApplyError::NotFound("There is no such reminder.".into());
    let mut org = None;
    if let Some(allowed) = only_attempt {
        let owner: Option<(i64, i64)> =
            sqlx::query_as("SELECT org_id, reminder_id FROM call_attempts WHERE id = $1")
                .bind(allowed)
                .fetch_optional(&mut **tx)
                .await?;
        match owner {
            Some((owner_org, reminder))
                if reminder == report.reminder_id
                    && report.attempt_id.is_none_or(|a| a == allowed) =>
            {
                org = Some(owner_org);
            }
            // Indistinguishable from a reminder that does not exist, for this sender.
            _ => return Err(missing()),
        }
    }
    let org_id = lock_reminder(tx, report.reminder_id, org)
        .await?
        .ok_or_else(missing)?;
    let row = store::get(tx, org_id, report.reminder_id)
        .await?
        .ok_or_else(missing)?;
    let latest: Option<AttemptRow> = sqlx::query_as(
        "SELECT id, attempt_no, status, dialled_at FROM call_attempts \
         WHERE reminder_id = $1 AND org_id = $2 ORDER BY attempt_no DESC LIMIT 1",
    )
    .bind(row.id)
    .bind(org_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(latest) = latest else {
        return Err(ApplyError::Conflict(
            "No call has been placed for this reminder.".into(),
        ));
    };
    let attempt = match report.attempt_id.or(only_attempt) {
        None => latest,
        Some(id) if id == latest.id => latest,
        Some(id) => {
            let older: Option<i64> = sqlx::query_scalar(
                "SELECT attempt_no FROM call_attempts WHERE id = $1 AND reminder_id = $2 AND org_id = $3",
            )
            .bind(id)
            .bind(row.id)
            .bind(org_id)
            .fetch_optional(&mut **tx)
            .await?;
            return Err(match older {
                Some(no) => ApplyError::Conflict(format!(
                    "Attempt {no} is over; the reminder is on attempt {}.",
                    latest.attempt_no
                )),
                None => ApplyError::NotFound("The reminder has no such call attempt.".into()),
            });
        }
    };
    let unchanged = |summary: String| Applied {
        org_id,
        reminder_id: row.id,
        attempt_id: attempt.id,
        changed: false,
        summary,
        status: row.status(),
        write_back: None,
    };
    if seen(tx, &event_key(attempt.id, report)).await? {
        return Ok(unchanged(format!(
            "Already applied: the {} of attempt {}.",
            report.event.event_type().as_str(),
            attempt.attempt_no
        )));
    }
    let ended = !matches!(attempt.status.as_str(), "dialling" | "answered");
    if attempt.status == "timed_out" {
        return Err(ApplyError::Conflict(format!(
            "Attempt {} timed out before this report arrived; it is not applied.",
            attempt.attempt_no
        )));
    }
    match (&report.event, attempt.status.as_str()) {
        (ReportedEvent::Answered, "answered") => {
            return Ok(unchanged("The call was already answered.".into()));
        }
        // Delivered after the call's end: the end says more.
        (ReportedEvent::Answered, _) if ended => {
            return Ok(unchanged(format!(
                "The call had already ended ({}).",
                attempt.status
            )));
        }
        (_, status) if ended => {
            return Err(ApplyError::Conflict(format!(
                "Attempt {} already ended ({status}).",
                attempt.attempt_no
            )));
        }
        _ => {}
    }

    let profile = profile_in(tx, org_id).await?;
    let reported = Reported {
        org_id,
        reminder_id: row.id,
        attempt_id: Some(attempt.id),
    };
    let actor = Actor::Webhook;
    let step = async |tx: &mut Tx<'_>, event: CallEvent| {
        dispatch::report_in(tx, &profile, reported, &event, &actor, now).await
    };
    let answered_first = attempt.status == "dialling";
    let (after, response) = match &report.event {
        ReportedEvent::Answered => (step(tx, CallEvent::Answered).await?.0, None),
        ReportedEvent::Completed { response, .. } if response.unanswered() => {
            (step(tx, CallEvent::NoAnswer).await?.0, Some(response))
        }
        ReportedEvent::Completed { response, .. } => {
            // Completed before its answered arrived (or without one): both, in order.
            if answered_first {
                step(tx, CallEvent::Answered).await?;
            }
            let outcome = match response.as_str() {
                "" => "completed".to_owned(),
                name => name.to_owned(),
            };
            (
                step(tx, CallEvent::Completed { outcome }).await?.0,
                Some(response),
            )
        }
        ReportedEvent::Failed {
            response: Some(response),
            ..
        } if response.unanswered() => (step(tx, CallEvent::NoAnswer).await?.0, Some(response)),
        // Agents report a busy line as a failure whose reason is "busy".
        ReportedEvent::Failed {
            reason,
            response: None,
        } if reason.eq_ignore_ascii_case("busy") => (step(tx, CallEvent::Busy).await?.0, None),
        ReportedEvent::Failed { reason, response } => {
            let wrong = matches!(response, Some(Response::WrongNumber));
            let event = CallEvent::Failed {
                reason: reason.clone(),
                retry: !wrong,
            };
            (step(tx, event).await?.0, response.as_ref())
        }
    };

    // The attempt's details.
    let (duration, notes) = match &report.event {
        ReportedEvent::Completed {
            duration_seconds,
            notes,
            ..
        } => (duration_seconds.map(i64::from), notes.as_str()),
        _ => (None, ""),
    };
    if let Some(response) = response {
        let promised = match response {
            Response::PromiseToPay { date } => date.to_string(),
            _ => String::new(),
        };
        let callback = match response {
            Response::CallbackRequested { at } => Some(to_millis(*at)),
            _ => None,
        };
        // A wrong number reached somebody, but not the debtor: no conversation about the debt.
        sqlx::query(
            "UPDATE call_attempts SET duration_seconds = COALESCE($1, duration_seconds), \
               response = $2, notes = $3, promised_date = $4, callback_at = $5, \
               connected = CASE WHEN $6 = 1 THEN connected ELSE 0 END \
             WHERE id = $7",
        )
        .bind(duration)
        .bind(response.as_str())
        .bind(notes)
        .bind(&promised)
        .bind(callback)
        .bind(i64::from(response.is_conversation()))
        .bind(attempt.id)
        .execute(&mut **tx)
        .await?;
    }

    let mut summary = format!(
        "Attempt {}: {} → reminder {}.",
        attempt.attempt_no,
        report.event.event_type().as_str(),
        after.status
    );
    let write_back = match response {
        Some(response) => {
            let facts = FollowUpFacts {
                org_id,
                invoice_id: row.invoice_id,
                customer_id: row.customer_id,
                called_at: crate::db::time::from_millis(attempt.dialled_at),
            };
            let (said, write_back) = follow_up(tx, &profile, &facts, response, now).await?;
            if !said.is_empty() {
                summary.push(' ');
                summary.push_str(&said);
            }
            write_back
        }
        None => None,
    };
    Ok(Applied {
        org_id,
        reminder_id: row.id,
        attempt_id: attempt.id,
        changed: true,
        summary,
        status: after.status(),
        write_back,
    })
}

pub(crate) struct FollowUpFacts {
    pub org_id: i64,
    pub invoice_id: i64,
    pub customer_id: i64,
    pub called_at: DateTime<Utc>,
}

/// The follow-up for `response`: what it did, in words, and the note for the accounting system.
async fn follow_up(
    tx: &mut Tx<'_>,
    profile: &BusinessProfile,
    facts: &FollowUpFacts,
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
            description: format!("Duecall call on {call_day}: {text}"),
            payment_expected_date: date,
        })
    };
    let result = match response {
        Response::WillPayToday => {
            let tomorrow = local_day_start(zone, today + Duration::days(1));
            let reason = format!("The customer said on {call_day} they would pay that day.");
            hold(tx, facts, tomorrow, &reason).await?;
            let created = ensure_follow_up(tx, profile, facts, tomorrow, &reason, now).await?;
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
            hold(tx, facts, after, &reason).await?;
            sqlx::query(
                "UPDATE invoices SET promised_date = $1, promised_at = $2 WHERE id = $3 AND org_id = $4",
            )
            .bind(date.to_string())
            .bind(to_millis(now))
            .bind(facts.invoice_id)
            .bind(facts.org_id)
            .execute(&mut **tx)
            .await?;
            let created = ensure_follow_up(tx, profile, facts, after, &reason, now).await?;
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
            .execute(&mut **tx)
            .await?;
            review(tx, facts, "dispute", reason, now).await?;
            let why = format!("The invoice is disputed: {reason}");
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
            hold(tx, facts, *at, &reason).await?;
            let created = ensure_follow_up(tx, profile, facts, *at, &reason, now).await?;
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
            .execute(&mut **tx)
            .await?;
            let why = format!("The customer's phone number is not valid: {reason}");
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
                .execute(&mut **tx)
                .await?;
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
        Response::NoAnswer | Response::Voicemail | Response::Unclassified => (String::new(), None),
    };
    Ok(result)
}

/// Holds calls about the invoice until `until` (never shortening a longer hold).
async fn hold(
    tx: &mut Tx<'_>,
    facts: &FollowUpFacts,
    until: DateTime<Utc>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET hold_until = $1, hold_reason = $2 \
         WHERE id = $3 AND org_id = $4 AND (hold_until IS NULL OR hold_until <= $1)",
    )
    .bind(to_millis(until))
    .bind(reason)
    .bind(facts.invoice_id)
    .bind(facts.org_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts the invoice in the "needs a human" queue.
async fn review(
    tx: &mut Tx<'_>,
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether a follow-up reminder had to be made.
pub(crate) enum FollowUpMade {
    /// Another reminder of the invoice is still open: it makes the next call.
    Existing,
    Created(i64),
}

impl FollowUpMade {
    fn describe(&self) -> String {
        match self {
            Self::Existing => "the invoice's next reminder makes the next call".into(),
            Self::Created(id) => format!("follow-up reminder {id} made"),
        }
    }
}

/// Makes sure a reminder will look at the invoice again at `at`: an open reminder of the
/// invoice does (the hold keeps it until then); otherwise a follow-up reminder is made.
pub(crate) async fn ensure_follow_up(
    tx: &mut Tx<'_>,
    profile: &BusinessProfile,
    facts: &FollowUpFacts,
    at: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<FollowUpMade, sqlx::Error> {
    let open: i64 = sqlx::query_scalar(
        // `+org_id`: walk the invoice's reminders, not the organization's.
        "SELECT COUNT(*) FROM reminders WHERE invoice_id = $1 AND +org_id = $2 \
           AND status IN ('pending', 'paused', 'failed', 'in_progress', 'processing')",
    )
    .bind(facts.invoice_id)
    .bind(facts.org_id)
    .fetch_one(&mut **tx)
    .await?;
    if open > 0 {
        return Ok(FollowUpMade::Existing);
    }
    let due: Option<String> =
        sqlx::query_scalar("SELECT due_date FROM invoices WHERE id = $1 AND org_id = $2")
            .bind(facts.invoice_id)
            .bind(facts.org_id)
            .fetch_optional(&mut **tx)
            .await?;
    let day = at.with_timezone(&org_zone(profile)).date_naive();
    let offset = due
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .map_or(0, |due| (day - due).num_days());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reminders (org_id, invoice_id, customer_id, step_offset_days, step_date, \
           status, max_attempts, due_at, last_reason, kind, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(facts.org_id)
    .bind(facts.invoice_id)
    .bind(facts.customer_id)
    .bind(offset)
    .bind(day.to_string())
    .bind(i64::from(profile.max_attempts))
    .bind(to_millis(at))
    .bind(format!("Follow-up: {reason}"))
    .bind(FOLLOW_UP)
    .bind(to_millis(now))
    .fetch_one(&mut **tx)
    .await?;
    Ok(FollowUpMade::Created(id))
}
