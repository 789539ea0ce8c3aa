//! Reminder generation: from the organization's unpaid invoices and its reminder sequence, one
//! reminder per (invoice, step). Running it again changes nothing unless invoices or the
//! profile changed: new steps are added, open reminders whose invoice can no longer be called
//! about (paid, void, disputed, opted out, …) are cancelled with that reason, steps whose time
//! has passed give way to the latest one, and unattempted reminders follow the calling hours.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::machine::{Status, Transition};
use super::profile::BusinessProfile;
use super::store::{self, Actor, Request, TransitionError};
use super::verify::{Facts, local_day_start, org_zone, standing, when_allowed};
use super::zones::DebtorZone;
use crate::db::time::to_millis;
use crate::db::{Conn, Db, Dialect};
use crate::error::AppError;

/// An invoice with what decides whether and when its customer may be called.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: i64,
    pub customer_id: i64,
    pub number: String,
    pub status: String,
    pub due_date: String,
    pub balance_minor: i64,
    pub currency: String,
    pub disputed: i64,
    pub dispute_reason: String,
    pub customer_name: String,
    pub opted_out: i64,
    pub phone_e164: String,
    pub phone_status: String,
    pub phone_reason: String,
    pub country: String,
    pub region: String,
    pub timezone: String,
    pub hold_until: Option<i64>,
    pub hold_reason: String,
    pub review: String,
}

/// The select list and joins for [`InvoiceRow`] (`i` invoices, `c` customers).
pub const INVOICE_ROW: &str = "SELECT i.id, i.customer_id, i.number, i.status, i.due_date, \
     i.balance_minor, i.currency, i.disputed, i.dispute_reason, c.display_name AS customer_name, \
     c.opted_out, c.best_phone_e164 AS phone_e164, c.phone_status, \
     c.best_phone_reason AS phone_reason, c.billing_country AS country, \
     c.billing_state AS region, c.timezone, i.hold_until, i.hold_reason, i.review \
     FROM invoices i JOIN customers c ON c.id = i.customer_id";

impl InvoiceRow {
    /// The facts that do not depend on calls.
    pub fn facts(&self) -> Facts {
        Facts {
            invoice_status: self.status.clone(),
            balance_minor: self.balance_minor,
            currency: self.currency.clone(),
            disputed: self.disputed != 0,
            dispute_reason: self.dispute_reason.clone(),
            opted_out: self.opted_out != 0,
            phone_e164: self.phone_e164.clone(),
            phone_status: self.phone_status.clone(),
            phone_reason: self.phone_reason.clone(),
            country: self.country.clone(),
            region: self.region.clone(),
            timezone: self.timezone.clone(),
            hold_until: self.hold_until.map(crate::db::time::from_millis),
            hold_reason: self.hold_reason.clone(),
            paid_claim: self.review == "paid_claim",
            ..Facts::default()
        }
    }

    pub fn due_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.due_date, "%Y-%m-%d").ok()
    }
}

/// The steps an invoice due on `due` should hold reminders for on `today`: the latest step
/// whose day has come (its earlier ones have passed unused), and every later one.
pub fn live_steps(
    profile: &BusinessProfile,
    due: NaiveDate,
    today: NaiveDate,
) -> Vec<(i32, NaiveDate)> {
    let mut steps: Vec<(i32, NaiveDate)> = profile
        .sequence
        .iter()
        .map(|s| {
            (
                s.offset_days,
                due + Duration::days(i64::from(s.offset_days)),
            )
        })
        .collect();
    steps.sort_unstable();
    let current = steps.iter().rposition(|(_, date)| *date <= today);
    match current {
        Some(i) => steps.split_off(i),
        None => steps,
    }
}

/// When a step's first attempt is due: the first moment of the step's day (in the debtor's
/// zone) or `now` if later, moved into the calling window.
pub fn step_due_at(
    profile: &BusinessProfile,
    zone: &DebtorZone,
    country: &str,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let start = zone
        .zones()
        .iter()
        .map(|tz| local_day_start(*tz, date))
        .min()
        .unwrap_or_else(|| local_day_start(org_zone(profile), date))
        .max(now);
    when_allowed(profile, zone, country, &[], start).map_or(start, |(at, _)| at)
}

/// What a generation run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    pub created: u64,
    pub cancelled: u64,
    pub rescheduled: u64,
}

#[derive(sqlx::FromRow)]
struct Existing {
    id: i64,
    invoice_id: i64,
    step_offset_days: i64,
    status: String,
    attempts: i64,
    dialled: i64,
    due_at: i64,
    kind: String,
}

