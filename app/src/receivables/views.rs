//! What the receivables pages ask for and get back: filters (parsed from the page's query
//! string, so every list state has its own URL) and rows.

use serde::{Deserialize, Serialize};

use super::model::{AgingBucket, InvoiceStatus, Money, PhoneStatus};

/// Rows per page of a list.
pub const PAGE_SIZE: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerSort {
    #[default]
    Name,
    Outstanding,
    OldestOverdue,
}

impl CustomerSort {
    pub const ALL: [CustomerSort; 3] = [Self::Name, Self::Outstanding, Self::OldestOverdue];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Outstanding => "outstanding",
            Self::OldestOverdue => "oldest_overdue",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "Name",
            Self::Outstanding => "Outstanding (highest first)",
            Self::OldestOverdue => "Oldest overdue first",
        }
    }

    pub fn parse(value: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .unwrap_or_default()
    }
}

/// The customers list's search, filters, sort and position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerFilter {
    pub q: String,
    pub overdue_only: bool,
    /// ISO country code, or empty for all.
    pub country: String,
    pub phone: Option<PhoneStatus>,
    pub sort: CustomerSort,
    /// Opaque position after which the page starts.
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRow {
    pub id: i64,
    pub display_name: String,
    pub company_name: String,
    pub email: String,
    pub country: String,
    pub outstanding: Money,
    pub open_invoices: i64,
    /// Days the oldest unpaid invoice is past due; `None` when nothing is overdue.
    pub oldest_overdue_days: Option<i64>,
    pub phone_status: PhoneStatus,
    pub best_phone: String,
    pub best_phone_reason: String,
    pub opted_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPage {
    pub rows: Vec<CustomerRow>,
    /// Cursor of the next page, if there is one.
    pub next: Option<String>,
    /// Countries present, for the filter.
    pub countries: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceSort {
    /// Latest due date first.
    #[default]
    DueDate,
    /// Largest balance first.
    Balance,
    /// Most overdue first.
    DaysOverdue,
}

impl InvoiceSort {
    pub const ALL: [InvoiceSort; 3] = [Self::DueDate, Self::Balance, Self::DaysOverdue];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DueDate => "due_date",
            Self::Balance => "balance",
            Self::DaysOverdue => "days_overdue",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::DueDate => "Due date (latest first)",
            Self::Balance => "Balance (highest first)",
            Self::DaysOverdue => "Most overdue first",
        }
    }

    pub fn parse(value: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .unwrap_or_default()
    }
}

/// The invoices list's search, filters, sort and position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InvoiceFilter {
    /// Invoice number or customer.
    pub q: String,
    pub status: Option<InvoiceStatus>,
    pub bucket: Option<AgingBucket>,
    /// `YYYY-MM-DD` bounds on the due date (inclusive), or empty.
    pub due_from: String,
    pub due_to: String,
    pub currency: String,
    /// Balance bounds in major units ("100", "2500.50"), or empty.
    pub min_balance: String,
    pub max_balance: String,
    pub customer_id: Option<i64>,
    pub sort: InvoiceSort,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub id: i64,
    pub number: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub status: InvoiceStatus,
    pub issue_date: String,
    pub due_date: String,
    /// Days past due for an unpaid invoice; `None` when not overdue.
    pub days_overdue: Option<i64>,
    pub total: Money,
    pub balance: Money,
    pub payment_expected_date: String,
}

/// Balance and count of the invoices matching a filter, per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotal {
    pub balance: Money,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePage {
    pub rows: Vec<InvoiceRow>,
    pub next: Option<String>,
    pub totals: Vec<CurrencyTotal>,
    pub currencies: Vec<String>,
}

/// One aging bucket's open balance in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgingAmount {
    pub bucket: AgingBucket,
    pub amount: Money,
    pub count: i64,
}

