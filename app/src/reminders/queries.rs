//! The Reminders page's reads and a person's actions on a reminder. Every query filters by
//! the member's organization; actions go through the state machine like the engine's.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::machine::{Status, Transition};
use super::profile::SequenceStep;
use super::service::profile_of;
use super::store::{self, Actor, Request, TransitionError};
use super::views::{
    AttemptView, HistoryEntry, REMINDER_PAGE_SIZE, ReminderDetail, ReminderFilter, ReminderPage,
    ReminderRow,
};
use super::zones::debtor_zone;
use crate::accounts::service::{Member, audit};
use crate::db::time::from_millis;
use crate::db::{Conn, Db};
use crate::error::AppError;
use crate::receivables::model::{Currency, Money, NumberStyle};

#[derive(sqlx::FromRow)]
struct ListRow {
    id: i64,
    status: String,
    customer_id: i64,
    customer_name: String,
    invoice_id: i64,
    invoice_number: String,
    balance_minor: i64,
    currency: String,
    step_offset_days: i64,
    attempts: i64,
    max_attempts: i64,
    due_at: i64,
    last_reason: String,
    timezone: String,
    country: String,
    region: String,
}

const LIST_SELECT: &str = "SELECT r.id, r.status, r.customer_id, c.display_name AS customer_name, \
     r.invoice_id, i.number AS invoice_number, i.balance_minor, i.currency, r.step_offset_days, \
     r.attempts, r.max_attempts, r.due_at, r.last_reason, c.timezone, \
     c.billing_country AS country, c.billing_state AS region \
     FROM reminders r JOIN invoices i ON i.id = r.invoice_id JOIN customers c ON c.id = r.customer_id";

/// The statuses a reminder can still call from (every status that is not final), for SQL.
pub(crate) const OPEN: &str = "('pending', 'in_progress', 'processing', 'failed', 'paused')";

/// How the organization reads times and amounts.
pub(crate) struct Locale {
    pub zone: Tz,
    pub style: NumberStyle,
}

impl Locale {
    pub(crate) async fn of(db: &Db, org_id: i64) -> Result<Self, AppError> {
        let (timezone, locale): (String, String) =
            sqlx::query_as("SELECT timezone, locale FROM organizations WHERE id = $1")
                .bind(org_id)
                .fetch_one(db.pool())
                .await?;
        Ok(Self {
            zone: timezone.parse().unwrap_or(Tz::UTC),
            style: NumberStyle::for_locale(&locale),
        })
    }

    /// An instant (Unix milliseconds) on the organization's clock.
    pub(crate) fn time(&self, millis: i64) -> String {
        from_millis(millis)
            .with_timezone(&self.zone)
            .format("%a %-d %b %H:%M %Z")
            .to_string()
    }

    /// An instant to the second, without the weekday.
    pub(crate) fn time_seconds(&self, millis: i64) -> String {
        from_millis(millis)
            .with_timezone(&self.zone)
            .format("%-d %b %H:%M:%S")
            .to_string()
    }

    pub(crate) fn money(&self, minor: i64, currency: &str) -> String {
        let currency = Currency::parse(currency).unwrap_or_else(|_| Currency::unknown());
        Money::new(minor, currency).format(self.style)
    }

