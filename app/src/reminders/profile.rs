//! The business profile: who is calling, in which words, when, how often, and the reminder
//! sequence. Shared by the Settings form (in the browser) and the engine; [`validate`] gives
//! every field problem at once.
//!
//! [`validate`]: BusinessProfile::validate

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;

/// The placeholders a call script may use.
pub const PLACEHOLDERS: [&str; 6] = [
    "customer",
    "invoice_number",
    "amount",
    "due_date",
    "business_name",
    "payment_link",
];

/// How a reminder reaches the customer (email comes later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Call,
}

/// One step of the reminder sequence: `offset_days` before (negative), on (0) or after
/// (positive) the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceStep {
    pub offset_days: i32,
    pub channel: Channel,
}

impl SequenceStep {
    pub fn describe(self) -> String {
        let days = |n: i32| {
            if n == 1 {
                "1 day".to_owned()
            } else {
                format!("{n} days")
            }
        };
        match self.offset_days {
            0 => "on the due date".to_owned(),
            n if n < 0 => format!("{} before the due date", days(-n)),
            n => format!("{} after the due date", days(n)),
        }
    }
}

/// A business's calling rules and words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessProfile {
    pub business_name: String,
    /// How the agent names the business on the phone.
    pub caller_identity: String,
    /// BCP 47, e.g. `en` or `en-GB`.
    pub language: String,
    /// IANA zone of the business (its holidays and reports).
    pub timezone: String,
    /// What the agent says after the opening, with `{placeholders}`.
    pub script: String,
    pub payment_link: String,
    /// Calling hours, `HH:MM`, in the debtor's local time (narrowed to the law's by the engine).
    pub call_start: String,
    pub call_end: String,
    /// Monday first.
    pub call_days: [bool; 7],
    /// `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Invoices with a smaller balance are not worth a call (minor units of the invoice's
    /// currency).
    pub min_balance_minor: i64,
    pub max_attempts: u32,
    pub retry_no_answer_minutes: u32,
    pub retry_busy_minutes: u32,
    pub retry_failed_minutes: u32,
    /// A call the agent has not reported on after this long has failed.
    pub agent_timeout_minutes: u32,
    /// Calls of the organization under way at once, at most.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: u32,
    /// Calls placed per day (the organization's local day), at most: the call budget.
    #[serde(default = "default_daily_call_limit")]
    pub daily_call_limit: u32,
    pub sequence: Vec<SequenceStep>,
    /// Off for a new organization until someone has looked at the dry-run calendar.
    pub calls_enabled: bool,
}

impl BusinessProfile {
    /// The starting profile of an organization: weekday office hours, three calls (on the due
    /// date, a week and two weeks after), calls off.
    pub fn new(business_name: &str, timezone: &str) -> Self {
        Self {
            business_name: business_name.to_owned(),
            caller_identity: business_name.to_owned(),
            language: "en".into(),
            timezone: timezone.to_owned(),
            script: "I'm calling about invoice {invoice_number} for {amount}, which was due on \
                     {due_date}. Could you tell me when it will be paid?"
                .into(),
            payment_link: String::new(),
            call_start: "09:00".into(),
            call_end: "18:00".into(),
            call_days: [true, true, true, true, true, false, false],
            holidays: Vec::new(),
            min_balance_minor: 0,
            max_attempts: 3,
            retry_no_answer_minutes: 240,
            retry_busy_minutes: 60,
            retry_failed_minutes: 120,
            agent_timeout_minutes: 10,
            max_concurrent_calls: default_max_concurrent_calls(),
            daily_call_limit: default_daily_call_limit(),
            sequence: [0, 7, 14]
                .map(|offset_days| SequenceStep {
                    offset_days,
                    channel: Channel::Call,
                })
                .to_vec(),
            calls_enabled: false,
        }
    }

