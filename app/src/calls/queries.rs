//! The calls pages' reads and the "needs a human" queue's actions. Every query is limited to
//! the member's organization.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::views::{
    CALL_PAGE_SIZE, CallDetail, CallFilter, CallKpis, CallPage, CallRow, DeliveryView, LiveChange,
    OUTCOMES, REVIEW_ACTIONS, ReviewItem, TimelineEntry, duration_label,
};
use crate::accounts::service::{Member, audit};
use crate::db::Db;
use crate::db::time::to_millis;
use crate::error::AppError;
use crate::reminders::machine::Transition;
use crate::reminders::queries::{Locale, Scope, cancel_open};
use crate::reminders::store::{self, Actor, Request, TransitionError};
use crate::reminders::verify::local_day_start;

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    reminder_id: i64,
    attempt_no: i64,
    customer_id: i64,
    customer_name: String,
    invoice_id: i64,
    invoice_number: String,
    currency: String,
    status: String,
    response: String,
    reason: String,
    dialled_at: i64,
    duration_seconds: Option<i64>,
    provider: String,
    promised_date: String,
    context: String,
}

const SELECT: &str = "SELECT a.id, a.reminder_id, a.attempt_no, a.customer_id, \
     c.display_name AS customer_name, a.invoice_id, i.number AS invoice_number, i.currency, \
     a.status, a.response, a.reason, a.dialled_at, a.duration_seconds, a.provider, \
     a.promised_date, a.context \
     FROM call_attempts a JOIN invoices i ON i.id = a.invoice_id JOIN customers c ON c.id = a.customer_id";

/// The balance the agent was told about (kept with the attempt).
fn balance_at_call(context: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(context)
        .ok()?
        .get("balance_minor")?
        .as_i64()
}

/// How a call ended, for the list: the customer's response, or the way the line ended.
fn outcome(status: &str, response: &str, reason: &str) -> String {
    if !response.is_empty() {
        return response.to_owned();
    }
    match status {
        "dialling" | "answered" => "live",
        "no_answer" if reason == "busy" => "busy",
        "no_answer" => "no_answer",
        "failed" => "failed",
        "timed_out" => "timed_out",
        _ => "",
    }
    .to_owned()
}

impl Row {
    fn view(self, locale: &Locale) -> CallRow {
        let amount = balance_at_call(&self.context)
            .map(|minor| locale.money(minor, &self.currency))
            .unwrap_or_default();
        CallRow {
            id: self.id,
            reminder_id: self.reminder_id,
            attempt_no: self.attempt_no,
            customer_id: self.customer_id,
            customer_name: self.customer_name,
            invoice_id: self.invoice_id,
            invoice_number: self.invoice_number,
            amount,
            outcome: outcome(&self.status, &self.response, &self.reason),
            status: self.status,
            placed: locale.time(self.dialled_at),
            duration: duration_label(self.duration_seconds),
            simulated: self.provider == "simulator",
            promised_date: self.promised_date,
        }
    }
}

enum Bind {
    Int(i64),
    Text(String),
}

fn cursor(after: Option<&str>) -> Option<(i64, i64)> {
    let (at, id) = after?.split_once(':')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

fn date(text: &str, field: &str) -> Result<Option<NaiveDate>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| AppError::invalid(field, "a date like 2026-03-02"))
}

