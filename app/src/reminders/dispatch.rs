//! From a claimed reminder to a placed call, and a call's reports back to the reminder.
//!
//! [`prepare`] runs the pre-call verification on facts read inside the transaction that then
//! writes the attempt down (the `dial` transition plus a `call_attempts` row), before any call
//! is placed. [`report`] applies what became of a call. [`sweep_expired`] gives back claims
//! whose scheduler stopped before dialling and fails calls nobody reported on in time.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::generate::{INVOICE_ROW, InvoiceRow};
use super::machine::{Change, Status, Transition};
use super::profile::BusinessProfile;
use super::service::profile_of;
use super::store::{self, Actor, Lease, Request, Row, TransitionError};
use super::verify::{Facts, Verdict, local_day_start, org_zone, verify};
use crate::db::time::to_millis;
use crate::db::{Conn, Db, Tx};
use crate::error::AppError;
use crate::receivables::model::{Currency, Money, NumberStyle};

/// Everything the voice agent needs for one call: handed to the call provider and kept with
/// the attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    pub business_name: String,
    pub caller_identity: String,
    /// Said first: who calls, that it is an AI, that it is recorded, how to opt out.
    pub opening: String,
    pub language: String,
    pub customer_name: String,
    pub invoice_number: String,
    /// The balance, formatted (e.g. "£1,234.50").
    pub amount: String,
    pub balance_minor: i64,
    pub currency: String,
    pub due_date: String,
    pub payment_link: String,
    /// The business's script with its placeholders filled.
    pub script: String,
}

/// A call to place: the attempt is already written down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    pub org_id: i64,
    pub reminder_id: i64,
    pub attempt_id: i64,
    pub attempt_no: i64,
    pub phone_e164: String,
    pub context: CallContext,
}

/// What [`prepare`] decided for a claimed reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Dialled (written down): place this call now.
    Call(Box<CallRequest>),
    /// The check said no: skipped for good, or back to pending until the given time.
    Skipped {
        reason: String,
        until: Option<DateTime<Utc>>,
    },
    /// Calls were switched off meanwhile: back to pending, untouched.
    Released,
    /// Another instance or a person moved the reminder meanwhile; nothing done.
    Lost,
}

fn context(profile: &BusinessProfile, invoice: &InvoiceRow) -> CallContext {
    let currency = Currency::parse(&invoice.currency).unwrap_or_else(|_| Currency::unknown());
    let amount = Money::new(invoice.balance_minor, currency).format(NumberStyle::English);
    let script = profile.render_script(&[
        ("customer", &invoice.customer_name),
        ("invoice_number", &invoice.number),
        ("amount", &amount),
        ("due_date", &invoice.due_date),
    ]);
    CallContext {
        business_name: profile.business_name.clone(),
        caller_identity: profile.caller_identity.clone(),
        opening: profile.opening(),
        language: profile.language.clone(),
        customer_name: invoice.customer_name.clone(),
        invoice_number: invoice.number.clone(),
        amount,
        balance_minor: invoice.balance_minor,
        currency: invoice.currency.clone(),
        due_date: invoice.due_date.clone(),
        payment_link: profile.payment_link.clone(),
        script,
    }
}

