//! Receivables types shared by the browser and the server: invoice status, currencies and
//! money, aging buckets, and phone status, with the parsing both sides apply.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An invoice's state as the accounting system reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Sent,
    Overdue,
    PartiallyPaid,
    Paid,
    Void,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 6] = [
        Self::Draft,
        Self::Sent,
        Self::Overdue,
        Self::PartiallyPaid,
        Self::Paid,
        Self::Void,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::Overdue => "overdue",
            Self::PartiallyPaid => "partially_paid",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::Sent => "Sent",
            Self::Overdue => "Overdue",
            Self::PartiallyPaid => "Partially paid",
            Self::Paid => "Paid",
            Self::Void => "Void",
        }
    }

    /// Accepts the stored names and the common spellings of exports ("Partially Paid").
    pub fn parse(value: &str) -> Result<Self, String> {
        let normalized = value.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == normalized)
            .ok_or_else(|| {
                format!("unknown status {value:?}; use draft, sent, overdue, partially_paid, paid or void")
            })
    }

    /// Whether money is still owed on an invoice in this state (its balance decides how much).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Sent | Self::Overdue | Self::PartiallyPaid)
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An ISO 4217 currency code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Currency(String);

impl Currency {
    pub fn parse(value: &str) -> Result<Self, String> {
        let code = value.trim().to_ascii_uppercase();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(format!(
                "{value:?} is not a three-letter currency code like USD"
            ))
        }
    }

    pub fn code(&self) -> &str {
        &self.0
    }

    /// ISO 4217's "no currency", for a stored code that no longer parses.
    pub fn unknown() -> Self {
        Self("XXX".to_owned())
    }

    /// Digits after the decimal point (ISO 4217 minor unit).
    pub fn minor_digits(&self) -> u32 {
        match self.0.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    fn symbol(&self) -> Option<&'static str> {
        Some(match self.0.as_str() {
            "USD" => "$",
            "EUR" => "€",
            "GBP" => "£",
            "INR" => "₹",
            "JPY" => "¥",
            "AUD" => "A$",
            "CAD" => "CA$",
            "NZD" => "NZ$",
            "SGD" => "S$",
            "AED" => "AED ",
            "ZAR" => "R",
            "BRL" => "R$",
            "MXN" => "MX$",
            "CHF" => "CHF ",
            _ => return None,
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a decimal amount ("1234.5", "-20", "0.125") into minor units of `currency`.
/// No thousands separators, no exponent, no more decimals than the currency has.
pub fn parse_amount(value: &str, currency: &Currency) -> Result<i64, String> {
    let text = value.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = currency.minor_digits() as usize;
    let well_formed = !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.chars().all(|c| c.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    if !well_formed {
        return Err(format!("{value:?} is not an amount like 1234.50"));
    }
    if fraction.len() > scale {
        return Err(format!(
            "{value:?} has more than {scale} decimals for {currency}"
        ));
    }
    let mut minor: i64 = 0;
    for c in whole
        .chars()
        .chain(fraction.chars())
        .chain(std::iter::repeat_n('0', scale - fraction.len()))
    {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(c as u8 - b'0')))
            .ok_or_else(|| format!("{value:?} is too large"))?;
    }
    Ok(if negative { -minor } else { minor })
}

/// How an organization wants numbers written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NumberStyle {
    /// 1,234,567.89
    #[default]
    English,
    /// 1.234.567,89
    Continental,
    /// 1 234 567,89
    French,
    /// 12,34,567.89
    Indian,
}

impl NumberStyle {
    /// The usual style for a BCP 47 locale such as "en-GB", "de-DE", "fr-FR" or "en-IN".
    pub fn for_locale(locale: &str) -> Self {
        let lower = locale.to_ascii_lowercase();
        let language = lower.split(['-', '_']).next().unwrap_or_default();
        if lower.ends_with("-in") || lower.ends_with("_in") {
            Self::Indian
        } else if matches!(
            language,
            "fr" | "sv" | "nb" | "fi" | "pl" | "cs" | "ru" | "uk"
        ) {
            Self::French
        } else if matches!(
            language,
            "de" | "es" | "it" | "nl" | "pt" | "da" | "tr" | "id"
        ) {
            Self::Continental
        } else {
            Self::English
        }
    }
}

/// An amount of money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// "£1,234.50", "-€12,00", "CHF 1'…" style output with the currency's symbol (or code).
    pub fn format(&self, style: NumberStyle) -> String {
        let digits = self.currency.minor_digits();
        let scale = 10_i64.pow(digits);
        let abs = self.minor.unsigned_abs();
        let whole = abs / scale.unsigned_abs();
        let fraction = abs % scale.unsigned_abs();
        let (group_sep, decimal_sep) = match style {
            NumberStyle::English | NumberStyle::Indian => (',', '.'),
            NumberStyle::Continental => ('.', ','),
            NumberStyle::French => ('\u{202f}', ','),
        };
        let whole = group(whole, group_sep, style == NumberStyle::Indian);
        let number = if digits == 0 {
            whole
        } else {
            format!(
                "{whole}{decimal_sep}{fraction:0width$}",
                width = digits as usize
            )
        };
        let sign = if self.minor < 0 { "-" } else { "" };
        match self.currency.symbol() {
            Some(symbol) if matches!(style, NumberStyle::English | NumberStyle::Indian) => {
                format!("{sign}{symbol}{number}")
            }
            Some(symbol) => format!("{sign}{number}\u{a0}{}", symbol.trim()),
            None => format!("{sign}{number}\u{a0}{}", self.currency),
        }
    }
}