    /// Every problem with the profile, by field.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        for (field, value, max) in [
            ("business_name", &self.business_name, 100),
            ("caller_identity", &self.caller_identity, 100),
        ] {
            let len = value.trim().chars().count();
            if len == 0 {
                errors.add(field, "Required.");
            } else if len > max {
                errors.add(field, format!("At most {max} characters."));
            }
        }
        if !valid_language(&self.language) {
            errors.add("language", "Use a language tag such as en or en-GB.");
        }
        if self.timezone.trim().is_empty() {
            errors.add("timezone", "Required.");
        } else if !valid_timezone(&self.timezone) {
            errors.add("timezone", "Use an IANA time zone such as Europe/London.");
        }
        match placeholders(&self.script) {
            _ if self.script.trim().is_empty() => errors.add("script", "Required."),
            _ if self.script.chars().count() > 2_000 => {
                errors.add("script", "At most 2,000 characters.")
            }
            Err(message) => errors.add("script", message),
            Ok(used) => {
                if used.contains(&"payment_link") && self.payment_link.trim().is_empty() {
                    errors.add(
                        "payment_link",
                        "The script uses {payment_link}: give the link.",
                    );
                }
            }
        }
        let link = self.payment_link.trim();
        let web_address = link.starts_with("https://") || link.starts_with("http://");
        if !link.is_empty() && !web_address {
            errors.add("payment_link", "Use a full web address (https://…).");
        }
        let start = parse_time(&self.call_start);
        let end = parse_time(&self.call_end);
        if start.is_none() {
            errors.add("call_start", "Use a time like 09:00.");
        }
        if end.is_none() {
            errors.add("call_end", "Use a time like 18:00.");
        }
        if let (Some(start), Some(end)) = (start, end)
            && start >= end
        {
            errors.add("call_end", "The calling hours must end after they start.");
        }
        if !self.call_days.iter().any(|d| *d) {
            errors.add("call_days", "Choose at least one calling day.");
        }
        if self.holidays.len() > 366 {
            errors.add("holidays", "At most 366 holidays.");
        }
        if let Some(bad) = self.holidays.iter().find(|d| !valid_date(d)) {
            errors.add(
                "holidays",
                format!("{bad:?} is not a date like 2026-12-25."),
            );
        }
        if self.min_balance_minor < 0 {
            errors.add("min_balance_minor", "Cannot be negative.");
        }
        if !(1..=20).contains(&self.max_attempts) {
            errors.add("max_attempts", "Between 1 and 20.");
        }
        for (field, minutes) in [
            ("retry_no_answer_minutes", self.retry_no_answer_minutes),
            ("retry_busy_minutes", self.retry_busy_minutes),
            ("retry_failed_minutes", self.retry_failed_minutes),
        ] {
            if !(15..=7 * 24 * 60).contains(&minutes) {
                errors.add(field, "Between 15 minutes and 7 days.");
            }
        }
        if !(1..=60).contains(&self.agent_timeout_minutes) {
            errors.add("agent_timeout_minutes", "Between 1 and 60 minutes.");
        }
        if !(1..=50).contains(&self.max_concurrent_calls) {
            errors.add("max_concurrent_calls", "Between 1 and 50.");
        }
        if !(1..=10_000).contains(&self.daily_call_limit) {
            errors.add("daily_call_limit", "Between 1 and 10,000.");
        }
        if self.sequence.is_empty() || self.sequence.len() > 10 {
            errors.add("sequence", "Between 1 and 10 steps.");
        } else if let Some(step) = self
            .sequence
            .iter()
            .find(|s| !(-60..=365).contains(&s.offset_days))
        {
            errors.add(
                "sequence",
                format!(
                    "{}: steps go from 60 days before to 365 days after the due date.",
                    step.describe()
                ),
            );
        } else {
            let mut offsets: Vec<i32> = self.sequence.iter().map(|s| s.offset_days).collect();
            offsets.sort_unstable();
            if offsets.windows(2).any(|w| w[0] == w[1]) {
                errors.add("sequence", "Two steps fall on the same day.");
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The words every call opens with: who is calling, that it is an AI, that the call is
    /// recorded, and how to stop the calls.
    pub fn opening(&self) -> String {
        format!(
            "Hello, this is an automated assistant calling on behalf of {}. I'm an AI, and this \
             call is recorded. If you would rather not get these calls, just say so and we will \
             stop.",
            self.caller_identity.trim()
        )
    }

    /// The script with its placeholders filled (`values` by placeholder name; the business
    /// name and payment link come from the profile). Unknown placeholders stay as written.
    pub fn render_script(&self, values: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(self.script.len() + 64);
        for piece in pieces(&self.script) {
            match piece {
                Piece::Text(text) | Piece::Unclosed(text) => out.push_str(text),
                Piece::Placeholder(name) => {
                    let value = match name {
                        "business_name" => Some(self.business_name.as_str()),
                        "payment_link" => Some(self.payment_link.as_str()),
                        _ => values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
                    };
                    match value {
                        Some(value) => out.push_str(value),
                        None => out.push_str(&format!("{{{name}}}")),
                    }
                }
            }
        }
        out
    }
}

/// The calling-rules form as the browser posts it: every field as typed. [`ProfileForm::apply`]
/// turns it into a profile, naming each field it cannot read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    pub business_name: String,
    pub caller_identity: String,
    pub language: String,
    pub timezone: String,
    pub script: String,
    pub payment_link: String,
    pub call_start: String,
    pub call_end: String,
    /// Checkboxes: present ("on") when ticked.
    pub mon: Option<String>,
    pub tue: Option<String>,
    pub wed: Option<String>,
    pub thu: Option<String>,
    pub fri: Option<String>,
    pub sat: Option<String>,
    pub sun: Option<String>,
    /// Dates separated by commas, spaces or lines.
    pub holidays: String,
    /// An amount such as `25` or `25.00`.
    pub min_balance: String,
    pub max_attempts: String,
    pub retry_no_answer_minutes: String,
    pub retry_busy_minutes: String,
    pub retry_failed_minutes: String,
    pub agent_timeout_minutes: String,
    pub max_concurrent_calls: String,
    pub daily_call_limit: String,
    /// Days from the due date, e.g. `-3, 0, 7, 14`.
    pub sequence: String,
}