async fn count(tx: &mut Conn, sql: &str, a: i64, b: i64) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(sql)
        .bind(a)
        .bind(b)
        .fetch_one(&mut *tx)
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The facts about a reminder's invoice and customer and the organization's calls at `now`.
pub async fn facts(
    tx: &mut Conn,
    profile: &BusinessProfile,
    row: &Row,
    now: DateTime<Utc>,
) -> Result<Option<(InvoiceRow, Facts)>, sqlx::Error> {
    let Some(invoice) = sqlx::query_as::<_, InvoiceRow>(&format!(
        "{INVOICE_ROW} WHERE i.id = $1 AND i.org_id = $2"
    ))
    .bind(row.invoice_id)
    .bind(row.org_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let mut facts = invoice.facts();
    facts.calls = store::recent_calls(tx, row.invoice_id, now).await?;
    facts.customer_on_call = count(
        tx,
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND customer_id = $2 \
           AND status IN ('dialling', 'answered')",
        row.org_id,
        row.customer_id,
    )
    .await?
        > 0;
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND status IN ('dialling', 'answered')",
    )
    .bind(row.org_id)
    .fetch_one(&mut *tx)
    .await?;
    facts.org_active_calls = u32::try_from(active).unwrap_or(u32::MAX);
    let today = now.with_timezone(&org_zone(profile)).date_naive();
    facts.superseded_by = sqlx::query_scalar(
        "SELECT step_date FROM reminders WHERE invoice_id = $1 AND org_id = $2 \
           AND kind = 'step' AND step_offset_days > $3 AND step_date <= $4 \
           AND status <> 'cancelled' \
         ORDER BY step_offset_days DESC LIMIT 1",
    )
    .bind(row.invoice_id)
    .bind(row.org_id)
    .bind(row.step_offset_days)
    .bind(today.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    facts.org_calls_today = count(
        tx,
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND dialled_at >= $2",
        row.org_id,
        to_millis(local_day_start(org_zone(profile), today)),
    )
    .await?;
    Ok(Some((invoice, facts)))
}

/// How long a call waits when the invoice could not be confirmed with the accounting system.
pub const UNCONFIRMED_WAIT: Duration = Duration::minutes(30);

/// The pre-call verification of a reminder claimed by `instance`, and, if it passes, the
/// attempt written down (committed) before the call is placed. `unconfirmed` is why the
/// invoice could not be brought up to date from the accounting system, if it could not: the
/// call then waits.
pub async fn prepare(
    db: &Db,
    instance: &str,
    row: &Row,
    unconfirmed: Option<String>,
    now: DateTime<Utc>,
) -> Result<Prepared, AppError> {
    let actor = Actor::Scheduler(instance.to_owned());
    let profile = profile_of(db, row.org_id).await?;
    let mut tx = db.begin().await?;
    // One dial at a time per organization: its concurrency and daily budget are counted
    // under this lock, and a switch-off waits for it.
    let enabled: Option<i64> = sqlx::query_scalar(
        "UPDATE business_profiles SET calls_enabled = calls_enabled WHERE org_id = $1 \
         RETURNING calls_enabled",
    )
    .bind(row.org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let request = |transition: Transition, lease: Lease, attempt_id: Option<i64>| Request {
        org_id: row.org_id,
        reminder_id: row.id,
        transition,
        actor: &actor,
        now,
        claimant: Some(instance),
        lease,
        attempt_id,
        require_expired: false,
    };
    if enabled != Some(1) || !profile.calls_enabled {
        return finish(
            tx,
            request(Transition::Release, Lease::Keep, None),
            Prepared::Released,
        )
        .await;
    }
    let Some((invoice, facts)) = facts(&mut tx, &profile, row, now).await? else {
        return finish(
            tx,
            request(Transition::Release, Lease::Keep, None),
            Prepared::Released,
        )
        .await;
    };
    let skip = |reason: String, until: Option<DateTime<Utc>>| {
        (
            Transition::Skip {
                reason: reason.clone(),
                until,
            },
            Prepared::Skipped { reason, until },
        )
    };
    let verdict = match (verify(&profile, &facts, now), unconfirmed) {
        // A lasting reason stands; otherwise the stale invoice holds the call.
        (Verdict::Never { reason }, _) => Verdict::Never { reason },
        (_, Some(error)) => Verdict::Hold {
            reason: format!(
                "Could not confirm with the accounting system that the invoice is unpaid: {error}"
            ),
            until: now + UNCONFIRMED_WAIT,
        },
        (verdict, None) => verdict,
    };
    let (transition, outcome) = match verdict {
        Verdict::Never { reason } => skip(reason, None),
        Verdict::Hold { reason, until } => skip(reason, Some(until)),
        Verdict::Call => {
            let attempt_no = row.attempts + 1;
            let context = context(&profile, &invoice);
            let attempt_id: i64 = sqlx::query_scalar(
                "INSERT INTO call_attempts (org_id, reminder_id, invoice_id, customer_id, \
                   attempt_no, phone_e164, status, dialled_at, context) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'dialling', $7, $8) RETURNING id",
            )
            .bind(row.org_id)
            .bind(row.id)
            .bind(row.invoice_id)
            .bind(row.customer_id)
            .bind(attempt_no)
            .bind(&facts.phone_e164)
            .bind(to_millis(now))
            .bind(serde_json::to_string(&context).unwrap_or_default())
            .fetch_one(&mut *tx)
            .await?;
            let deadline = now + Duration::minutes(i64::from(profile.agent_timeout_minutes));
            let call = CallRequest {
                org_id: row.org_id,
                reminder_id: row.id,
                attempt_id,
                attempt_no,
                phone_e164: facts.phone_e164.clone(),
                context,
            };
            return finish(
                tx,
                request(Transition::Dial, Lease::Until(deadline), Some(attempt_id)),
                Prepared::Call(Box::new(call)),
            )
            .await;
        }
    };
    finish(tx, request(transition, Lease::Keep, None), outcome).await
}

async fn finish(
    mut tx: Tx<'_>,
    request: Request<'_>,
    outcome: Prepared,
) -> Result<Prepared, AppError> {
    match store::transition(&mut tx, request).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(outcome)
        }
        Err(TransitionError::Db(e)) => Err(e.into()),
        Err(_) => Ok(Prepared::Lost),
    }
}