fn group(value: u64, separator: char, indian: bool) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    let len = digits.len();
    for (i, c) in digits.chars().enumerate() {
        let remaining = len - i;
        if i > 0 {
            let boundary = if indian && remaining > 3 {
                (remaining - 3).is_multiple_of(2)
            } else {
                remaining.is_multiple_of(3)
            };
            if boundary {
                out.push(separator);
            }
        }
        out.push(c);
    }
    out
}

/// How late an open invoice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgingBucket {
    /// Not yet due.
    Current,
    Days1To30,
    Days31To60,
    Days61To90,
    Over90,
}

impl AgingBucket {
    pub const ALL: [AgingBucket; 5] = [
        Self::Current,
        Self::Days1To30,
        Self::Days31To60,
        Self::Days61To90,
        Self::Over90,
    ];

    pub fn from_days_overdue(days: i64) -> Self {
        match days {
            i64::MIN..=0 => Self::Current,
            1..=30 => Self::Days1To30,
            31..=60 => Self::Days31To60,
            61..=90 => Self::Days61To90,
            _ => Self::Over90,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Days1To30 => "1-30",
            Self::Days31To60 => "31-60",
            Self::Days61To90 => "61-90",
            Self::Over90 => "90+",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Current => "Current",
            Self::Days1To30 => "1–30 days",
            Self::Days31To60 => "31–60 days",
            Self::Days61To90 => "61–90 days",
            Self::Over90 => "90+ days",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == value)
    }

    /// The inclusive range of days overdue in this bucket (`None` = unbounded).
    pub fn days(self) -> (Option<i64>, Option<i64>) {
        match self {
            Self::Current => (None, Some(0)),
            Self::Days1To30 => (Some(1), Some(30)),
            Self::Days31To60 => (Some(31), Some(60)),
            Self::Days61To90 => (Some(61), Some(90)),
            Self::Over90 => (Some(91), None),
        }
    }
}

/// What an upsert did to one kind of record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertCounts {
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub customers: UpsertCounts,
    pub invoices: UpsertCounts,
}

/// One problem in an imported file: its row (the header is row 1), column and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub message: String,
}

impl RowError {
    pub fn new(row: usize, column: &str, message: impl Into<String>) -> Self {
        Self {
            row,
            column: column.to_owned(),
            message: message.into(),
        }
    }
}

/// Whether a customer can be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneStatus {
    /// A valid number to call.
    Valid,
    /// Numbers are on file, but none is usable.
    Invalid,
    /// No number on file.
    Missing,
}