/// The organization's receivables in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencySummary {
    pub receivable: Money,
    pub overdue: Money,
    pub overdue_count: i64,
    pub aging: Vec<AgingAmount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueCustomer {
    pub id: i64,
    pub name: String,
    pub overdue: Money,
    pub oldest_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardData {
    /// Per currency, the organization's default currency first.
    pub currencies: Vec<CurrencySummary>,
    pub overdue_invoices: i64,
    pub top_overdue: Vec<OverdueCustomer>,
    pub customers: i64,
    /// The day "overdue" was computed for, in the organization's time zone.
    pub today: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub name: String,
    pub email: String,
    pub is_primary: bool,
    pub phone_raw: String,
    pub phone_e164: String,
    pub phone_error: String,
    pub mobile_raw: String,
    pub mobile_e164: String,
    pub mobile_error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDetail {
    pub row: CustomerRow,
    pub active: bool,
    pub source: String,
    pub external_id: String,
    /// Billing address, one line each, empty lines left out.
    pub address: Vec<String>,
    pub timezone: String,
    pub notes: String,
    pub contacts: Vec<ContactView>,
    /// Unpaid invoices, most overdue first.
    pub open_invoices: Vec<InvoiceRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDetail {
    pub row: InvoiceRow,
    pub source: String,
    pub external_id: String,
    pub customer_phone: String,
    pub customer_phone_reason: String,
    /// Total minus balance.
    pub paid: Money,
}

/// Percent-encodes a query-string component.
pub fn encode_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `a=1&b=x%20y` from the non-empty pairs.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl CustomerFilter {
    /// Reads the list's query string (`q`, `overdue`, `country`, `phone`, `sort`, `after`).
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            q: get("q").unwrap_or_default(),
            overdue_only: get("overdue").is_some_and(|v| v == "1" || v == "on" || v == "true"),
            country: get("country").unwrap_or_default(),
            phone: get("phone").and_then(|v| PhoneStatus::parse(&v)),
            sort: CustomerSort::parse(&get("sort").unwrap_or_default()),
            after: get("after").filter(|v| !v.is_empty()),
        }
    }

    /// The query string of this filter, without the page position.
    pub fn to_query(&self) -> String {
        query_string(&[
            ("q", self.q.clone()),
            (
                "overdue",
                if self.overdue_only {
                    "1".into()
                } else {
                    String::new()
                },
            ),
            ("country", self.country.clone()),
            (
                "phone",
                self.phone
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            (
                "sort",
                if self.sort == CustomerSort::default() {
                    String::new()
                } else {
                    self.sort.as_str().to_owned()
                },
            ),
        ])
    }
}

impl InvoiceFilter {
    /// Reads the list's query string.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            q: get("q").unwrap_or_default(),
            status: get("status").and_then(|v| InvoiceStatus::parse(&v).ok()),
            bucket: get("bucket").and_then(|v| AgingBucket::parse(&v)),
            due_from: get("due_from").unwrap_or_default(),
            due_to: get("due_to").unwrap_or_default(),
            currency: get("currency").unwrap_or_default(),
            min_balance: get("min_balance").unwrap_or_default(),
            max_balance: get("max_balance").unwrap_or_default(),
            customer_id: get("customer").and_then(|v| v.parse().ok()),
            sort: InvoiceSort::parse(&get("sort").unwrap_or_default()),
            after: get("after").filter(|v| !v.is_empty()),
        }
    }

    /// The query string of this filter, without the page position.
    pub fn to_query(&self) -> String {
        query_string(&[
            ("q", self.q.clone()),
            (
                "status",
                self.status
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            (
                "bucket",
                self.bucket
                    .map(|b| b.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            ("due_from", self.due_from.clone()),
            ("due_to", self.due_to.clone()),
            ("currency", self.currency.clone()),
            ("min_balance", self.min_balance.clone()),
            ("max_balance", self.max_balance.clone()),
            (
                "customer",
                self.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            ),
            (
                "sort",
                if self.sort == InvoiceSort::default() {
                    String::new()
                } else {
                    self.sort.as_str().to_owned()
                },
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse_query(query: &str) -> HashMap<String, String> {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                let bytes = v.as_bytes();
                let mut out = Vec::new();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%' {
                        out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                (k.to_owned(), String::from_utf8(out).unwrap())
            })
            .collect()
    }

    #[test]
    fn filters_round_trip_through_the_address() {
        let filter = InvoiceFilter {
            q: "Acme & Sons / 50%".into(),
            status: Some(InvoiceStatus::PartiallyPaid),
            bucket: Some(AgingBucket::Days31To60),
            due_from: "2026-01-01".into(),
            currency: "GBP".into(),
            min_balance: "100.50".into(),
            customer_id: Some(7),
            sort: InvoiceSort::Balance,
            ..Default::default()
        };
        let map = parse_query(&filter.to_query());
        assert_eq!(InvoiceFilter::from_query(|k| map.get(k).cloned()), filter);

        let filter = CustomerFilter {
            q: "José".into(),
            overdue_only: true,
            country: "GB".into(),
            phone: Some(PhoneStatus::Invalid),
            sort: CustomerSort::OldestOverdue,
            after: None,
        };
        let map = parse_query(&filter.to_query());
        assert_eq!(CustomerFilter::from_query(|k| map.get(k).cloned()), filter);
    }
}
