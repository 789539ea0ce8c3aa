//! Zoho Books' JSON as it arrives, and its translation into Duecall's records.
//!
//! Zoho ids are digit strings (some beyond 2^53, so never numbers), times look like
//! `2013-11-18T02:02:51-0800`, amounts are JSON decimals and countries are free text
//! ("U.S.A", "United Kingdom"). Fields Zoho leaves out default to empty.

use std::str::FromStr;

use app::receivables::model::{Currency, InvoiceStatus};
use app::receivables::upsert::{ContactRecord, CustomerRecord, InvoiceRecord};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Deserializer};

/// The time format of `last_modified_time` and friends, also what the API accepts back.
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

/// Parses Zoho's `2013-11-18T02:02:51-0800` (an offset with a colon is accepted too).
pub fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(text.trim(), TIME_FORMAT).ok()
}

/// Formats an instant the way Zoho writes it, in UTC.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.format(TIME_FORMAT).to_string()
}

/// A Zoho id: a digit string, accepted as a JSON string or integer.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Text(text) => text,
        Id::Number(n) => n.to_string(),
    })
}

/// Text that Zoho sometimes sends as `null`.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// `page_context` of a list answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageContext {
    #[serde(default)]
    pub page: u32,
    #[serde(default)]
    pub has_more_page: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Organization {
    #[serde(deserialize_with = "id")]
    pub organization_id: String,
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    #[serde(default, deserialize_with = "text")]
    pub currency_code: String,
    #[serde(default, deserialize_with = "text")]
    pub time_zone: String,
    #[serde(default)]
    pub is_default_org: bool,
}

/// A row of `GET /contacts`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContactRow {
    #[serde(deserialize_with = "id")]
    pub contact_id: String,
    #[serde(default, deserialize_with = "text")]
    pub contact_name: String,
    #[serde(default, deserialize_with = "text")]
    pub company_name: String,
    #[serde(default, deserialize_with = "text")]
    pub status: String,
    #[serde(default, deserialize_with = "text")]
    pub first_name: String,
    #[serde(default, deserialize_with = "text")]
    pub last_name: String,
    #[serde(default, deserialize_with = "text")]
    pub email: String,
    #[serde(default, deserialize_with = "text")]
    pub phone: String,
    #[serde(default, deserialize_with = "text")]
    pub mobile: String,
    #[serde(default, deserialize_with = "text")]
    pub currency_code: String,
    #[serde(default)]
    pub outstanding_receivable_amount: Option<serde_json::Number>,
    #[serde(default, deserialize_with = "text")]
    pub last_modified_time: String,
}

impl ContactRow {
    /// Whether the customer owes anything (then its contact persons and address matter).
    pub fn owes(&self) -> bool {
        self.outstanding_receivable_amount
            .as_ref()
            .and_then(serde_json::Number::as_f64)
            .is_some_and(|amount| amount > 0.0)
    }