/// Brings the organization's reminders in line with its invoices and profile at `now`.
pub async fn generate(db: &Db, org_id: i64, now: DateTime<Utc>) -> Result<Generated, AppError> {
    let profile = super::service::profile_of(db, org_id).await?;
    let today = now.with_timezone(&org_zone(&profile)).date_naive();
    let invoices: Vec<InvoiceRow> = sqlx::query_as(&format!(
        "{INVOICE_ROW} WHERE i.org_id = $1 AND i.status IN ('sent', 'overdue', 'partially_paid') \
           AND i.balance_minor > 0"
    ))
    .bind(org_id)
    .fetch_all(db.pool())
    .await?;
    let open: Vec<Existing> = sqlx::query_as(
        "SELECT id, invoice_id, step_offset_days, status, attempts, dialled, due_at, kind \
         FROM reminders WHERE org_id = $1 \
           AND status IN ('pending', 'in_progress', 'processing', 'failed', 'paused')",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?;
    // Every (invoice, step) that has a reminder, whatever its state: those are never made again.
    let keys: HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT invoice_id, step_offset_days FROM reminders WHERE org_id = $1 AND kind = 'step'",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .collect();

    let mut cancel: Vec<(i64, String)> = Vec::new();
    let mut reschedule: Vec<(i64, i64)> = Vec::new();
    let mut create: Vec<NewReminder> = Vec::new();
    let mut open_by_invoice: HashMap<i64, Vec<&Existing>> = HashMap::new();
    for reminder in &open {
        open_by_invoice
            .entry(reminder.invoice_id)
            .or_default()
            .push(reminder);
    }
    let offsets: HashSet<i64> = profile
        .sequence
        .iter()
        .map(|s| i64::from(s.offset_days))
        .collect();
    let max_attempts = i64::from(profile.max_attempts);
    let mut seen: HashSet<i64> = HashSet::new();

    for invoice in &invoices {
        seen.insert(invoice.id);
        let existing = open_by_invoice
            .get(&invoice.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let facts = invoice.facts();
        let (zone, due) = match (standing(&profile, &facts), invoice.due_date()) {
            (Ok(zone), Some(due)) => (zone, due),
            (Err(reason), _) => {
                cancel.extend(
                    existing
                        .iter()
                        .filter(|r| cancellable(r))
                        .map(|r| (r.id, reason.clone())),
                );
                continue;
            }
            (_, None) => continue,
        };
        let steps = live_steps(&profile, due, today);
        let earliest_live = steps.first().map(|(offset, _)| i64::from(*offset));
        // A step whose first opening falls on or after the next step's day never gets its
        // turn (e.g. the window stays shut until then): the next step supersedes it.
        let superseded_by = |offset: i64, at: DateTime<Utc>| -> Option<NaiveDate> {
            let day = at.with_timezone(&org_zone(&profile)).date_naive();
            steps
                .iter()
                .find(|(o, _)| i64::from(*o) > offset)
                .map(|(_, next)| *next)
                .filter(|next| *next <= day)
        };
        for reminder in existing {
            let waiting = matches!(reminder.status.as_str(), "pending" | "paused");
            // A follow-up keeps the time its call's outcome set; only its invoice's standing
            // (above) can end it.
            if !waiting || reminder.kind == store::FOLLOW_UP {
                continue;
            }
            if !offsets.contains(&reminder.step_offset_days) {
                cancel.push((
                    reminder.id,
                    "The step is no longer in the reminder sequence.".into(),
                ));
            } else if earliest_live.is_some_and(|first| reminder.step_offset_days < first) {
                let date = steps
                    .first()
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default();
                cancel.push((reminder.id, format!("Superseded by the step of {date}.")));
            } else if reminder.attempts >= max_attempts {
                cancel.push((
                    reminder.id,
                    format!("All {max_attempts} attempts have been made."),
                ));
            } else if reminder.status == "pending" && reminder.attempts == 0 {
                // Unattempted: follows the current calling hours.
                let date = due + Duration::days(reminder.step_offset_days);
                let first = step_due_at(&profile, &zone, &facts.country, date, now);
                if let Some(next) = superseded_by(reminder.step_offset_days, first) {
                    cancel.push((reminder.id, format!("Superseded by the step of {next}.")));
                    continue;
                }
                let at = to_millis(first);
                let already_due = reminder.due_at <= to_millis(now) && at <= to_millis(now);
                if at != reminder.due_at && !already_due {
                    reschedule.push((reminder.id, at));
                }
            }
        }
        for &(offset, date) in &steps {
            if keys.contains(&(invoice.id, i64::from(offset))) {
                continue;
            }
            let due_at = step_due_at(&profile, &zone, &facts.country, date, now);
            if superseded_by(i64::from(offset), due_at).is_some() {
                continue;
            }
            create.push(NewReminder {
                invoice_id: invoice.id,
                customer_id: invoice.customer_id,
                offset: i64::from(offset),
                date,
                due_at,
            });
        }
    }
    // Open reminders of invoices no longer open (paid, void, deleted balance).
    let unseen: Vec<i64> = open
        .iter()
        .filter(|r| !seen.contains(&r.invoice_id) && cancellable(r))
        .map(|r| r.invoice_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !unseen.is_empty() {
        let reasons = closed_reasons(db, org_id, &unseen).await?;
        for reminder in open
            .iter()
            .filter(|r| !seen.contains(&r.invoice_id) && cancellable(r))
        {
            let reason = reasons
                .get(&reminder.invoice_id)
                .cloned()
                .unwrap_or_else(|| "Nothing is owed on the invoice.".to_owned());
            cancel.push((reminder.id, reason));
        }
    }

    let mut report = Generated::default();
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE reminders SET max_attempts = $1 WHERE org_id = $2 AND max_attempts <> $1 \
           AND status IN ('pending', 'paused', 'failed') AND attempts < $1",
    )
    .bind(max_attempts)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    report.created = insert(&mut tx, org_id, max_attempts, &create, now).await?;
    for (id, at) in &reschedule {
        sqlx::query("UPDATE reminders SET due_at = $1, updated_at = $2 WHERE id = $3 AND org_id = $4 AND status = 'pending' AND attempts = 0")
            .bind(at)
            .bind(to_millis(now))
            .bind(id)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
    }
    report.rescheduled = reschedule.len() as u64;
    for (id, reason) in cancel {
        let request = Request::new(
            org_id,
            id,
            Transition::Cancel { reason },
            &Actor::Generator,
            now,
        );
        match store::transition(&mut tx, request).await {
            Ok(_) => report.cancelled += 1,
            // Moved meanwhile (claimed and dialled): the pre-call check has the last word.
            Err(TransitionError::Refused(_) | TransitionError::NotFound) => {}
            Err(TransitionError::Db(e)) => return Err(e.into()),
            Err(e @ (TransitionError::NotClaimant(_) | TransitionError::NotExpired)) => {
                return Err(AppError::internal("cancelling a reminder", e));
            }
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Whether the generator may cancel a reminder: nothing is being dialled for it.
fn cancellable(reminder: &Existing) -> bool {
    match Status::parse(&reminder.status) {
        Some(Status::Pending | Status::Paused | Status::Failed) => true,
        Some(Status::InProgress) => reminder.dialled == 0,
        _ => false,
    }
}

/// Why each of these invoices is no longer called about.
async fn closed_reasons(
    db: &Db,
    org_id: i64,
    invoice_ids: &[i64],
) -> Result<HashMap<i64, String>, AppError> {
    let profile = BusinessProfile::new("", "UTC");
    let mut reasons = HashMap::new();
    for chunk in invoice_ids.chunks(500) {
        let sql = format!(
            "{INVOICE_ROW} WHERE i.org_id = $1 AND i.id IN ({})",
            crate::db::numbered(2, chunk.len())
        );
        let query = sqlx::query_as::<_, InvoiceRow>(&sql).bind(org_id);
        let rows = chunk
            .iter()
            .fold(query, |query, id| query.bind(*id))
            .fetch_all(db.pool())
            .await?;
        for row in rows {
            let reason = standing(&profile, &row.facts()).err().unwrap_or_default();
            reasons.insert(row.id, reason);
        }
    }
    Ok(reasons)
}

struct NewReminder {
    invoice_id: i64,
    customer_id: i64,
    offset: i64,
    date: NaiveDate,
    due_at: DateTime<Utc>,
}

/// Inserts new reminders in multi-row statements; a step that exists already (another
/// instance generating at the same time) is left as it is.
async fn insert(
    tx: &mut Conn,
    org_id: i64,
    max_attempts: i64,
    rows: &[NewReminder],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    const COLUMNS: usize = 9;
    let dialect = Dialect::of(tx);
    let mut created = 0;
    for chunk in rows.chunks(400) {
        let values = dialect.value_rows(chunk.len(), COLUMNS, |marks| {
            format!("({marks}, 'pending')")
        });
        let sql = format!(
            "INSERT INTO reminders (org_id, invoice_id, customer_id, step_offset_days, step_date, \
               max_attempts, due_at, created_at, updated_at, status) VALUES {values} \
             ON CONFLICT (invoice_id, step_offset_days) WHERE kind = 'step' DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(org_id)
                .bind(row.invoice_id)
                .bind(row.customer_id)
                .bind(row.offset)
                .bind(row.date.to_string())
                .bind(max_attempts)
                .bind(to_millis(row.due_at))
                .bind(to_millis(now))
                .bind(to_millis(now));
        }
        created += query.execute(&mut *tx).await?.rows_affected();
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn passed_steps_give_way_to_the_latest() {
        let profile = BusinessProfile::new("Acme", "UTC"); // steps 0, 7, 14
        let due = date("2026-03-01");
        let all = |today| live_steps(&profile, due, date(today));
        assert_eq!(all("2026-02-20").len(), 3, "all ahead");
        assert_eq!(
            all("2026-03-01"),
            vec![(0, due), (7, date("2026-03-08")), (14, date("2026-03-15"))]
        );
        assert_eq!(
            all("2026-03-09"),
            vec![(7, date("2026-03-08")), (14, date("2026-03-15"))]
        );
        assert_eq!(
            all("2026-06-01"),
            vec![(14, date("2026-03-15"))],
            "one call, not three"
        );
    }
}