/// A page of the organization's calls, newest first.
pub async fn list_calls(
    db: &Db,
    member: Member,
    filter: &CallFilter,
) -> Result<CallPage, AppError> {
    let locale = Locale::of(db, member.org_id).await?;
    let mut clauses = vec!["a.org_id = $1".to_owned()];
    let mut binds = vec![Bind::Int(member.org_id)];
    let next = |bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    match filter.outcome.as_str() {
        "" => {}
        "live" => clauses.push("a.status IN ('dialling', 'answered')".into()),
        "busy" => clauses.push("a.status = 'no_answer' AND a.reason = 'busy'".into()),
        "no_answer" => clauses.push(
            "(a.response = 'no_answer' OR (a.status = 'no_answer' AND a.response = '' AND a.reason <> 'busy'))"
                .into(),
        ),
        "failed" => clauses.push("a.status = 'failed' AND a.response = ''".into()),
        "timed_out" => clauses.push("a.status = 'timed_out'".into()),
        response if OUTCOMES.iter().any(|(o, _)| *o == response) => {
            let mark = next(Bind::Text(response.to_owned()), &mut binds);
            clauses.push(format!("a.response = {mark}"));
        }
        _ => return Err(AppError::invalid("outcome", "an outcome from the list")),
    }
    if let Some(from) = date(&filter.from, "from")? {
        let mark = next(
            Bind::Int(to_millis(local_day_start(locale.zone, from))),
            &mut binds,
        );
        clauses.push(format!("a.dialled_at >= {mark}"));
    }
    if let Some(to) = date(&filter.to, "to")? {
        let end = local_day_start(locale.zone, to + Duration::days(1));
        let mark = next(Bind::Int(to_millis(end)), &mut binds);
        clauses.push(format!("a.dialled_at < {mark}"));
    }
    let mut customer_name = None;
    if !filter.customer.trim().is_empty() {
        let id: i64 = filter
            .customer
            .trim()
            .parse()
            .map_err(|_| AppError::invalid("customer", "a customer from the list"))?;
        customer_name = Some(
            sqlx::query_scalar::<_, String>(
                "SELECT display_name FROM customers WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(member.org_id)
            .fetch_optional(db.pool())
            .await?
            .ok_or(AppError::NotFound)?,
        );
        let mark = next(Bind::Int(id), &mut binds);
        clauses.push(format!("a.customer_id = {mark}"));
    }
    if let Some((at, id)) = cursor(filter.after.as_deref()) {
        let at_mark = next(Bind::Int(at), &mut binds);
        let id_mark = next(Bind::Int(id), &mut binds);
        clauses.push(format!(
            "(a.dialled_at < {at_mark} OR (a.dialled_at = {at_mark} AND a.id < {id_mark}))"
        ));
    }
    let sql = format!(
        "{SELECT} WHERE {} ORDER BY a.dialled_at DESC, a.id DESC LIMIT {}",
        clauses.join(" AND "),
        CALL_PAGE_SIZE + 1
    );
    let query = binds
        .into_iter()
        .fold(sqlx::query_as::<_, Row>(&sql), |q, bind| match bind {
            Bind::Int(v) => q.bind(v),
            Bind::Text(v) => q.bind(v),
        });
    let mut rows = query.fetch_all(db.pool()).await?;
    let next_page = (rows.len() > CALL_PAGE_SIZE).then(|| {
        rows.truncate(CALL_PAGE_SIZE);
        let last = rows.last().expect("a full page has a last row");
        format!("{}:{}", last.dialled_at, last.id)
    });
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND status IN ('dialling', 'answered')",
    )
    .bind(member.org_id)
    .fetch_one(db.pool())
    .await?;
    Ok(CallPage {
        rows: rows.into_iter().map(|r| r.view(&locale)).collect(),
        next: next_page,
        live,
        customer_name,
    })
}

#[derive(sqlx::FromRow)]
struct DetailExtra {
    phone_e164: String,
    reason: String,
    notes: String,
    callback_at: Option<i64>,
    provider_ref: String,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    received_at: i64,
    source: String,
    event_type: String,
    status_code: i64,
    result: String,
    deliveries: i64,
    headers: String,
    body: String,
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| json.to_owned())
}

/// Webhook deliveries about a reminder (or one of its attempts), oldest first.
pub(crate) async fn deliveries(
    db: &Db,
    locale: &Locale,
    org_id: i64,
    column: &'static str,
    id: i64,
) -> Result<Vec<DeliveryView>, AppError> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT id, received_at, source, event_type, status_code, result, deliveries, headers, body \
         FROM webhook_events WHERE org_id = $1 AND {column} = $2 ORDER BY id"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|d| DeliveryView {
            id: d.id,
            received: locale.time_seconds(d.received_at),
            source: d.source,
            event_type: d.event_type,
            status_code: d.status_code,
            result: d.result,
            deliveries: d.deliveries,
            headers: pretty(&d.headers),
            body: pretty(&d.body),
        })
        .collect())
}