impl PhoneStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Missing => "missing",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "valid" => Some(Self::Valid),
            "invalid" => Some(Self::Invalid),
            "missing" => Some(Self::Missing),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn usd() -> Currency {
        Currency::parse("usd").unwrap()
    }

    #[test]
    fn statuses_parse_export_spellings() {
        assert_eq!(
            InvoiceStatus::parse("Partially Paid"),
            Ok(InvoiceStatus::PartiallyPaid)
        );
        assert_eq!(
            InvoiceStatus::parse(" OVERDUE "),
            Ok(InvoiceStatus::Overdue)
        );
        assert!(InvoiceStatus::parse("unpaid").is_err());
        assert!(
            InvoiceStatus::Overdue.is_open()
                && !InvoiceStatus::Paid.is_open()
                && !InvoiceStatus::Draft.is_open()
        );
    }

    #[test]
    fn amounts_parse_to_minor_units() {
        assert_eq!(parse_amount("1234.5", &usd()), Ok(123_450));
        assert_eq!(parse_amount("-20", &usd()), Ok(-2_000));
        assert_eq!(parse_amount("0.07", &usd()), Ok(7));
        assert_eq!(
            parse_amount("1500", &Currency::parse("JPY").unwrap()),
            Ok(1_500)
        );
        assert_eq!(
            parse_amount("1.125", &Currency::parse("KWD").unwrap()),
            Ok(1_125)
        );
        for bad in [
            "",
            "1,234.00",
            "1.234",
            "12.",
            ".5",
            "1e3",
            "abc",
            "--1",
            "99999999999999999999",
        ] {
            assert!(parse_amount(bad, &usd()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn money_formats_by_style() {
        let gbp = Money::new(123_456_789, Currency::parse("GBP").unwrap());
        assert_eq!(gbp.format(NumberStyle::English), "£1,234,567.89");
        let eur = Money::new(-123_456, Currency::parse("EUR").unwrap());
        assert_eq!(eur.format(NumberStyle::Continental), "-1.234,56\u{a0}€");
        let inr = Money::new(123_456_789, Currency::parse("INR").unwrap());
        assert_eq!(inr.format(NumberStyle::Indian), "₹12,34,567.89");
        let jpy = Money::new(1_500_000, Currency::parse("JPY").unwrap());
        assert_eq!(jpy.format(NumberStyle::English), "¥1,500,000");
        let sek = Money::new(100_050, Currency::parse("SEK").unwrap());
        assert_eq!(sek.format(NumberStyle::French), "1\u{202f}000,50\u{a0}SEK");
        assert_eq!(NumberStyle::for_locale("de-DE"), NumberStyle::Continental);
        assert_eq!(NumberStyle::for_locale("en-IN"), NumberStyle::Indian);
    }

    #[test]
    fn aging_buckets_cover_every_day() {
        assert_eq!(AgingBucket::from_days_overdue(-5), AgingBucket::Current);
        assert_eq!(AgingBucket::from_days_overdue(0), AgingBucket::Current);
        assert_eq!(AgingBucket::from_days_overdue(1), AgingBucket::Days1To30);
        assert_eq!(AgingBucket::from_days_overdue(31), AgingBucket::Days31To60);
        assert_eq!(AgingBucket::from_days_overdue(90), AgingBucket::Days61To90);
        assert_eq!(AgingBucket::from_days_overdue(91), AgingBucket::Over90);
    }

    proptest! {
        #[test]
        fn amounts_round_trip_through_formatting(minor in -10_000_000_000_i64..10_000_000_000) {
            let money = Money::new(minor, usd());
            let text = money.format(NumberStyle::English).replace(['$', ','], "");
            prop_assert_eq!(parse_amount(&text, &usd()), Ok(minor));
        }

        #[test]
        fn every_day_falls_in_its_bucket(days in -1000_i64..1000) {
            let bucket = AgingBucket::from_days_overdue(days);
            let (from, to) = bucket.days();
            prop_assert!(from.is_none_or(|f| days >= f) && to.is_none_or(|t| days <= t));
        }
    }
}
