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
