//! Pre-call verification: the last look before a call is placed, on facts read at that moment.
//! [`verify`] is a pure function of the profile, the facts and the time, shared by the
//! scheduler (at claim time) and the dry-run calendar (at the planned time), so both give the
//! same answer and the same reason.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::profile::{BusinessProfile, parse_time};
use super::rules::{Attempt, CallingWindow, Held, Hours, frequency_check};
use super::zones::{DebtorZone, debtor_zone};
use crate::receivables::model::{Currency, InvoiceStatus, Money, NumberStyle};

/// How far ahead the next opening of the calling window is looked for.
pub const HORIZON_DAYS: i64 = 14;
/// How long to wait when the customer is already on a call, or the organization has as many
/// calls under way as it allows.
pub const BUSY_WAIT: Duration = Duration::minutes(15);
pub const CONCURRENCY_WAIT: Duration = Duration::minutes(1);
/// How often a reminder held by a "paid already" claim looks again.
pub const PAID_CLAIM_WAIT: Duration = Duration::days(1);

/// What the check looks at, read just before the call.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub invoice_status: String,
    pub balance_minor: i64,
    pub currency: String,
    pub disputed: bool,
    pub dispute_reason: String,
    pub opted_out: bool,
    pub phone_e164: String,
    /// `valid`, `invalid` or `missing`.
    pub phone_status: String,
    pub phone_reason: String,
    pub country: String,
    pub region: String,
    pub timezone: String,
    /// Calls about the invoice in the last 7 days.
    pub calls: Vec<Attempt>,
    /// Whether another call to this customer is under way.
    pub customer_on_call: bool,
    /// The organization's calls under way, and placed today (its local day).
    pub org_active_calls: u32,
    pub org_calls_today: u32,
    /// A later step of the sequence whose day has come: this reminder's turn has passed.
    pub superseded_by: Option<String>,
    /// Calls about the invoice wait until then (a promise, "paying today", a callback), why.
    pub hold_until: Option<DateTime<Utc>>,
    pub hold_reason: String,
    /// The customer said it is paid: calls wait for a person to check.
    pub paid_claim: bool,
}

/// The check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Place the call.
    Call,
    /// Not now; look again at `until`.
    Hold {
        reason: String,
        until: DateTime<Utc>,
    },
    /// Not for this reminder, ever (a person may change the facts and generate anew).
    Never { reason: String },
}

impl Verdict {
    pub fn reason(&self) -> &str {
        match self {
            Self::Call => "",
            Self::Hold { reason, .. } | Self::Never { reason } => reason,
        }
    }
}

/// The profile's calling window (the law's hours are applied per debtor by the rules).
pub fn window(profile: &BusinessProfile) -> CallingWindow {
    let time = |text: &str, fallback: u32| {
        let minutes = parse_time(text).unwrap_or(fallback).min(24 * 60 - 1);
        chrono::NaiveTime::from_num_seconds_from_midnight_opt(minutes * 60, 0)
            .unwrap_or(chrono::NaiveTime::MIN)
    };
    CallingWindow {
        hours: Hours::new(
            time(&profile.call_start, 9 * 60),
            time(&profile.call_end, 18 * 60),
        ),
        days: profile.call_days,
        holidays: profile
            .holidays
            .iter()
            .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .collect(),
    }
}

/// The organization's zone (its calling-day budget), UTC if the profile's is unknown.
pub fn org_zone(profile: &BusinessProfile) -> Tz {
    profile.timezone.parse().unwrap_or(Tz::UTC)
}