/// The names of the calling days' checkboxes, Monday first.
pub const DAY_FIELDS: [(&str, &str); 7] = [
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
];

impl ProfileForm {
    /// The form filled in from a profile.
    pub fn from_profile(profile: &BusinessProfile) -> Self {
        let on = |day: usize| profile.call_days[day].then(|| "on".to_owned());
        let whole = profile.min_balance_minor / 100;
        let cents = profile.min_balance_minor % 100;
        Self {
            business_name: profile.business_name.clone(),
            caller_identity: profile.caller_identity.clone(),
            language: profile.language.clone(),
            timezone: profile.timezone.clone(),
            script: profile.script.clone(),
            payment_link: profile.payment_link.clone(),
            call_start: profile.call_start.clone(),
            call_end: profile.call_end.clone(),
            mon: on(0),
            tue: on(1),
            wed: on(2),
            thu: on(3),
            fri: on(4),
            sat: on(5),
            sun: on(6),
            holidays: profile.holidays.join(", "),
            min_balance: if cents == 0 {
                whole.to_string()
            } else {
                format!("{whole}.{cents:02}")
            },
            max_attempts: profile.max_attempts.to_string(),
            retry_no_answer_minutes: profile.retry_no_answer_minutes.to_string(),
            retry_busy_minutes: profile.retry_busy_minutes.to_string(),
            retry_failed_minutes: profile.retry_failed_minutes.to_string(),
            agent_timeout_minutes: profile.agent_timeout_minutes.to_string(),
            max_concurrent_calls: profile.max_concurrent_calls.to_string(),
            daily_call_limit: profile.daily_call_limit.to_string(),
            sequence: profile
                .sequence
                .iter()
                .map(|s| s.offset_days.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The fields as a browser posts them (unticked days are left out).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("business_name", self.business_name.clone()),
            ("caller_identity", self.caller_identity.clone()),
            ("language", self.language.clone()),
            ("timezone", self.timezone.clone()),
            ("script", self.script.clone()),
            ("payment_link", self.payment_link.clone()),
            ("call_start", self.call_start.clone()),
            ("call_end", self.call_end.clone()),
            ("holidays", self.holidays.clone()),
            ("min_balance", self.min_balance.clone()),
            ("max_attempts", self.max_attempts.clone()),
            (
                "retry_no_answer_minutes",
                self.retry_no_answer_minutes.clone(),
            ),
            ("retry_busy_minutes", self.retry_busy_minutes.clone()),
            ("retry_failed_minutes", self.retry_failed_minutes.clone()),
            ("agent_timeout_minutes", self.agent_timeout_minutes.clone()),
            ("max_concurrent_calls", self.max_concurrent_calls.clone()),
            ("daily_call_limit", self.daily_call_limit.clone()),
            ("sequence", self.sequence.clone()),
        ];
        let days = [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ];
        for ((name, _), day) in DAY_FIELDS.iter().zip(days) {
            if let Some(value) = day {
                fields.push((name, value.clone()));
            }
        }
        fields
    }

    /// `base` with the form's values; every unreadable or invalid field is named.
    pub fn apply(&self, base: &BusinessProfile) -> Result<BusinessProfile, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut number = |field: &str, text: &str| -> u32 {
            match text.trim().parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    errors.add(field, "Enter a whole number.");
                    0
                }
            }
        };
        let max_attempts = number("max_attempts", &self.max_attempts);
        let retry_no_answer_minutes =
            number("retry_no_answer_minutes", &self.retry_no_answer_minutes);
        let retry_busy_minutes = number("retry_busy_minutes", &self.retry_busy_minutes);
        let retry_failed_minutes = number("retry_failed_minutes", &self.retry_failed_minutes);
        let agent_timeout_minutes = number("agent_timeout_minutes", &self.agent_timeout_minutes);
        let max_concurrent_calls = number("max_concurrent_calls", &self.max_concurrent_calls);
        let daily_call_limit = number("daily_call_limit", &self.daily_call_limit);
        let min_balance_minor = match parse_amount(&self.min_balance) {
            Some(minor) => minor,
            None => {
                errors.add("min_balance", "Enter an amount such as 25 or 25.00.");
                0
            }
        };
        let mut sequence = Vec::new();
        for part in self
            .sequence
            .split([',', ' ', ';'])
            .filter(|p| !p.trim().is_empty())
        {
            match part.trim().trim_start_matches('+').parse::<i32>() {
                Ok(offset_days) => sequence.push(SequenceStep {
                    offset_days,
                    channel: Channel::Call,
                }),
                Err(_) => {
                    errors.add(
                        "sequence",
                        format!("{part:?} is not a number of days. Use e.g. -3, 0, 7, 14."),
                    );
                    break;
                }
            }
        }
        sequence.sort_by_key(|s| s.offset_days);
        let holidays: Vec<String> = self
            .holidays
            .split([',', ' ', '\n', '\r', ';'])
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
        let days = [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
        .map(|d| d.as_deref().is_some_and(|v| !v.is_empty() && v != "off"));
        let profile = BusinessProfile {
            business_name: self.business_name.trim().to_owned(),
            caller_identity: self.caller_identity.trim().to_owned(),
            language: self.language.trim().to_owned(),
            timezone: self.timezone.trim().to_owned(),
            script: self.script.trim().to_owned(),
            payment_link: self.payment_link.trim().to_owned(),
            call_start: self.call_start.trim().to_owned(),
            call_end: self.call_end.trim().to_owned(),
            call_days: days,
            holidays,
            min_balance_minor,
            max_attempts,
            retry_no_answer_minutes,
            retry_busy_minutes,
            retry_failed_minutes,
            agent_timeout_minutes,
            max_concurrent_calls,
            daily_call_limit,
            sequence,
            calls_enabled: base.calls_enabled,
        };
        // Fields that could not be read keep their own message.
        if let Err(more) = profile.validate() {
            for error in more.0 {
                if errors.get(&error.field).is_none() {
                    errors.add(&error.field, error.message);
                }
            }
        }
        if errors.is_empty() {
            Ok(profile)
        } else {
            Err(errors)
        }
    }
}