/// Stores the provider's reference for a placed call (e.g. its room).
pub async fn placed(
    db: &Db,
    attempt_id: i64,
    provider: &str,
    reference: &str,
) -> Result<(), AppError> {
    sqlx::query("UPDATE call_attempts SET provider = $1, provider_ref = $2 WHERE id = $3")
        .bind(provider)
        .bind(reference)
        .bind(attempt_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// What became of a call, as the provider or the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The debtor picked up.
    Answered,
    /// The conversation ended; the outcome in words.
    Completed {
        outcome: String,
    },
    NoAnswer,
    Busy,
    /// The call could not be placed or broke off; `retry` when another attempt makes sense.
    Failed {
        reason: String,
        retry: bool,
    },
    /// Nobody reported on the call in time.
    TimedOut,
}

/// Applies `event` to the reminder's current attempt at `now`, in its own transaction.
pub async fn report(
    db: &Db,
    org_id: i64,
    reminder_id: i64,
    event: CallEvent,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Change, TransitionError> {
    let profile = profile_of(db, org_id)
        .await
        .map_err(|_| TransitionError::NotFound)?;
    let mut tx = db.begin().await?;
    if !store::lock(&mut tx, org_id, reminder_id).await? {
        return Err(TransitionError::NotFound);
    }
    let row = store::get(&mut tx, org_id, reminder_id)
        .await?
        .ok_or(TransitionError::NotFound)?;
    let attempt_id = latest_attempt(&mut tx, org_id, reminder_id).await?;
    let (_, change) = report_in(
        &mut tx,
        &profile,
        Reported {
            row,
            attempt_id,
            details: None,
        },
        &event,
        actor,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(change)
}

/// The reminder's latest call attempt, if it was ever dialled.
pub async fn latest_attempt(
    tx: &mut Conn,
    org_id: i64,
    reminder_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM call_attempts WHERE reminder_id = $1 AND org_id = $2 \
         ORDER BY attempt_no DESC LIMIT 1",
    )
    .bind(reminder_id)
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await
}

/// The reminder's transition for `event`, what it does to the lease, and the attempt's status
/// afterwards.
pub fn plan(
    event: &CallEvent,
    profile: &BusinessProfile,
    now: DateTime<Utc>,
) -> (Transition, Lease, &'static str) {
    let minutes = |m: u32| Duration::minutes(i64::from(m));
    match event {
        CallEvent::Answered => (
            Transition::Answered,
            Lease::Until(now + minutes(profile.agent_timeout_minutes)),
            "answered",
        ),
        CallEvent::Completed { outcome } => (
            Transition::Completed {
                outcome: outcome.clone(),
            },
            Lease::Keep,
            "completed",
        ),
        CallEvent::NoAnswer => (
            Transition::NoAnswer {
                next_at: now + minutes(profile.retry_no_answer_minutes),
            },
            Lease::Keep,
            "no_answer",
        ),
        CallEvent::Busy => (
            Transition::NoAnswer {
                next_at: now + minutes(profile.retry_busy_minutes),
            },
            Lease::Keep,
            "no_answer",
        ),
        CallEvent::Failed { reason, .. } => (
            Transition::CallFailed {
                reason: reason.clone(),
            },
            Lease::Keep,
            "failed",
        ),
        CallEvent::TimedOut => (Transition::TimedOut, Lease::Keep, "timed_out"),
    }
}

/// Which reminder and attempt a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported<'a> {
    /// The reminder as it stands, read in the transaction that holds its lock.
    pub row: Row,
    pub attempt_id: Option<i64>,
    /// What the agent said about the call, stored on the attempt with its status.
    pub details: Option<&'a AttemptDetails>,
}

/// The conversation's particulars, as the agent reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptDetails {
    pub duration_seconds: Option<i64>,
    /// The customer's response (`promise_to_pay`, …).
    pub response: String,
    pub notes: String,
    /// The promised payment date (`YYYY-MM-DD`), or empty.
    pub promised_date: String,
    pub callback_at: Option<i64>,
    /// Whether the debtor was reached (a wrong number reached somebody else).
    pub conversation: bool,
}