    /// A reminder as the lists show it.
    fn reminder_row(&self, r: ListRow) -> ReminderRow {
        let at = from_millis(r.due_at);
        let next_debtor = debtor_zone(&r.timezone, &r.country, &r.region)
            .ok()
            .and_then(|zone| zone.zones().first().copied())
            .map(|tz| {
                at.with_timezone(&tz)
                    .format("%a %-d %b %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_default();
        ReminderRow {
            id: r.id,
            status: r.status,
            customer_id: r.customer_id,
            customer_name: r.customer_name,
            invoice_id: r.invoice_id,
            invoice_number: r.invoice_number,
            amount: self.money(r.balance_minor, &r.currency),
            step: SequenceStep {
                offset_days: i32::try_from(r.step_offset_days).unwrap_or_default(),
                channel: super::profile::Channel::Call,
            }
            .describe(),
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            next_debtor,
            next_org: self.time(r.due_at),
            reason: r.last_reason,
        }
    }
}

fn cursor(after: Option<&str>) -> Option<(i64, i64)> {
    let (due, id) = after?.split_once(':')?;
    Some((due.parse().ok()?, id.parse().ok()?))
}

/// A page of the organization's reminders, next due first.
pub async fn list_reminders(
    db: &Db,
    member: Member,
    filter: &ReminderFilter,
) -> Result<ReminderPage, AppError> {
    let locale = Locale::of(db, member.org_id).await?;
    let status_clause = match filter.status.as_str() {
        "" | "open" => format!("AND r.status IN {OPEN}"),
        "all" => String::new(),
        s if Status::parse(s).is_some() => "AND r.status = $4".to_owned(),
        _ => return Err(AppError::BadRequest),
    };
    let (due, id) = cursor(filter.after.as_deref()).unwrap_or((i64::MIN, i64::MIN));
    let sql = format!(
        "{LIST_SELECT} WHERE r.org_id = $1 {status_clause} AND (r.due_at > $2 OR (r.due_at = $2 AND r.id > $3)) \
         ORDER BY r.due_at, r.id LIMIT {}",
        REMINDER_PAGE_SIZE + 1
    );
    let mut query = sqlx::query_as::<_, ListRow>(&sql)
        .bind(member.org_id)
        .bind(due)
        .bind(id);
    if status_clause.contains("$4") {
        query = query.bind(&filter.status);
    }
    let mut rows = query.fetch_all(db.pool()).await?;
    let next = (rows.len() > REMINDER_PAGE_SIZE).then(|| {
        rows.truncate(REMINDER_PAGE_SIZE);
        rows.last()
            .map(|r| format!("{}:{}", r.due_at, r.id))
            .unwrap_or_default()
    });
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM reminders WHERE org_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?;
    let calls_enabled = profile_of(db, member.org_id).await?.calls_enabled;
    Ok(ReminderPage {
        rows: rows.into_iter().map(|r| locale.reminder_row(r)).collect(),
        next,
        counts,
        calls_enabled,
    })
}

/// One reminder with its history and attempts.
pub async fn reminder_detail(db: &Db, member: Member, id: i64) -> Result<ReminderDetail, AppError> {
    let locale = Locale::of(db, member.org_id).await?;
    let row: ListRow = sqlx::query_as(&format!("{LIST_SELECT} WHERE r.id = $1 AND r.org_id = $2"))
        .bind(id)
        .bind(member.org_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(AppError::NotFound)?;
    let users: Vec<(i64, String)> = sqlx::query_as(
        "SELECT u.id, u.display_name FROM users u JOIN memberships m ON m.user_id = u.id \
         WHERE m.org_id = $1",
    )
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?;
    let actor = |label: &str| -> String {
        match label.split_once(':') {
            Some(("scheduler", _)) => "Scheduler".to_owned(),
            Some(("user", id)) => id
                .parse::<i64>()
                .ok()
                .and_then(|id| users.iter().find(|(u, _)| *u == id))
                .map_or_else(|| "A former member".to_owned(), |(_, name)| name.clone()),
            _ if label == "generator" => "Duecall (rules)".to_owned(),
            _ if label == "webhook" => "Call report".to_owned(),
            _ => label.to_owned(),
        }
    };
    let history = store::history(db.pool(), member.org_id, id)
        .await?
        .into_iter()
        .map(|e| HistoryEntry {
            at: locale.time(e.at),
            transition: e.transition.replace('_', " "),
            from: e.from_status,
            to: e.to_status,
            reason: match e.param_at {
                Some(at) if e.reason.is_empty() => {
                    format!("until {}", locale.time(at))
                }
                Some(at) => format!("{} (until {})", e.reason, locale.time(at)),
                None => e.reason,
            },
            actor: actor(&e.actor),
        })
        .collect();
    let attempts = sqlx::query_as::<_, (i64, i64, i64, String, String, String, String, String)>(
        "SELECT id, attempt_no, dialled_at, phone_e164, status, outcome, reason, provider \
         FROM call_attempts WHERE reminder_id = $1 AND org_id = $2 ORDER BY attempt_no",
    )
    .bind(id)
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(
        |(attempt_id, attempt_no, at, phone, status, outcome, reason, provider)| AttemptView {
            id: attempt_id,
            attempt_no,
            dialled_at: locale.time(at),
            phone,
            status,
            outcome,
            reason,
            provider,
        },
    )
    .collect();
    let status = Status::parse(&row.status).unwrap_or(Status::Cancelled);
    let mut actions: Vec<String> = Vec::new();
    let can_call_now = match status {
        Status::Pending | Status::Paused => true,
        Status::Failed => row.attempts < row.max_attempts,
        _ => false,
    };
    if can_call_now {
        actions.push("call_now".into());
    }
    match status {
        Status::Pending | Status::Failed => actions.push("pause".into()),
        Status::Paused => actions.push("resume".into()),
        _ => {}
    }
    if matches!(status, Status::Pending | Status::Failed | Status::Paused) {
        actions.push("cancel".into());
    }
    actions.push("dispute".into());
    actions.push("opt_out".into());
    let locale = Locale::of(db, member.org_id).await?;
    let deliveries =
        crate::calls::queries::deliveries(db, &locale, member.org_id, "reminder_id", id).await?;
    Ok(ReminderDetail {
        row: locale.reminder_row(row),
        history,
        attempts,
        actions,
        deliveries,
    })
}

/// A person's action on reminder `id`: `call_now`, `pause`, `resume`, `cancel`, `dispute`
/// (with `reason`) or `opt_out`. Each still obeys every rule: "call now" only makes the
/// reminder due; the pre-call verification decides.
pub async fn act(
    db: &Db,
    member: Member,
    id: i64,
    action: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    member.require_write()?;
    let actor = Actor::User(member.user_id);
    let mut tx = db.begin().await?;
    if !store::lock(&mut tx, member.org_id, id).await? {
        return Err(AppError::NotFound);
    }
    let row = store::get(&mut tx, member.org_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let apply = |transition: Transition| Request::new(member.org_id, id, transition, &actor, now);
    let refused = |e: TransitionError| match e {
        TransitionError::Db(e) => AppError::from(e),
        TransitionError::NotFound => AppError::NotFound,
        other => AppError::Conflict(format!("Not possible now: {other}.")),
    };
    match action {
        "call_now" => match row.status() {
            Status::Pending => {
                sqlx::query("UPDATE reminders SET due_at = $1, updated_at = $1 WHERE id = $2 AND org_id = $3")
                    .bind(crate::db::time::to_millis(now))
                    .bind(id)
                    .bind(member.org_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Status::Paused => {
                store::transition(&mut tx, apply(Transition::Resume))
                    .await
                    .map_err(refused)?;
            }
            Status::Failed => {
                store::transition(&mut tx, apply(Transition::Retry { at: now }))
                    .await
                    .map_err(refused)?;
            }
            _ => {
                return Err(AppError::Conflict(
                    "This reminder cannot be called now.".into(),
                ));
            }
        },
        "pause" => {
            store::transition(&mut tx, apply(Transition::Pause))
                .await
                .map_err(refused)?;
        }
        "resume" => {
            store::transition(&mut tx, apply(Transition::Resume))
                .await
                .map_err(refused)?;
        }
        "cancel" => {
            let reason = if reason.trim().is_empty() {
                "Cancelled by a person."
            } else {
                reason.trim()
            };
            store::transition(
                &mut tx,
                apply(Transition::Cancel {
                    reason: reason.to_owned(),
                }),
            )
            .await
            .map_err(refused)?;
        }
        "dispute" => {
            let reason = reason.trim();
            if reason.chars().count() > 500 {
                return Err(AppError::invalid("reason", "At most 500 characters."));
            }
            sqlx::query("UPDATE invoices SET disputed = 1, dispute_reason = $1 WHERE id = $2 AND org_id = $3")
                .bind(reason)
                .bind(row.invoice_id)
                .bind(member.org_id)
                .execute(&mut *tx)
                .await?;
            let why = if reason.is_empty() {
                "The invoice is disputed.".to_owned()
            } else {
                format!("The invoice is disputed: {reason}")
            };
            cancel_open(
                &mut tx,
                member.org_id,
                Scope::Invoice(row.invoice_id),
                &why,
                &actor,
                now,
            )
            .await?;
            audit(
                &mut tx,
                member.org_id,
                Some(member.user_id),
                "invoice.disputed",
                &row.invoice_id.to_string(),
            )
            .await?;
        }
        "opt_out" => {
            sqlx::query("UPDATE customers SET opted_out = 1 WHERE id = $1 AND org_id = $2")
                .bind(row.customer_id)
                .bind(member.org_id)
                .execute(&mut *tx)
                .await?;
            cancel_open(
                &mut tx,
                member.org_id,
                Scope::Customer(row.customer_id),
                "The customer opted out of calls.",
                &actor,
                now,
            )
            .await?;
            audit(
                &mut tx,
                member.org_id,
                Some(member.user_id),
                "customer.opted_out",
                &row.customer_id.to_string(),
            )
            .await?;
        }
        _ => return Err(AppError::BadRequest),
    }
    tx.commit().await?;
    Ok(())
}

/// Whose reminders a bulk change covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Invoice(i64),
    Customer(i64),
}

impl Scope {
    fn condition(self) -> (&'static str, i64) {
        match self {
            Self::Invoice(id) => ("invoice_id = $2", id),
            Self::Customer(id) => ("customer_id = $2", id),
        }
    }
}

/// Cancels every reminder of an invoice or customer that is not being dialled.
pub async fn cancel_open(
    tx: &mut Conn,
    org_id: i64,
    scope: Scope,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    let cancel = Transition::Cancel {
        reason: reason.to_owned(),
    };
    move_open(
        tx,
        org_id,
        scope,
        "'pending', 'failed', 'paused'",
        cancel,
        actor,
        now,
    )
    .await
}

/// Pauses every waiting reminder of an invoice or customer.
pub async fn pause_open(
    tx: &mut Conn,
    org_id: i64,
    scope: Scope,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    move_open(
        tx,
        org_id,
        scope,
        "'pending', 'failed'",
        Transition::Pause,
        actor,
        now,
    )
    .await
}

/// Applies `transition` to every reminder in `scope` whose status is in `statuses` (an SQL
/// list), or that is claimed but not dialled; returns how many moved.
async fn move_open(
    tx: &mut Conn,
    org_id: i64,
    scope: Scope,
    statuses: &'static str,
    transition: Transition,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    let (condition, value) = scope.condition();
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        // `+org_id`: the organization is a check here, never the index to walk (that would
        // read every open reminder of the organization to find one invoice's).
        "SELECT id FROM reminders WHERE +org_id = $1 AND {condition} \
           AND (status IN ({statuses}) OR (status = 'in_progress' AND dialled = 0))"
    ))
    .bind(org_id)
    .bind(value)
    .fetch_all(&mut *tx)
    .await?;
    let mut moved = 0;
    for id in ids {
        let request = Request::new(org_id, id, transition.clone(), actor, now);
        match store::transition(tx, request).await {
            Ok(_) => moved += 1,
            Err(TransitionError::Refused(_)) => {}
            Err(TransitionError::Db(e)) => return Err(e.into()),
            Err(other) => return Err(AppError::internal("moving reminders", other)),
        }
    }
    Ok(moved)
}