/// One call with its timeline, what the agent was given, and the reports received about it.
pub async fn call_detail(db: &Db, member: Member, id: i64) -> Result<CallDetail, AppError> {
    let locale = Locale::of(db, member.org_id).await?;
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE a.id = $1 AND a.org_id = $2"))
        .bind(id)
        .bind(member.org_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(AppError::NotFound)?;
    let extra: DetailExtra = sqlx::query_as(
        "SELECT phone_e164, reason, notes, callback_at, provider_ref, answered_at, ended_at \
         FROM call_attempts WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(member.org_id)
    .fetch_one(db.pool())
    .await?;
    let context: serde_json::Value = serde_json::from_str(&row.context).unwrap_or_default();
    let text = |key: &str| {
        context
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let events = store::history(db.pool(), member.org_id, row.reminder_id).await?;
    let mut timeline: Vec<(i64, i64, TimelineEntry)> = events
        .into_iter()
        .filter(|e| e.attempt_id == Some(id))
        .map(|e| {
            let title = match e.transition.as_str() {
                "dial" => "Dialled".to_owned(),
                "answered" => "Answered".to_owned(),
                "completed" => "Conversation ended".to_owned(),
                "no_answer" => "Not answered".to_owned(),
                "call_failed" => "Call failed".to_owned(),
                "timed_out" => "Timed out".to_owned(),
                "retry" => "Retry planned".to_owned(),
                other => other.replace('_', " "),
            };
            let mut detail = e.reason.clone();
            if let Some(at) = e.param_at {
                if !detail.is_empty() {
                    detail.push_str(" — ");
                }
                detail.push_str(&format!("next attempt {}", locale.time(at)));
            }
            (
                e.at,
                e.id,
                TimelineEntry {
                    at: locale.time_seconds(e.at),
                    title,
                    detail,
                },
            )
        })
        .collect();
    let deliveries = deliveries(db, &locale, member.org_id, "attempt_id", id).await?;
    timeline.sort_by_key(|(at, id, _)| (*at, *id));
    let provider = row.provider.clone();
    let mut detail = CallDetail {
        phone: extra.phone_e164,
        reason: extra.reason,
        notes: extra.notes,
        callback_at: extra
            .callback_at
            .map(|at| locale.time(at))
            .unwrap_or_default(),
        opening: text("opening"),
        script: text("script"),
        language: text("language"),
        provider,
        provider_ref: extra.provider_ref,
        timeline: timeline.into_iter().map(|(_, _, e)| e).collect(),
        deliveries,
        row: row.view(&locale),
    };
    if let (Some(answered), Some(ended)) = (extra.answered_at, extra.ended_at)
        && detail.row.duration.is_empty()
    {
        detail.row.duration = duration_label(Some((ended - answered) / 1000));
    }
    Ok(detail)
}

#[derive(sqlx::FromRow)]
struct ReviewRow {
    invoice_id: i64,
    invoice_number: String,
    customer_id: i64,
    customer_name: String,
    balance_minor: i64,
    currency: String,
    review: String,
    review_note: String,
    review_at: Option<i64>,
    call_id: Option<i64>,
}

/// The invoices waiting for a person, oldest first.
pub async fn review_queue(db: &Db, member: Member) -> Result<Vec<ReviewItem>, AppError> {
    let locale = Locale::of(db, member.org_id).await?;
    let rows: Vec<ReviewRow> = sqlx::query_as(
        "SELECT i.id AS invoice_id, i.number AS invoice_number, i.customer_id, \
           c.display_name AS customer_name, i.balance_minor, i.currency, i.review, i.review_note, \
           i.review_at, (SELECT MAX(a.id) FROM call_attempts a WHERE a.invoice_id = i.id \
             AND a.org_id = i.org_id AND a.response IN ('dispute', 'already_paid')) AS call_id \
         FROM invoices i JOIN customers c ON c.id = i.customer_id \
         WHERE i.org_id = $1 AND i.review <> '' ORDER BY i.review_at, i.id LIMIT 500",
    )
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ReviewItem {
            amount: locale.money(r.balance_minor, &r.currency),
            invoice_id: r.invoice_id,
            invoice_number: r.invoice_number,
            customer_id: r.customer_id,
            customer_name: r.customer_name,
            kind: r.review,
            note: r.review_note,
            since: r.review_at.map(|at| locale.time(at)).unwrap_or_default(),
            call_id: r.call_id,
        })
        .collect())
}

/// A person settles a queue item (see [`REVIEW_ACTIONS`]).
pub async fn resolve_review(
    db: &Db,
    member: Member,
    invoice_id: i64,
    action: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    member.require_write()?;
    let profile = crate::reminders::service::profile_of(db, member.org_id).await?;
    let mut tx = db.begin().await?;
    // Write first (the lock), then read: see `store::lock`.
    let kind: Option<String> = sqlx::query_scalar(
        "UPDATE invoices SET review = review WHERE id = $1 AND org_id = $2 RETURNING review",
    )
    .bind(invoice_id)
    .bind(member.org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let kind = kind.ok_or(AppError::NotFound)?;
    if !REVIEW_ACTIONS
        .iter()
        .any(|(k, a, _)| *k == kind && *a == action)
    {
        return Err(AppError::Conflict(
            "That does not apply to this invoice any more.".into(),
        ));
    }
    let actor = Actor::User(member.user_id);
    let clear = |disputed: bool| {
        format!(
            "UPDATE invoices SET review = '', review_note = '', review_at = NULL{} \
             WHERE id = $1 AND org_id = $2",
            if disputed {
                ""
            } else {
                ", disputed = 0, dispute_reason = ''"
            }
        )
    };
    let keep_disputed = action == "upheld";
    sqlx::query(&clear(keep_disputed))
        .bind(invoice_id)
        .bind(member.org_id)
        .execute(&mut *tx)
        .await?;
    let customer_id: i64 =
        sqlx::query_scalar("SELECT customer_id FROM invoices WHERE id = $1 AND org_id = $2")
            .bind(invoice_id)
            .bind(member.org_id)
            .fetch_one(&mut *tx)
            .await?;
    match action {
        // Calls resume: paused reminders go back to pending; if none is left, a follow-up.
        "settled" | "not_paid" => {
            let paused: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM reminders WHERE +org_id = $1 AND invoice_id = $2 AND status = 'paused'",
            )
            .bind(member.org_id)
            .bind(invoice_id)
            .fetch_all(&mut *tx)
            .await?;
            for id in paused {
                let request = Request::new(member.org_id, id, Transition::Resume, &actor, now);
                match store::transition(&mut tx, request).await {
                    Ok(_) | Err(TransitionError::Refused(_)) => {}
                    Err(TransitionError::Db(e)) => return Err(e.into()),
                    Err(other) => return Err(AppError::internal("resuming reminders", other)),
                }
            }
            let reason = if action == "settled" {
                "The dispute was settled."
            } else {
                "The team found the invoice unpaid."
            };
            super::apply::ensure_follow_up(
                &mut tx,
                &profile,
                member.org_id,
                invoice_id,
                customer_id,
                reason,
                now,
            )
            .await?;
        }
        "confirmed" => {
            cancel_open(
                &mut tx,
                member.org_id,
                Scope::Invoice(invoice_id),
                "The team confirmed the invoice is paid.",
                &actor,
                now,
            )
            .await?;
        }
        _ => {}
    }
    audit(
        &mut tx,
        member.org_id,
        Some(member.user_id),
        &format!("invoice.review_{action}"),
        &invoice_id.to_string(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The dashboard's call figures at `now`.
pub async fn kpis(db: &Db, member: Member, now: DateTime<Utc>) -> Result<CallKpis, AppError> {
    let locale = Locale::of(db, member.org_id).await?;
    let org = member.org_id;
    let today = local_day_start(locale.zone, now.with_timezone(&locale.zone).date_naive());
    let month_ago = to_millis(now - Duration::days(30));
    let count = |sql: &'static str, at: i64| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(org)
            .bind(at)
            .fetch_one(db.pool())
            .await
    };
    let calls_today = count(
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND dialled_at >= $2",
        to_millis(today),
    )
    .await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND status IN ('dialling', 'answered')",
    )
    .bind(org)
    .fetch_one(db.pool())
    .await?;
    let finished = count(
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND dialled_at >= $2 \
           AND status NOT IN ('dialling', 'answered')",
        month_ago,
    )
    .await?;
    let connected = count(
        "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND dialled_at >= $2 \
           AND status NOT IN ('dialling', 'answered') AND connected = 1",
        month_ago,
    )
    .await?;
    let needs_human: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM invoices WHERE org_id = $1 AND review <> ''")
            .bind(org)
            .fetch_one(db.pool())
            .await?;
    let today_text = now.with_timezone(&locale.zone).date_naive().to_string();
    let broken_promises: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM invoices WHERE org_id = $1 AND promised_date <> '' \
           AND promised_date < $2 AND balance_minor > 0 \
           AND status IN ('sent', 'overdue', 'partially_paid')",
    )
    .bind(org)
    .bind(&today_text)
    .fetch_one(db.pool())
    .await?;
    // Amounts, per currency; the busiest currency is shown.
    let rows: Vec<(String, String, i64, Option<i64>, i64, String)> = sqlx::query_as(
        "SELECT a.response, i.currency, a.dialled_at, i.paid_down_at, i.balance_minor, a.context \
         FROM call_attempts a JOIN invoices i ON i.id = a.invoice_id \
         WHERE a.org_id = $1 AND a.dialled_at >= $2 AND a.connected = 1",
    )
    .bind(org)
    .bind(month_ago)
    .fetch_all(db.pool())
    .await?;
    let mut promised: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    let mut promises = 0;
    let week = Duration::days(7).num_milliseconds();
    for (response, currency, dialled_at, paid_down_at, balance, context) in rows {
        let at_call = balance_at_call(&context).unwrap_or(balance);
        let entry = promised.entry(currency).or_default();
        if matches!(response.as_str(), "promise_to_pay" | "will_pay_today") {
            promises += 1;
            entry.0 += at_call;
        }
        if paid_down_at.is_some_and(|at| at >= dialled_at && at <= dialled_at + week) {
            entry.1 += (at_call - balance).max(0);
        }
    }
    let (currency, (promised_minor, paid_minor)) = promised
        .into_iter()
        .max_by_key(|(_, (p, d))| p + d)
        .unwrap_or_else(|| ("USD".into(), (0, 0)));
    Ok(CallKpis {
        calls_today,
        live,
        connection_rate: (finished > 0).then(|| (connected * 100 + finished / 2) / finished),
        promises,
        promised_amount: locale.money(promised_minor, &currency),
        paid_after_calls: locale.money(paid_minor, &currency),
        needs_human,
        broken_promises,
    })
}

/// What changed for the organization after history event `after` (at most 200 changes).
pub async fn live_changes(db: &Db, org_id: i64, after: i64) -> Result<Vec<LiveChange>, AppError> {
    let rows: Vec<(i64, i64, Option<i64>, String, String)> = sqlx::query_as(
        "SELECT id, reminder_id, attempt_id, transition, to_status FROM reminder_events \
         WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT 200",
    )
    .bind(org_id)
    .bind(after)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, reminder_id, attempt_id, transition, status)| LiveChange {
                id,
                reminder_id,
                attempt_id,
                transition,
                status,
            },
        )
        .collect())
}

/// The newest history event of the organization (where a live feed starts).
pub async fn latest_change(db: &Db, org_id: i64) -> Result<i64, AppError> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT MAX(id) FROM reminder_events WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(db.pool())
            .await?;
    Ok(id.unwrap_or(0))
}