/// [`report`] inside the caller's transaction (which holds the reminder's lock and read its
/// row): the reminder's transition, its attempt's status (and details), and the retry of a
/// passing failure. Returns the row after.
pub async fn report_in(
    tx: &mut Conn,
    profile: &BusinessProfile,
    reported: Reported<'_>,
    event: &CallEvent,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Row, Change), TransitionError> {
    let mut reports = Reports::default();
    let done = reports.report(profile, reported, event, actor, now)?;
    reports.flush(tx).await?;
    Ok(done)
}

/// Reports on calls decided in memory and not yet written: the reminders' transitions
/// ([`store::Pending`]) and each attempt's status and particulars, several reports about one
/// attempt merged. [`Reports::flush`] writes them all with one statement per table.
#[derive(Debug, Default)]
pub struct Reports {
    reminders: store::Pending,
    attempts: Vec<AttemptWrite>,
    /// Index in `attempts` by attempt id.
    at: std::collections::HashMap<i64, usize>,
}

/// What reports did to one call attempt.
#[derive(Debug, Clone)]
struct AttemptWrite {
    id: i64,
    status: &'static str,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    /// Kept unless empty.
    outcome: String,
    reason: String,
    details: Option<AttemptDetails>,
}

impl AttemptWrite {
    /// This write followed by `later`, as one.
    fn then(&mut self, later: AttemptWrite) {
        self.status = later.status;
        self.answered_at = later.answered_at.or(self.answered_at);
        self.ended_at = later.ended_at.or(self.ended_at);
        if !later.outcome.is_empty() {
            self.outcome = later.outcome;
        }
        if !later.reason.is_empty() {
            self.reason = later.reason;
        }
        if later.details.is_some() {
            self.details = later.details;
        }
    }
}

const ATTEMPT_COLUMNS: [(&str, &str); 13] = [
    ("id", "BIGINT"),
    ("status", "TEXT"),
    ("answered_at", "BIGINT"),
    ("ended_at", "BIGINT"),
    ("outcome", "TEXT"),
    ("reason", "TEXT"),
    ("has_details", "BIGINT"),
    ("conversation", "BIGINT"),
    ("duration_seconds", "BIGINT"),
    ("response", "TEXT"),
    ("notes", "TEXT"),
    ("promised_date", "TEXT"),
    ("callback_at", "BIGINT"),
];

