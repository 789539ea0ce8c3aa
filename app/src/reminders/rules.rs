//! The calling rules, as pure functions of the facts and the time, so the scheduler, the
//! pre-call check and the dry-run calendar all decide the same way:
//!
//! - calling hours in the debtor's local time: the business's hours narrowed to the law's
//!   (08:00–21:00, India 08:00–19:00); a business can only be stricter. Calling days and
//!   holidays are the debtor's local dates;
//! - per invoice, at most 7 call attempts in any 7 consecutive days, and no call within 7 days
//!   after a conversation (a connected call) about it.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::zones::DebtorZone;

/// Daily calling hours in local time, from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Hours {
    pub fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end }
    }

    fn hm(start: u32, end: u32) -> Self {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN);
        Self::new(at(start), at(end))
    }

    /// The hours both allow (empty when they do not overlap).
    pub fn narrowed_to(self, other: Hours) -> Hours {
        Hours::new(self.start.max(other.start), self.end.min(other.end))
    }

    pub fn is_empty(self) -> bool {
        self.start >= self.end
    }

    pub fn contains(self, time: NaiveTime) -> bool {
        self.start <= time && time < self.end
    }
}

/// The law's calling hours for debtors in `country`: the strictest rule Duecall knows for it.
/// India (RBI's recovery-agent rules): 08:00–19:00. Elsewhere 08:00–21:00 (US Regulation F,
/// the safe default everywhere).
pub fn legal_hours(country: &str) -> Hours {
    if country.trim().eq_ignore_ascii_case("IN") {
        Hours::hm(8, 19)
    } else {
        Hours::hm(8, 21)
    }
}

/// When a business lets calls be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingWindow {
    pub hours: Hours,
    /// Monday first.
    pub days: [bool; 7],
    pub holidays: BTreeSet<NaiveDate>,
}

impl Default for CallingWindow {
    /// 09:00–18:00 on weekdays.
    fn default() -> Self {
        Self {
            hours: Hours::hm(9, 18),
            days: [true, true, true, true, true, false, false],
            holidays: BTreeSet::new(),
        }
    }
}

impl CallingWindow {
    /// Whether a call to a debtor in `zone` (billing `country`) may start at `now`: in each
    /// zone the debtor may be in, a calling day that is not a holiday, within the business's
    /// hours and the law's.
    pub fn allows(&self, zone: &DebtorZone, country: &str, now: DateTime<Utc>) -> bool {
        let hours = self.hours.narrowed_to(legal_hours(country));
        !hours.is_empty()
            && zone.zones().iter().all(|tz| {
                let local = now.with_timezone(tz);
                let date = local.date_naive();
                self.days[date.weekday().num_days_from_monday() as usize]
                    && !self.holidays.contains(&date)
                    && hours.contains(local.time())
            })
    }

    /// The first instant at or after `now` when [`allows`](Self::allows) holds, looking
    /// `horizon_days` ahead; `None` when the window never opens in that time.
    ///
    /// The window (in every possible zone at once) opens either now or when one of the zones'
    /// local hours start, so those instants are the only candidates.
    pub fn next_opening(
        &self,
        zone: &DebtorZone,
        country: &str,
        now: DateTime<Utc>,
        horizon_days: i64,
    ) -> Option<DateTime<Utc>> {
        if self.allows(zone, country, now) {
            return Some(now);
        }
        let hours = self.hours.narrowed_to(legal_hours(country));
        if hours.is_empty() {
            return None;
        }
        let end = now + Duration::days(horizon_days);
        let mut candidates: Vec<DateTime<Utc>> = Vec::new();
        for tz in zone.zones() {
            let today = now.with_timezone(tz).date_naive();
            for offset in 0..=horizon_days {
                let date = today + Duration::days(offset);
                if let Some(start) = local_instant(tz, date, hours.start)
                    && start > now
                    && start <= end
                {
                    candidates.push(start);
                }
            }
        }
        candidates.sort_unstable();
        candidates
            .into_iter()
            .find(|at| self.allows(zone, country, *at))
    }
}

/// `date` at `time` in `tz` as an instant: the earlier one when the clocks go back and the
/// first valid instant after a gap when they go forward.
fn local_instant(tz: &Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    (0..=4)
        .find_map(|step| {
            tz.from_local_datetime(&(naive + Duration::minutes(30 * step)))
                .earliest()
        })
        .map(|local| local.with_timezone(&Utc))
}

/// Call attempts about one debt in any rolling 7 days, at most.
pub const MAX_ATTEMPTS_PER_WEEK: usize = 7;
/// The rolling period of the attempt cap, and the quiet time after a conversation.
pub const WEEK: Duration = Duration::days(7);

/// A call attempt about an invoice: when it started and whether it became a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub conversation: bool,
}

