//! The dry-run calendar: for the next N days, who the engine would call when, and for every
//! open invoice it would not call, why not. It runs the same rules as the scheduler — the
//! sequence, the pre-call verification's lasting checks, the frequency limits (counting the
//! calls it plans itself), the calling window and the daily call budget — without calling.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::generate::{INVOICE_ROW, InvoiceRow, live_steps, step_due_at};
use super::profile::{BusinessProfile, SequenceStep};
use super::rules::{Attempt, WEEK};
use super::service::profile_of;
use super::verify::{local_day_start, org_zone, standing, when_allowed};
use super::views::{
    CALENDAR_LIST_LIMIT, CALENDAR_MAX_DAYS, Calendar, CalendarDay, NotCalled, PlannedCall,
    REASON_KINDS, ReasonGroup, reason_kind,
};
use super::zones::DebtorZone;
use crate::accounts::service::Member;
use crate::db::Db;
use crate::db::time::{from_millis, to_millis};
use crate::error::AppError;
use crate::receivables::model::{Currency, Money, NumberStyle};

#[derive(sqlx::FromRow)]
struct ReminderState {
    invoice_id: i64,
    step_offset_days: i64,
    status: String,
    due_at: i64,
}

/// The calendar of the member's organization for the `days` days from `now`.
pub async fn calendar(
    db: &Db,
    member: Member,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Calendar, AppError> {
    calendar_of(db, member.org_id, days, now).await
}

/// The calendar of organization `org_id` (the command line acts for no member).
pub async fn calendar_of(
    db: &Db,
    org_id: i64,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Calendar, AppError> {
    let days = days.clamp(1, CALENDAR_MAX_DAYS);
    let profile = profile_of(db, org_id).await?;
    let locale: String = sqlx::query_scalar("SELECT locale FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    let style = NumberStyle::for_locale(&locale);
    let invoices: Vec<InvoiceRow> = sqlx::query_as(&format!(
        "{INVOICE_ROW} WHERE i.org_id = $1 AND i.status IN ('sent', 'overdue', 'partially_paid') \
           AND i.balance_minor > 0 ORDER BY i.due_date, i.id"
    ))
    .bind(org_id)
    .fetch_all(db.pool())
    .await?;
    let mut reminders: HashMap<(i64, i64), ReminderState> = HashMap::new();
    for state in sqlx::query_as::<_, ReminderState>(
        "SELECT invoice_id, step_offset_days, status, due_at FROM reminders WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?
    {
        reminders.insert((state.invoice_id, state.step_offset_days), state);
    }
    let mut calls: HashMap<i64, Vec<Attempt>> = HashMap::new();
    for (invoice_id, at, connected) in sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT invoice_id, dialled_at, connected FROM call_attempts \
         WHERE org_id = $1 AND dialled_at > $2",
    )
    .bind(org_id)
    .bind(to_millis(now - WEEK))
    .fetch_all(db.pool())
    .await?
    {
        calls.entry(invoice_id).or_default().push(Attempt {
            at: from_millis(at),
            conversation: connected != 0,
        });
    }
    let plan = Plan {
        profile: &profile,
        now,
        end: now + Duration::days(i64::from(days)),
        style,
    };
    let mut planned: Vec<Planned> = Vec::new();
    let mut not_called: Vec<NotCalled> = Vec::new();
    for invoice in &invoices {
        let recent = calls.remove(&invoice.id).unwrap_or_default();
        match plan.invoice(invoice, &reminders, recent) {
            Ok(mut calls) => planned.append(&mut calls),
            Err(reason) => not_called.push(plan.not_called(invoice, reason)),
        }
    }
    let planned = plan.within_budget(planned);
    Ok(Calendar {
        days_ahead: days,
        calls_enabled: profile.calls_enabled,
        timezone: profile.timezone.clone(),
        total_calls: planned.len(),
        open_invoices: invoices.len(),
        days: plan.by_day(planned),
        not_called: group(not_called),
    })
}

/// A planned call with what moving it needs.
struct Planned {
    call: PlannedCall,
    zone: DebtorZone,
    country: String,
    /// Moved by the daily budget (its times are written out once it has a day).
    moved: bool,
}

struct Plan<'a> {
    profile: &'a BusinessProfile,
    now: DateTime<Utc>,
    end: DateTime<Utc>,
    style: NumberStyle,
}

impl Plan<'_> {
    fn amount(&self, invoice: &InvoiceRow) -> String {
        let currency = Currency::parse(&invoice.currency).unwrap_or_else(|_| Currency::unknown());
        Money::new(invoice.balance_minor, currency).format(self.style)
    }

    fn not_called(&self, invoice: &InvoiceRow, reason: String) -> NotCalled {
        NotCalled {
            customer_id: invoice.customer_id,
            customer_name: invoice.customer_name.clone(),
            invoice_id: invoice.id,
            invoice_number: invoice.number.clone(),
            amount: self.amount(invoice),
            reason,
        }
    }

    /// The calls planned for one invoice in the period, or why there are none.
    fn invoice(
        &self,
        invoice: &InvoiceRow,
        reminders: &HashMap<(i64, i64), ReminderState>,
        mut recent: Vec<Attempt>,
    ) -> Result<Vec<Planned>, String> {
        let facts = invoice.facts();
        let zone = standing(self.profile, &facts)?;
        let Some(due) = invoice.due_date() else {
            return Err("The invoice has no due date.".into());
        };
        let today = self.now.with_timezone(&org_zone(self.profile)).date_naive();
        let mut out = Vec::new();
        let mut next_later: Option<DateTime<Utc>> = None;
        let mut window_error = None;
        let steps = live_steps(self.profile, due, today);
        for (i, &(offset, date)) in steps.iter().enumerate() {
            let next_step = steps.get(i + 1).map(|(_, d)| *d);
            let step = SequenceStep {
                offset_days: offset,
                channel: super::profile::Channel::Call,
            };
            let first = match reminders.get(&(invoice.id, i64::from(offset))) {
                Some(state) => match state.status.as_str() {
                    "pending" => from_millis(state.due_at).max(self.now),
                    "in_progress" | "processing" => {
                        return Err("A call about this invoice is under way.".into());
                    }
                    // Done with (called, skipped, cancelled, failed or paused by a person).
                    _ => continue,
                },
                None => step_due_at(self.profile, &zone, &facts.country, date, self.now),
            };
            match when_allowed(self.profile, &zone, &facts.country, &recent, first) {
                Err(reason) => window_error = Some(reason),
                Ok((at, _)) if at > self.end => {
                    next_later = Some(next_later.map_or(at, |n| n.min(at)));
                }
                // Its turn passes before it comes: the next step's day is here by then.
                Ok((at, _))
                    if next_step.is_some_and(|next| {
                        next <= at.with_timezone(&org_zone(self.profile)).date_naive()
                    }) => {}
                Ok((at, note)) => {
                    recent.push(Attempt {
                        at,
                        conversation: false,
                    });
                    out.push(Planned {
                        call: self.call(invoice, &zone, step, at, note),
                        zone: zone.clone(),
                        country: facts.country.clone(),
                        moved: false,
                    });
                }
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        if let Some(reason) = window_error {
            return Err(reason);
        }
        match next_later {
            Some(at) => Err(format!(
                "The next call would be on {}, after this period.",
                self.org_time(at)
            )),
            None => Err("Every step of the reminder sequence has been done.".into()),
        }
    }

    fn call(
        &self,
        invoice: &InvoiceRow,
        zone: &DebtorZone,
        step: SequenceStep,
        at: DateTime<Utc>,
        note: String,
    ) -> PlannedCall {
        PlannedCall {
            at: to_millis(at),
            debtor_time: debtor_time(zone, at),
            org_time: self.org_time(at),
            customer_id: invoice.customer_id,
            customer_name: invoice.customer_name.clone(),
            invoice_id: invoice.id,
            invoice_number: invoice.number.clone(),
            amount: self.amount(invoice),
            step: step.describe(),
            note,
        }
    }

    fn org_time(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&org_zone(self.profile))
            .format("%a %-d %b %H:%M %Z")
            .to_string()
    }

    /// Moves the calls beyond a day's budget to the next opening on a later day, as the
    /// scheduler's hold does; calls moved past the period drop out of it.
    fn within_budget(&self, planned: Vec<Planned>) -> Vec<PlannedCall> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let tz = org_zone(self.profile);
        let limit = self.profile.daily_call_limit as usize;
        let mut per_day: BTreeMap<chrono::NaiveDate, usize> = BTreeMap::new();
        let mut kept = Vec::with_capacity(planned.len());
        // Earliest first; a moved call goes back in at its new time.
        let mut items: Vec<Option<Planned>> = planned.into_iter().map(Some).collect();
        let mut queue: BinaryHeap<Reverse<(i64, i64, usize)>> = items
            .iter()
            .enumerate()
            .filter_map(|(n, p)| {
                p.as_ref()
                    .map(|p| Reverse((p.call.at, p.call.invoice_id, n)))
            })
            .collect();
        while let Some(Reverse((_, _, n))) = queue.pop() {
            let Some(mut item) = items[n].take() else {
                continue;
            };
            let at = from_millis(item.call.at);
            let day = at.with_timezone(&tz).date_naive();
            let used = per_day.entry(day).or_default();
            if *used < limit {
                *used += 1;
                if item.moved {
                    item.call.org_time = self.org_time(at);
                    item.call.debtor_time = debtor_time(&item.zone, at);
                    item.call.note = format!(
                        "Moved: the {} calls a day allowed were already planned.",
                        self.profile.daily_call_limit
                    );
                }
                kept.push(item.call);
                continue;
            }
            let next_day = local_day_start(tz, day + Duration::days(1));
            let Ok((next, _)) =
                when_allowed(self.profile, &item.zone, &item.country, &[], next_day)
            else {
                continue;
            };
            if next > self.end {
                continue;
            }
            item.call.at = to_millis(next);
            item.moved = true;
            queue.push(Reverse((item.call.at, item.call.invoice_id, n)));
            items[n] = Some(item);
        }
        kept
    }

    fn by_day(&self, planned: Vec<PlannedCall>) -> Vec<CalendarDay> {
        let tz = org_zone(self.profile);
        let mut days: BTreeMap<chrono::NaiveDate, CalendarDay> = BTreeMap::new();
        let first = self.now.with_timezone(&tz).date_naive();
        let last = self.end.with_timezone(&tz).date_naive();
        let mut date = first;
        while date <= last {
            days.insert(
                date,
                CalendarDay {
                    date: date.to_string(),
                    label: date.format("%A %-d %B").to_string(),
                    total: 0,
                    calls: Vec::new(),
                },
            );
            date += Duration::days(1);
        }
        for call in planned {
            let date = from_millis(call.at).with_timezone(&tz).date_naive();
            if let Some(day) = days.get_mut(&date) {
                day.total += 1;
                if day.calls.len() < CALENDAR_LIST_LIMIT {
                    day.calls.push(call);
                }
            }
        }
        days.into_values().collect()
    }
}

/// `at` on the debtor's clock (the first of their possible zones).
fn debtor_time(zone: &DebtorZone, at: DateTime<Utc>) -> String {
    let debtor = zone.zones().first().copied().unwrap_or(Tz::UTC);
    let mut text = at
        .with_timezone(&debtor)
        .format("%a %-d %b %H:%M %Z")
        .to_string();
    if zone.zones().len() > 1 {
        text.push_str(&format!(" (and {} more zones)", zone.zones().len() - 1));
    }
    text
}

fn group(not_called: Vec<NotCalled>) -> Vec<ReasonGroup> {
    let mut groups: BTreeMap<usize, ReasonGroup> = BTreeMap::new();
    for item in not_called {
        let kind = reason_kind(&item.reason);
        let position = REASON_KINDS
            .iter()
            .position(|(k, _)| *k == kind)
            .unwrap_or(usize::MAX);
        let group = groups.entry(position).or_insert_with(|| ReasonGroup {
            kind: kind.to_owned(),
            label: REASON_KINDS
                .get(position)
                .map_or("Other", |(_, label)| label)
                .to_owned(),
            total: 0,
            invoices: Vec::new(),
        });
        group.total += 1;
        if group.invoices.len() < CALENDAR_LIST_LIMIT {
            group.invoices.push(item);
        }
    }
    groups.into_values().collect()
}