impl Reports {
    /// [`report_in`], kept to be written by [`Reports::flush`]. A refused report keeps
    /// nothing.
    pub fn report(
        &mut self,
        profile: &BusinessProfile,
        reported: Reported<'_>,
        event: &CallEvent,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(Row, Change), TransitionError> {
        let mut this = Reports::default();
        let done = this.decide(profile, reported, event, actor, now)?;
        self.absorb(this);
        Ok(done)
    }

    fn decide(
        &mut self,
        profile: &BusinessProfile,
        reported: Reported<'_>,
        event: &CallEvent,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(Row, Change), TransitionError> {
        let Reported {
            row,
            attempt_id,
            details,
        } = reported;
        let (org_id, reminder_id) = (row.org_id, row.id);
        let minutes = |m: u32| Duration::minutes(i64::from(m));
        let (transition, lease, attempt_status) = plan(event, profile, now);
        let request = Request {
            lease,
            attempt_id,
            // The monitor's verdict stands only if nothing was heard meanwhile.
            require_expired: *event == CallEvent::TimedOut,
            ..Request::new(org_id, reminder_id, transition, actor, now)
        };
        let (mut row, change) = self.reminders.transition(row, request, Vec::new())?;
        if let Some(attempt_id) = attempt_id {
            let (outcome, reason) = match event {
                CallEvent::Completed { outcome } => (outcome.as_str(), ""),
                CallEvent::Failed { reason, .. } => ("", reason.as_str()),
                CallEvent::TimedOut => ("", super::machine::TIMEOUT_REASON),
                CallEvent::Busy => ("", "busy"),
                CallEvent::NoAnswer => ("", "no answer"),
                CallEvent::Answered => ("", ""),
            };
            let answered = *event == CallEvent::Answered;
            self.attempt(AttemptWrite {
                id: attempt_id,
                status: attempt_status,
                answered_at: answered.then_some(to_millis(now)),
                ended_at: (!answered).then_some(to_millis(now)),
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
                details: details.cloned(),
            });
        }
        // A call that failed for a passing reason is tried again while attempts remain.
        if let CallEvent::Failed { retry: true, .. } = event
            && row.status() == Status::Failed
            && row.attempts < row.max_attempts
        {
            let retry = Transition::Retry {
                at: now + minutes(profile.retry_failed_minutes),
            };
            let request = Request {
                attempt_id,
                ..Request::new(org_id, reminder_id, retry, actor, now)
            };
            row = self.reminders.transition(row, request, Vec::new())?.0;
        }
        Ok((row, change))
    }

    fn attempt(&mut self, write: AttemptWrite) {
        match self.at.get(&write.id) {
            Some(&n) => self.attempts[n].then(write),
            None => {
                self.at.insert(write.id, self.attempts.len());
                self.attempts.push(write);
            }
        }
    }

    /// Takes in what `other` kept, as if its reports came after this one's.
    pub fn absorb(&mut self, other: Reports) {
        self.reminders.absorb(other.reminders);
        for write in other.attempts {
            self.attempt(write);
        }
    }

    /// Writes everything kept in `tx`, and forgets it.
    pub async fn flush(&mut self, tx: &mut Conn) -> Result<(), sqlx::Error> {
        let mut script = crate::db::Script::new(crate::db::Dialect::of(tx));
        self.write_into(&mut script);
        script.run(tx).await
    }

    /// Adds the statements writing everything kept to `script`, and forgets it.
    pub fn write_into(&mut self, script: &mut crate::db::Script) {
        self.reminders.write_into(script);
        let attempts = std::mem::take(&mut self.attempts);
        self.at.clear();
        if attempts.is_empty() {
            return;
        }
        // A wrong number reached somebody, but not the debtor: no conversation about the
        // debt, whatever was answered.
        let sql = format!(
            "WITH v AS ({}) \
             UPDATE call_attempts SET status = v.status, \
               connected = CASE WHEN v.has_details = 1 AND v.conversation = 0 THEN 0 \
                 WHEN v.answered_at IS NOT NULL THEN 1 ELSE call_attempts.connected END, \
               answered_at = COALESCE(v.answered_at, call_attempts.answered_at), \
               ended_at = COALESCE(v.ended_at, call_attempts.ended_at), \
               outcome = CASE WHEN v.outcome = '' THEN call_attempts.outcome ELSE v.outcome END, \
               reason = CASE WHEN v.reason = '' THEN call_attempts.reason ELSE v.reason END, \
               duration_seconds = CASE WHEN v.has_details = 1 \
                 THEN COALESCE(v.duration_seconds, call_attempts.duration_seconds) \
                 ELSE call_attempts.duration_seconds END, \
               response = CASE WHEN v.has_details = 1 THEN v.response ELSE call_attempts.response END, \
               notes = CASE WHEN v.has_details = 1 THEN v.notes ELSE call_attempts.notes END, \
               promised_date = CASE WHEN v.has_details = 1 \
                 THEN v.promised_date ELSE call_attempts.promised_date END, \
               callback_at = CASE WHEN v.has_details = 1 \
                 THEN v.callback_at ELSE call_attempts.callback_at END \
             FROM v WHERE call_attempts.id = v.id",
            script.dialect().json_rows(&ATTEMPT_COLUMNS)
        );
        #[derive(serde::Serialize)]
        struct Written<'a> {
            id: i64,
            status: &'a str,
            answered_at: Option<i64>,
            ended_at: Option<i64>,
            outcome: &'a str,
            reason: &'a str,
            has_details: i64,
            conversation: i64,
            duration_seconds: Option<i64>,
            response: &'a str,
            notes: &'a str,
            promised_date: &'a str,
            callback_at: Option<i64>,
        }
        let rows: Vec<Written> = attempts
            .iter()
            .map(|write| {
                let details = write.details.as_ref();
                Written {
                    id: write.id,
                    status: write.status,
                    answered_at: write.answered_at,
                    ended_at: write.ended_at,
                    outcome: &write.outcome,
                    reason: &write.reason,
                    has_details: i64::from(details.is_some()),
                    conversation: i64::from(details.is_some_and(|d| d.conversation)),
                    duration_seconds: details.and_then(|d| d.duration_seconds),
                    response: details.map_or("", |d| d.response.as_str()),
                    notes: details.map_or("", |d| d.notes.as_str()),
                    promised_date: details.map_or("", |d| d.promised_date.as_str()),
                    callback_at: details.and_then(|d| d.callback_at),
                }
            })
            .collect();
        script.statement(&sql).json(&rows);
    }
}

/// What the monitor did in one sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Claims given back (never dialled).
    pub released: u64,
    /// Dialled calls failed with [`super::machine::TIMEOUT_REASON`].
    pub timed_out: u64,
}