/// Why the frequency rules hold a call back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// 7 attempts in the last 7 days.
    WeeklyCap { until: DateTime<Utc> },
    /// A conversation less than 7 days ago.
    CoolingDown { until: DateTime<Utc> },
}

impl Held {
    pub fn until(self) -> DateTime<Utc> {
        match self {
            Self::WeeklyCap { until } | Self::CoolingDown { until } => until,
        }
    }
}

/// Whether the frequency rules let a call about an invoice start at `now`, given its earlier
/// attempts; if not, the reason and the instant it may.
pub fn frequency_check(attempts: &[Attempt], now: DateTime<Utc>) -> Result<(), Held> {
    if let Some(last) = attempts
        .iter()
        .filter(|a| a.conversation && a.at <= now && now < a.at + WEEK)
        .map(|a| a.at)
        .max()
    {
        return Err(Held::CoolingDown { until: last + WEEK });
    }
    let mut recent: Vec<DateTime<Utc>> = attempts
        .iter()
        .filter(|a| a.at <= now && now < a.at + WEEK)
        .map(|a| a.at)
        .collect();
    if recent.len() >= MAX_ATTEMPTS_PER_WEEK {
        // Once the oldest attempts that keep the count at 7 have left the week, there is room.
        recent.sort_unstable_by(|a, b| b.cmp(a));
        return Err(Held::WeeklyCap {
            until: recent[MAX_ATTEMPTS_PER_WEEK - 1] + WEEK,
        });
    }
    Ok(())
}