    pub fn modified(&self) -> Option<DateTime<FixedOffset>> {
        parse_time(&self.last_modified_time)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Address {
    #[serde(default, deserialize_with = "text")]
    pub address: String,
    #[serde(default, deserialize_with = "text")]
    pub street2: String,
    #[serde(default, deserialize_with = "text")]
    pub city: String,
    #[serde(default, deserialize_with = "text")]
    pub state: String,
    #[serde(default, deserialize_with = "text")]
    pub zip: String,
    #[serde(default, deserialize_with = "text")]
    pub country: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContactPerson {
    #[serde(default, deserialize_with = "text")]
    pub first_name: String,
    #[serde(default, deserialize_with = "text")]
    pub last_name: String,
    #[serde(default, deserialize_with = "text")]
    pub email: String,
    #[serde(default, deserialize_with = "text")]
    pub phone: String,
    #[serde(default, deserialize_with = "text")]
    pub mobile: String,
    #[serde(default)]
    pub is_primary_contact: bool,
}

/// `GET /contacts/{id}`: the row's fields plus contact persons, address and notes.
#[derive(Debug, Clone, Deserialize)]
pub struct ContactDetail {
    #[serde(flatten)]
    pub row: ContactRow,
    #[serde(default)]
    pub contact_persons: Vec<ContactPerson>,
    #[serde(default)]
    pub billing_address: Option<Address>,
    #[serde(default, deserialize_with = "text")]
    pub notes: String,
}

/// A row of `GET /invoices`.
#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceRow {
    #[serde(deserialize_with = "id")]
    pub invoice_id: String,
    #[serde(deserialize_with = "id")]
    pub customer_id: String,
    #[serde(default, deserialize_with = "text")]
    pub invoice_number: String,
    #[serde(default, deserialize_with = "text")]
    pub status: String,
    #[serde(default, deserialize_with = "text")]
    pub date: String,
    #[serde(default, deserialize_with = "text")]
    pub due_date: String,
    #[serde(default, deserialize_with = "text")]
    pub currency_code: String,
    #[serde(default)]
    pub total: Option<serde_json::Number>,
    #[serde(default)]
    pub balance: Option<serde_json::Number>,
    #[serde(default, deserialize_with = "text")]
    pub payment_expected_date: String,
    #[serde(default, deserialize_with = "text")]
    pub last_modified_time: String,
}

impl InvoiceRow {
    pub fn modified(&self) -> Option<DateTime<FixedOffset>> {
        parse_time(&self.last_modified_time)
    }
}

/// Why a Zoho record could not be stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{record} {id}: {message}")]
pub struct RecordError {
    pub record: &'static str,
    pub id: String,
    pub message: String,
}

fn millis(time: &str) -> Option<i64> {
    parse_time(time).map(|t| t.timestamp_millis())
}

/// A JSON decimal in the currency's minor units (amounts stay far below 2^53 minor units,
/// where an f64 is exact to the cent).
pub fn minor_units(amount: Option<&serde_json::Number>, currency: &Currency) -> Option<i64> {
    let Some(amount) = amount else {
        return Some(0);
    };
    let value = amount.as_f64()?;
    let scaled = (value * 10_f64.powi(currency.minor_digits() as i32)).round();
    (scaled.is_finite() && scaled.abs() < 9.0e15).then_some(scaled as i64)
}

/// A free-text country ("U.S.A", "United Kingdom", "de") as ISO 3166-1 alpha-2, or empty.
pub fn country_code(text: &str) -> String {
    let compact: String = text.chars().filter(|c| c.is_alphanumeric()).collect();
    if compact.is_empty() {
        return String::new();
    }
    let lookup = |value: &str| celes::Country::from_str(value).ok();
    let country = match compact.to_ascii_uppercase().as_str() {
        // Names Books users type that the ISO tables spell otherwise.
        "UK" | "ENGLAND" | "SCOTLAND" | "WALES" => lookup("GB"),
        "UAE" => lookup("AE"),
        _ => lookup(&compact).or_else(|| celes::Country::from_alias(&compact).ok()),
    };
    country.map(|c| c.alpha2.to_owned()).unwrap_or_default()
}

fn currency_or(code: &str, fallback: &Currency) -> Currency {
    Currency::parse(code).unwrap_or_else(|_| fallback.clone())
}

fn person_name(first: &str, last: &str) -> String {
    format!("{} {}", first.trim(), last.trim())
        .trim()
        .to_owned()
}

impl ContactRow {
    /// The customer as far as the list row tells: one contact person (the primary) and no
    /// address. Used for customers Duecall has not seen before, until their details arrive.
    pub fn to_record(&self, org_currency: &Currency) -> CustomerRecord {
        let contacts = if [
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.phone,
            &self.mobile,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
        {
            Vec::new()
        } else {
            vec![ContactRecord {
                name: person_name(&self.first_name, &self.last_name),
                email: self.email.trim().to_owned(),
                phone: self.phone.trim().to_owned(),
                mobile: self.mobile.trim().to_owned(),
                is_primary: true,
            }]
        };
        CustomerRecord {
            external_id: self.contact_id.clone(),
            display_name: self.contact_name.trim().to_owned(),
            company_name: self.company_name.trim().to_owned(),
            email: self.email.trim().to_owned(),
            currency: currency_or(&self.currency_code, org_currency),
            active: !self.status.eq_ignore_ascii_case("inactive"),
            billing_street: String::new(),
            billing_city: String::new(),
            billing_state: String::new(),
            billing_postcode: String::new(),
            billing_country: String::new(),
            timezone: String::new(),
            notes: String::new(),
            opted_out: false,
            contacts,
            source_updated_at: millis(&self.last_modified_time),
        }
    }
}

impl ContactDetail {
    /// The whole customer: contact persons (the primary first), billing address, notes.
    pub fn to_record(&self, org_currency: &Currency) -> CustomerRecord {
        let mut record = self.row.to_record(org_currency);
        let address = self.billing_address.clone().unwrap_or_default();
        record.billing_street = [address.address.trim(), address.street2.trim()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        record.billing_city = address.city.trim().to_owned();
        record.billing_state = address.state.trim().to_owned();
        record.billing_postcode = address.zip.trim().to_owned();
        record.billing_country = country_code(&address.country);
        record.notes = self.notes.trim().to_owned();
        if !self.contact_persons.is_empty() {
            let mut persons: Vec<&ContactPerson> = self.contact_persons.iter().collect();
            persons.sort_by_key(|p| !p.is_primary_contact);
            record.contacts = persons
                .into_iter()
                .map(|p| ContactRecord {
                    name: person_name(&p.first_name, &p.last_name),
                    email: p.email.trim().to_owned(),
                    phone: p.phone.trim().to_owned(),
                    mobile: p.mobile.trim().to_owned(),
                    is_primary: p.is_primary_contact,
                })
                .collect();
        }
        record
    }
}

/// Zoho's invoice statuses in Duecall's terms (`viewed` and `unpaid` invoices are sent and
/// not yet settled; anything awaiting approval is still a draft).
pub fn invoice_status(status: &str, balance_minor: i64) -> InvoiceStatus {
    match status.trim().to_ascii_lowercase().as_str() {
        "overdue" => InvoiceStatus::Overdue,
        "partially_paid" => InvoiceStatus::PartiallyPaid,
        "paid" => InvoiceStatus::Paid,
        "void" => InvoiceStatus::Void,
        "sent" | "viewed" | "unpaid" => InvoiceStatus::Sent,
        _ if balance_minor == 0 && status.eq_ignore_ascii_case("closed") => InvoiceStatus::Paid,
        _ => InvoiceStatus::Draft,
    }
}

fn is_date(text: &str) -> bool {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

impl InvoiceRow {
    pub fn to_record(&self, org_currency: &Currency) -> Result<InvoiceRecord, RecordError> {
        let fail = |message: &str| RecordError {
            record: "invoice",
            id: self.invoice_id.clone(),
            message: message.to_owned(),
        };
        let currency = currency_or(&self.currency_code, org_currency);
        let total_minor = minor_units(self.total.as_ref(), &currency)
            .ok_or_else(|| fail("total is not an amount"))?;
        let balance_minor = minor_units(self.balance.as_ref(), &currency)
            .ok_or_else(|| fail("balance is not an amount"))?;
        if !is_date(&self.date) {
            return Err(fail("date is not yyyy-mm-dd"));
        }
        let due_date = if is_date(&self.due_date) {
            self.due_date.clone()
        } else {
            self.date.clone()
        };
        let payment_expected_date = if is_date(&self.payment_expected_date) {
            self.payment_expected_date.clone()
        } else {
            String::new()
        };
        Ok(InvoiceRecord {
            external_id: self.invoice_id.clone(),
            customer_external_id: self.customer_id.clone(),
            number: self.invoice_number.trim().to_owned(),
            status: invoice_status(&self.status, balance_minor),
            issue_date: self.date.clone(),
            due_date,
            currency,
            total_minor,
            balance_minor,
            payment_expected_date,
            source_updated_at: millis(&self.last_modified_time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn times_round_trip_in_zohos_format() {
        let t = parse_time("2013-11-18T02:02:51-0800").unwrap();
        assert_eq!(
            format_time(t.with_timezone(&Utc)),
            "2013-11-18T10:02:51+0000"
        );
        assert!(parse_time("2013-11-18T02:02:51-08:00").is_some());
        assert!(parse_time("18/11/2013").is_none());
    }

    #[test]
    fn countries_typed_by_people_become_codes() {
        for (text, code) in [
            ("U.S.A", "US"),
            ("USA", "US"),
            ("United Kingdom", "GB"),
            ("UK", "GB"),
            ("India", "IN"),
            ("de", "DE"),
            ("Germany", "DE"),
            ("Netherlands", "NL"),
            ("", ""),
            ("Atlantis", ""),
        ] {
            assert_eq!(country_code(text), code, "{text}");
        }
    }

    #[test]
    fn amounts_follow_the_currency_precision() {
        let n = |v: &str| serde_json::from_str::<serde_json::Number>(v).unwrap();
        assert_eq!(minor_units(Some(&n("1234.56")), &usd()), Some(123_456));
        assert_eq!(minor_units(Some(&n("0.1")), &usd()), Some(10));
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(minor_units(Some(&n("1500")), &jpy), Some(1500));
        assert_eq!(minor_units(None, &usd()), Some(0));
    }

    #[test]
    fn ids_arrive_as_strings_or_numbers() {
        // Beyond 2^53: an f64 would round it.
        let row: InvoiceRow = serde_json::from_str(
            r#"{"invoice_id": 4600000000123456789, "customer_id": "460000000000111",
                "status": "viewed", "date": "2026-01-05", "due_date": "", "total": 10.5, "balance": 10.5}"#,
        )
        .unwrap();
        assert_eq!(row.invoice_id, "4600000000123456789");
        let record = row.to_record(&usd()).unwrap();
        assert_eq!(record.status, InvoiceStatus::Sent);
        assert_eq!(record.due_date, "2026-01-05");
        assert_eq!(record.total_minor, 1050);
    }

    #[test]
    fn a_contact_detail_lists_the_primary_person_first() {
        let detail: ContactDetail = serde_json::from_str(
            r#"{"contact_id": "1", "contact_name": "Acme", "currency_code": "GBP", "status": "active",
                "last_modified_time": "2026-03-01T10:00:00+0000",
                "billing_address": {"address": "1 High St", "street2": null, "city": "Leeds", "country": "U.K"},
                "contact_persons": [
                  {"first_name": "Ann", "last_name": "B", "phone": "0113 496 0000", "is_primary_contact": false},
                  {"first_name": "Cy", "last_name": "D", "mobile": "+44 7700 900123", "is_primary_contact": true}
                ]}"#,
        )
        .unwrap();
        let record = detail.to_record(&usd());
        assert_eq!(record.currency.code(), "GBP");
        assert_eq!(record.billing_country, "GB");
        assert_eq!(record.billing_street, "1 High St");
        assert_eq!(record.contacts[0].name, "Cy D");
        assert!(record.contacts[0].is_primary);
        assert_eq!(record.contacts.len(), 2);
        assert!(record.source_updated_at.is_some());
    }
}