/// Releases expired claims that were never dialled, and times out dialled calls whose agent
/// stayed silent past the deadline. A dialled call is never dialled again by this.
pub async fn sweep_expired(db: &Db, instance: &str, now: DateTime<Utc>) -> Result<Swept, AppError> {
    let actor = Actor::Scheduler(instance.to_owned());
    let mut swept = Swept::default();
    let mut tx = db.begin().await?;
    let rows = store::expired(&mut tx, now, 200).await?;
    drop(tx);
    for row in rows {
        if row.dialled != 0 {
            match report(db, row.org_id, row.id, CallEvent::TimedOut, &actor, now).await {
                Ok(_) => swept.timed_out += 1,
                Err(TransitionError::Db(e)) => return Err(e.into()),
                Err(_) => {}
            }
        } else {
            let mut tx = db.begin().await?;
            let request = Request {
                // Only if it is still the expired claim (not claimed again meanwhile).
                require_expired: true,
                ..Request::new(row.org_id, row.id, Transition::Release, &actor, now)
            };
            match store::transition(&mut tx, request).await {
                Ok((_, _)) => {
                    tx.commit().await?;
                    swept.released += 1;
                }
                Err(TransitionError::Db(e)) => return Err(e.into()),
                Err(_) => {}
            }
        }
    }
    Ok(swept)
}