/// `25`, `25.5` or `25.50` as minor units (two decimals).
fn parse_amount(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

fn default_max_concurrent_calls() -> u32 {
    3
}

fn default_daily_call_limit() -> u32 {
    200
}

/// A part of a script: text, a `{placeholder}` (its name), or a `{` never closed (the rest).
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
    Unclosed(&'a str),
}

fn pieces(script: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = script;
    while let Some(open) = rest.find('{') {
        pieces.push(Piece::Text(&rest[..open]));
        match rest[open + 1..].find('}') {
            Some(close) => {
                pieces.push(Piece::Placeholder(&rest[open + 1..open + 1 + close]));
                rest = &rest[open + close + 2..];
            }
            None => {
                pieces.push(Piece::Unclosed(&rest[open..]));
                return pieces;
            }
        }
    }
    pieces.push(Piece::Text(rest));
    pieces
}

/// The placeholders `script` uses, or what is wrong with one.
fn placeholders(script: &str) -> Result<Vec<&str>, String> {
    let mut used = Vec::new();
    for piece in pieces(script) {
        match piece {
            Piece::Text(_) => {}
            Piece::Unclosed(_) => return Err("A { is not closed with }.".to_owned()),
            Piece::Placeholder(name) if PLACEHOLDERS.contains(&name) => used.push(name),
            Piece::Placeholder(name) => {
                return Err(format!(
                    "Unknown placeholder {{{name}}}. Use {}.",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ));
            }
        }
    }
    Ok(used)
}

/// `HH:MM` (24-hour) as minutes after midnight; `24:00` is the end of the day.
pub fn parse_time(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

fn valid_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(feature = "ssr")]
fn valid_timezone(name: &str) -> bool {
    name.trim().parse::<chrono_tz::Tz>().is_ok()
}

#[cfg(feature = "ssr")]
fn valid_date(text: &str) -> bool {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// In the browser (no zone or calendar data) the server has the last word on zones and
/// dates: only their form is checked here.
#[cfg(not(feature = "ssr"))]
fn valid_timezone(name: &str) -> bool {
    name.contains('/') || name == "UTC"
}

#[cfg(not(feature = "ssr"))]
fn valid_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(n, c)| match n {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_round_trips_and_names_what_it_cannot_read() {
        let mut profile = BusinessProfile::new("Acme", "Europe/London");
        profile.min_balance_minor = 2_550;
        profile.holidays = vec!["2026-12-25".into()];
        profile.call_days[5] = true;
        let form = ProfileForm::from_profile(&profile);
        assert_eq!(form.min_balance, "25.50");
        assert_eq!(form.apply(&profile), Ok(profile.clone()));
        let mut bad = form.clone();
        bad.sequence = "-3, soon".into();
        bad.min_balance = "12.345".into();
        bad.max_attempts = "many".into();
        bad.call_end = "25:00".into();
        let errors = bad.apply(&profile).unwrap_err();
        for field in ["sequence", "min_balance", "max_attempts", "call_end"] {
            assert!(errors.get(field).is_some(), "{field}: {errors:?}");
        }
        assert_eq!(errors.get("max_attempts"), Some("Enter a whole number."));
        // Steps come back in order, whatever order they were typed in.
        let mut shuffled = form;
        shuffled.sequence = "14 -2 +7".into();
        let offsets: Vec<i32> = shuffled
            .apply(&profile)
            .unwrap()
            .sequence
            .iter()
            .map(|s| s.offset_days)
            .collect();
        assert_eq!(offsets, vec![-2, 7, 14]);
    }

    #[test]
    fn the_starting_profile_is_valid_and_calls_are_off() {
        let profile = BusinessProfile::new("Acme Ltd", "Europe/London");
        assert_eq!(profile.validate(), Ok(()));
        assert!(!profile.calls_enabled);
        assert_eq!(profile.agent_timeout_minutes, 10);
    }

    #[test]
    fn every_problem_is_named_by_field() {
        let mut profile = BusinessProfile::new("", "Mars/Olympus");
        profile.script = "Pay {amount} now, {nickname}".into();
        profile.call_start = "18:00".into();
        profile.call_end = "09:00".into();
        profile.call_days = [false; 7];
        profile.holidays = vec!["2026-02-30".into()];
        profile.max_attempts = 0;
        profile.retry_busy_minutes = 5;
        profile.agent_timeout_minutes = 0;
        profile.sequence.push(SequenceStep {
            offset_days: 7,
            channel: Channel::Call,
        });
        let errors = profile.validate().unwrap_err();
        for field in [
            "business_name",
            "caller_identity",
            "timezone",
            "script",
            "call_end",
            "call_days",
            "holidays",
            "max_attempts",
            "retry_busy_minutes",
            "agent_timeout_minutes",
            "sequence",
        ] {
            assert!(errors.get(field).is_some(), "{field}: {errors:?}");
        }
        assert!(errors.get("script").unwrap().contains("{nickname}"));
        assert_eq!(
            errors.get("sequence"),
            Some("Two steps fall on the same day.")
        );
    }

    #[test]
    fn the_script_is_filled_in_and_the_opening_discloses() {
        let mut profile = BusinessProfile::new("Acme Ltd", "Europe/London");
        profile.script =
            "Invoice {invoice_number} from {business_name}: {amount}. {payment_link}".into();
        profile.payment_link = "https://pay.example/acme".into();
        assert_eq!(profile.validate(), Ok(()));
        assert_eq!(
            profile.render_script(&[("invoice_number", "INV-7"), ("amount", "£250.00")]),
            "Invoice INV-7 from Acme Ltd: £250.00. https://pay.example/acme"
        );
        // A value not given stays as written; an unclosed brace is refused.
        assert_eq!(
            profile.render_script(&[]),
            "Invoice {invoice_number} from Acme Ltd: {amount}. https://pay.example/acme"
        );
        profile.script = "Pay {amount".into();
        assert_eq!(
            profile.validate().unwrap_err().get("script"),
            Some("A { is not closed with }.")
        );
        let opening = profile.opening();
        for part in ["Acme Ltd", "AI", "recorded", "not get these calls"] {
            assert!(opening.contains(part), "{part}");
        }
    }

    #[test]
    fn times_dates_and_steps() {
        assert_eq!(parse_time("08:30"), Some(510));
        assert_eq!(parse_time("24:00"), Some(1440));
        assert_eq!(parse_time("24:01"), None);
        assert_eq!(parse_time("8:30"), None);
        assert!(valid_date("2028-02-29") && !valid_date("2026-02-29") && !valid_date("2026-13-01"));
        let step = |offset_days| SequenceStep {
            offset_days,
            channel: Channel::Call,
        };
        assert_eq!(step(-3).describe(), "3 days before the due date");
        assert_eq!(step(0).describe(), "on the due date");
        assert_eq!(step(1).describe(), "1 day after the due date");
    }
}