/// The first instant at or after `now` when the frequency rules let a call start.
pub fn frequency_clear_at(attempts: &[Attempt], now: DateTime<Utc>) -> DateTime<Utc> {
    let mut at = now;
    // Each hold moves past at least one attempt, so this ends within attempts.len() + 1 steps.
    for _ in 0..=attempts.len() {
        match frequency_check(attempts, at) {
            Ok(()) => return at,
            Err(held) => at = held.until(),
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::zones::debtor_zone;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn every_day(hours: Hours) -> CallingWindow {
        CallingWindow {
            hours,
            days: [true; 7],
            holidays: BTreeSet::new(),
        }
    }

    #[test]
    fn the_law_narrows_the_business_hours_never_widens_them() {
        let wide = every_day(Hours::hm(6, 23));
        let london = debtor_zone("", "GB", "").unwrap();
        let kolkata = debtor_zone("", "IN", "").unwrap();
        // 07:30 London (GMT in January): before the legal 08:00.
        assert!(!wide.allows(&london, "GB", utc("2026-01-12T07:30:00Z")));
        assert!(wide.allows(&london, "GB", utc("2026-01-12T08:00:00Z")));
        assert!(wide.allows(&london, "GB", utc("2026-01-12T20:59:59Z")));
        assert!(!wide.allows(&london, "GB", utc("2026-01-12T21:00:00Z")));
        // India closes at 19:00 IST (13:30 UTC).
        assert!(wide.allows(&kolkata, "IN", utc("2026-01-12T13:29:00Z")));
        assert!(!wide.allows(&kolkata, "IN", utc("2026-01-12T13:30:00Z")));
        // A stricter business wins.
        let strict = every_day(Hours::hm(10, 16));
        assert!(!strict.allows(&london, "GB", utc("2026-01-12T09:00:00Z")));
        assert!(strict.allows(&london, "GB", utc("2026-01-12T10:00:00Z")));
    }

    #[test]
    fn the_window_follows_the_debtors_clock_across_daylight_saving() {
        let window = every_day(Hours::hm(8, 21));
        let new_york = debtor_zone("America/New_York", "US", "").unwrap();
        // 12:30 UTC is 07:30 EST in winter and 08:30 EDT in summer.
        assert!(!window.allows(&new_york, "US", utc("2026-01-15T12:30:00Z")));
        assert!(window.allows(&new_york, "US", utc("2026-07-15T12:30:00Z")));
        // Spring forward (8 March 2026): the opening is 08:00 EDT = 12:00 UTC.
        assert_eq!(
            window.next_opening(&new_york, "US", utc("2026-03-08T06:00:00Z"), 7),
            Some(utc("2026-03-08T12:00:00Z"))
        );
        // Fall back (1 November 2026): 08:00 EST = 13:00 UTC.
        assert_eq!(
            window.next_opening(&new_york, "US", utc("2026-11-01T05:00:00Z"), 7),
            Some(utc("2026-11-01T13:00:00Z"))
        );
    }

    #[test]
    fn a_country_of_several_zones_is_called_only_when_all_are_open() {
        let window = every_day(Hours::hm(8, 21));
        let us = debtor_zone("", "US", "").unwrap();
        // 14:00 UTC in July: 10:00 in New York, 04:00 in Honolulu.
        assert!(!window.allows(&us, "US", utc("2026-07-15T14:00:00Z")));
        // It opens at 08:00 in Honolulu (18:00 UTC), while New York (14:00) is still open.
        assert_eq!(
            window.next_opening(&us, "US", utc("2026-07-15T14:00:00Z"), 7),
            Some(utc("2026-07-15T18:00:00Z"))
        );
    }

    #[test]
    fn days_and_holidays_are_the_debtors_local_dates() {
        let mut window = CallingWindow {
            hours: Hours::hm(9, 17),
            ..CallingWindow::default()
        };
        window
            .holidays
            .insert(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        let london = debtor_zone("Europe/London", "GB", "").unwrap();
        // Thursday 24 December 16:59 → the next opening skips Christmas and the weekend.
        assert_eq!(
            window.next_opening(&london, "GB", utc("2026-12-24T17:00:00Z"), 14),
            Some(utc("2026-12-28T09:00:00Z"))
        );
        // No calling day at all: never.
        window.days = [false; 7];
        assert_eq!(
            window.next_opening(&london, "GB", utc("2026-12-24T17:00:00Z"), 14),
            None
        );
    }

    #[test]
    fn the_weekly_cap_and_the_cool_down() {
        let start = utc("2026-03-02T09:00:00Z");
        let attempts: Vec<Attempt> = (0..7)
            .map(|n| Attempt {
                at: start + Duration::hours(n * 12),
                conversation: false,
            })
            .collect();
        let now = start + Duration::days(4);
        assert_eq!(
            frequency_check(&attempts, now),
            Err(Held::WeeklyCap {
                until: start + WEEK
            })
        );
        assert_eq!(frequency_check(&attempts[1..], now), Ok(()));
        let talked = [Attempt {
            at: start,
            conversation: true,
        }];
        assert_eq!(
            frequency_check(&talked, start + Duration::days(6)),
            Err(Held::CoolingDown {
                until: start + WEEK
            })
        );
        assert_eq!(frequency_check(&talked, start + WEEK), Ok(()));
    }

    fn attempts() -> impl Strategy<Value = Vec<Attempt>> {
        prop::collection::vec((0i64..30 * 24 * 60, prop::bool::weighted(0.2)), 0..40).prop_map(
            |raw| {
                let base = utc("2026-03-01T00:00:00Z");
                raw.into_iter()
                    .map(|(minutes, conversation)| Attempt {
                        at: base + Duration::minutes(minutes),
                        conversation,
                    })
                    .collect()
            },
        )
    }

    proptest! {
        /// The first allowed instant keeps both rules, and nothing earlier is allowed.
        #[test]
        fn frequency_clear_at_is_the_earliest_compliant_instant(
            history in attempts(),
            offset in 0i64..40 * 24 * 60,
        ) {
            let now = utc("2026-03-01T00:00:00Z") + Duration::minutes(offset);
            let at = frequency_clear_at(&history, now);
            prop_assert!(at >= now);
            let in_week = history.iter().filter(|a| a.at <= at && at < a.at + WEEK).count();
            prop_assert!(in_week < MAX_ATTEMPTS_PER_WEEK);
            prop_assert!(!history.iter().any(|a| a.conversation && a.at <= at && at < a.at + WEEK));
            if at > now {
                prop_assert!(frequency_check(&history, at - Duration::seconds(1)).is_err());
            }
        }

        /// The next opening is inside the window in the debtor's local time, and the window
        /// is shut just before it.
        #[test]
        fn next_opening_is_inside_the_window(
            offset in 0i64..365 * 24 * 60,
            zone in prop::sample::select(vec![
                ("Europe/London", "GB"), ("Asia/Kolkata", "IN"), ("America/New_York", "US"),
                ("Australia/Sydney", "AU"), ("", "US"), ("", "BR"),
            ]),
            start in 6u32..12,
            length in 1u32..12,
        ) {
            let window = CallingWindow {
                hours: Hours::hm(start, (start + length).min(23)),
                ..CallingWindow::default()
            };
            let debtor = debtor_zone(zone.0, zone.1, "").unwrap();
            let now = utc("2026-01-01T00:00:00Z") + Duration::minutes(offset);
            if let Some(at) = window.next_opening(&debtor, zone.1, now, 14) {
                prop_assert!(at >= now);
                prop_assert!(window.allows(&debtor, zone.1, at));
                let legal = legal_hours(zone.1);
                for tz in debtor.zones() {
                    let local = at.with_timezone(tz).time();
                    prop_assert!(legal.contains(local), "{} at {}", tz, local);
                }
                if at > now {
                    prop_assert!(!window.allows(&debtor, zone.1, at - Duration::seconds(1)));
                }
            }
        }
    }
}