/// The facts that do not change with the time: `Ok` with the debtor's zone when the invoice
/// may be called about at all, otherwise why never.
pub fn standing(profile: &BusinessProfile, facts: &Facts) -> Result<DebtorZone, String> {
    match InvoiceStatus::parse(&facts.invoice_status) {
        Ok(InvoiceStatus::Paid) => return Err("The invoice is paid.".into()),
        Ok(InvoiceStatus::Void) => return Err("The invoice is void.".into()),
        Ok(InvoiceStatus::Draft) => return Err("The invoice is a draft.".into()),
        Ok(_) => {}
        Err(_) => {
            return Err(format!(
                "Unknown invoice status {:?}.",
                facts.invoice_status
            ));
        }
    }
    if facts.balance_minor <= 0 {
        return Err("Nothing is owed on the invoice.".into());
    }
    if facts.disputed {
        return Err(if facts.dispute_reason.trim().is_empty() {
            "The invoice is disputed.".to_owned()
        } else {
            format!("The invoice is disputed: {}", facts.dispute_reason.trim())
        });
    }
    if facts.opted_out {
        return Err("The customer opted out of calls.".into());
    }
    if facts.balance_minor < profile.min_balance_minor {
        let currency = Currency::parse(&facts.currency).unwrap_or_else(|_| Currency::unknown());
        let money = |minor| Money::new(minor, currency.clone()).format(NumberStyle::English);
        return Err(format!(
            "The balance of {} is below the minimum worth a call ({}).",
            money(facts.balance_minor),
            money(profile.min_balance_minor)
        ));
    }
    match facts.phone_status.as_str() {
        "valid" if !facts.phone_e164.is_empty() => {}
        "invalid" => {
            return Err(if facts.phone_reason.is_empty() {
                "The customer's phone number is not valid.".to_owned()
            } else {
                format!(
                    "The customer's phone number is not valid: {}",
                    facts.phone_reason
                )
            });
        }
        _ => return Err("The customer has no phone number.".into()),
    }
    debtor_zone(&facts.timezone, &facts.country, &facts.region)
        .map_err(|e| sentence(&e.to_string()))
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// Whether a call may start at `now`; if not, why, and when to look again.
pub fn verify(profile: &BusinessProfile, facts: &Facts, now: DateTime<Utc>) -> Verdict {
    let zone = match standing(profile, facts) {
        Ok(zone) => zone,
        Err(reason) => return Verdict::Never { reason },
    };
    if let Some(date) = &facts.superseded_by {
        return Verdict::Never {
            reason: format!("Superseded by the step of {date}."),
        };
    }
    if facts.paid_claim {
        return Verdict::Hold {
            reason: "The customer says the invoice is paid; the team is to check.".into(),
            until: now + PAID_CLAIM_WAIT,
        };
    }
    if let Some(until) = facts.hold_until.filter(|until| *until > now) {
        let reason = if facts.hold_reason.is_empty() {
            "Held after the last call.".to_owned()
        } else {
            facts.hold_reason.clone()
        };
        return Verdict::Hold { reason, until };
    }
    match when_allowed(profile, &zone, &facts.country, &facts.calls, now) {
        Err(reason) => Verdict::Never { reason },
        Ok((at, reason)) if at > now => Verdict::Hold { reason, until: at },
        Ok(_) => {
            if facts.customer_on_call {
                return Verdict::Hold {
                    reason: "Another call to this customer is under way.".into(),
                    until: now + BUSY_WAIT,
                };
            }
            if facts.org_active_calls >= profile.max_concurrent_calls {
                return Verdict::Hold {
                    reason: format!(
                        "{} calls are under way, the most the organization allows at once.",
                        facts.org_active_calls
                    ),
                    until: now + CONCURRENCY_WAIT,
                };
            }
            if facts.org_calls_today >= profile.daily_call_limit {
                let tomorrow = next_local_midnight(org_zone(profile), now);
                let until = when_allowed(profile, &zone, &facts.country, &facts.calls, tomorrow)
                    .map_or(tomorrow, |(at, _)| at);
                return Verdict::Hold {
                    reason: format!(
                        "The organization's {} calls for today have been placed.",
                        profile.daily_call_limit
                    ),
                    until,
                };
            }
            Verdict::Call
        }
    }
}

/// The first instant at or after `from` that both the frequency rules and the calling window
/// allow, with the reason for any wait; `Err` when the window does not open within
/// [`HORIZON_DAYS`].
pub fn when_allowed(
    profile: &BusinessProfile,
    zone: &DebtorZone,
    country: &str,
    calls: &[Attempt],
    from: DateTime<Utc>,
) -> Result<(DateTime<Utc>, String), String> {
    let window = window(profile);
    let mut at = from;
    let mut reason = String::new();
    // Each round moves past a frequency hold or to a window opening; a handful suffice.
    for _ in 0..16 {
        if let Err(held) = frequency_check(calls, at) {
            if reason.is_empty() {
                reason = match held {
                    Held::WeeklyCap { .. } => {
                        "7 calls about this invoice in the last 7 days.".to_owned()
                    }
                    Held::CoolingDown { .. } => {
                        "A conversation about this invoice less than 7 days ago.".to_owned()
                    }
                };
            }
            at = held.until();
            continue;
        }
        match window.next_opening(zone, country, at, HORIZON_DAYS) {
            Some(open) if open == at => return Ok((at, reason)),
            Some(open) => {
                if reason.is_empty() {
                    reason = format!("Outside the calling window ({}).", zone.describe());
                }
                at = open;
            }
            None => {
                return Err(format!(
                    "The calling window does not open in the next {HORIZON_DAYS} days ({}): \
                     check the calling days, hours and holidays.",
                    zone.describe()
                ));
            }
        }
    }
    Ok((at, reason))
}

fn next_local_midnight(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::TimeZone;
    let tomorrow = now.with_timezone(&tz).date_naive() + Duration::days(1);
    tz.from_local_datetime(&tomorrow.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(now + Duration::days(1), |at| at.with_timezone(&Utc))
}

/// Midnight starting `date` in the organization's zone.
pub fn local_day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    tz.from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or_else(
            || date.and_time(chrono::NaiveTime::MIN).and_utc(),
            |at| at.with_timezone(&Utc),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn facts() -> Facts {
        Facts {
            invoice_status: "overdue".into(),
            balance_minor: 50_000,
            currency: "GBP".into(),
            phone_e164: "+447700900123".into(),
            phone_status: "valid".into(),
            country: "GB".into(),
            ..Facts::default()
        }
    }

    fn profile() -> BusinessProfile {
        BusinessProfile::new("Acme", "Europe/London")
    }

    #[test]
    fn a_callable_invoice_is_called_inside_the_window() {
        // Monday 2026-03-02 10:00 in London.
        assert_eq!(
            verify(&profile(), &facts(), at("2026-03-02T10:00:00Z")),
            Verdict::Call
        );
    }

    #[test]
    fn every_lasting_reason_says_why() {
        let now = at("2026-03-02T10:00:00Z");
        type Change = fn(&mut Facts);
        let cases: [(&str, Change); 8] = [
            ("paid", |f| f.invoice_status = "paid".into()),
            ("void", |f| f.invoice_status = "void".into()),
            ("Nothing is owed", |f| f.balance_minor = 0),
            ("disputed: wrong quantity", |f| {
                f.disputed = true;
                f.dispute_reason = "wrong quantity".into();
            }),
            ("opted out", |f| f.opted_out = true),
            ("not valid: too short", |f| {
                f.phone_status = "invalid".into();
                f.phone_reason = "too short".into();
            }),
            ("no phone number", |f| f.phone_status = "missing".into()),
            ("country", |f| f.country = String::new()),
        ];
        for (expected, change) in cases {
            let mut facts = facts();
            change(&mut facts);
            match verify(&profile(), &facts, now) {
                Verdict::Never { reason } => {
                    assert!(reason.contains(expected), "{expected:?} not in {reason:?}")
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
        let mut small = profile();
        small.min_balance_minor = 100_000;
        assert_eq!(
            verify(&small, &facts(), now).reason(),
            "The balance of £500.00 is below the minimum worth a call (£1,000.00)."
        );
    }

    #[test]
    fn outside_the_window_waits_for_the_opening_in_the_debtors_zone() {
        // 06:00 UTC = 11:30 in India, but 01:00 in New York: call New York at 09:00 local.
        let now = at("2026-03-02T06:00:00Z");
        let mut ny = facts();
        ny.country = "US".into();
        ny.region = "NY".into();
        assert_eq!(
            verify(&profile(), &ny, now),
            Verdict::Hold {
                reason: "Outside the calling window (America/New_York).".into(),
                until: at("2026-03-02T14:00:00Z"),
            }
        );
        // India: the law stops calls at 19:00 even when the business calls until 20:00.
        let mut late = profile();
        late.call_end = "20:00".into();
        let mut india = facts();
        india.country = "IN".into();
        let evening = at("2026-03-02T13:45:00Z"); // 19:15 in Kolkata
        assert!(
            matches!(verify(&late, &india, evening), Verdict::Hold { until, .. }
            if until == at("2026-03-03T03:30:00Z"))
        );
    }

    #[test]
    fn the_frequency_rules_hold_then_the_window_decides() {
        let now = at("2026-03-02T10:00:00Z");
        let mut talked = facts();
        talked.calls = vec![Attempt {
            at: at("2026-02-27T16:00:00Z"),
            conversation: true,
        }];
        // Seven days after a Friday 16:00 conversation is Friday 16:00 — inside the window.
        assert_eq!(
            verify(&profile(), &talked, now),
            Verdict::Hold {
                reason: "A conversation about this invoice less than 7 days ago.".into(),
                until: at("2026-03-06T16:00:00Z"),
            }
        );
        // Seven days after 18:30 on a Friday is past the hours: the next opening is Monday's.
        talked.calls[0].at = at("2026-02-27T18:30:00Z");
        assert!(
            matches!(verify(&profile(), &talked, now), Verdict::Hold { until, .. }
            if until == at("2026-03-09T09:00:00Z"))
        );
    }

    #[test]
    fn budget_and_concurrency_hold() {
        let now = at("2026-03-02T10:00:00Z");
        let mut busy = facts();
        busy.org_active_calls = 3;
        assert!(
            matches!(verify(&profile(), &busy, now), Verdict::Hold { until, .. }
            if until == now + CONCURRENCY_WAIT)
        );
        let mut spent = facts();
        spent.org_calls_today = 200;
        assert!(
            matches!(verify(&profile(), &spent, now), Verdict::Hold { until, .. }
            if until == at("2026-03-03T09:00:00Z"))
        );
        let mut on_call = facts();
        on_call.customer_on_call = true;
        assert!(matches!(
            verify(&profile(), &on_call, now),
            Verdict::Hold { .. }
        ));
    }

    #[test]
    fn a_window_that_never_opens_is_never() {
        let mut closed = profile();
        closed.call_days = [false; 7];
        assert!(matches!(
            verify(&closed, &facts(), at("2026-03-02T10:00:00Z")),
            Verdict::Never { .. }
        ));
    }
}
