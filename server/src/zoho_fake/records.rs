//! The fake's books records (contacts, invoices, comments) and their Zoho JSON shapes: list
//! rows and details, ids as digit strings, times as `2018-11-18T02:02:51-0800` in the
//! organization's zone, dates as `yyyy-mm-dd` (`""` when empty, as Zoho writes them), amounts
//! as JSON decimal numbers with the currency's precision.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use app::receivables::model::Currency;

/// Zoho's timestamp format: local time and an offset without a colon.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FakeContactType {
    #[default]
    Customer,
    Vendor,
}

impl FakeContactType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Vendor => "vendor",
        }
    }
}

/// An address with Zoho's fields; `country` is free text ("U.S.A", "United Kingdom").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeAddress {
    pub attention: String,
    pub address: String,
    pub street2: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: String,
}

/// A contact person; phones are free text as typed in Books.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeContactPerson {
    /// Assigned by the fake when empty.
    pub contact_person_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub mobile: String,
    pub designation: String,
    pub is_primary_contact: bool,
}

/// A Books contact (customer or vendor).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeContact {
    /// Assigned by the fake.
    pub contact_id: String,
    pub contact_name: String,
    pub company_name: String,
    pub contact_type: FakeContactType,
    pub active: bool,
    pub currency_code: String,
    /// Days.
    pub payment_terms: i64,
    pub notes: String,
    pub billing_address: FakeAddress,
    pub contact_persons: Vec<FakeContactPerson>,
    /// Set by the fake.
    pub created_time: DateTime<Utc>,
    /// Set by the fake on every modification.
    pub last_modified_time: DateTime<Utc>,
}

impl FakeContact {
    /// An active customer on 30-day terms, without contact persons.
    pub fn customer(contact_name: &str, currency_code: &str) -> Self {
        Self {
            contact_name: contact_name.to_owned(),
            company_name: contact_name.to_owned(),
            active: true,
            currency_code: currency_code.to_ascii_uppercase(),
            payment_terms: 30,
            ..Self::default()
        }
    }

    /// The primary contact person, else the first one.
    pub fn primary_person(&self) -> Option<&FakeContactPerson> {
        self.contact_persons
            .iter()
            .find(|p| p.is_primary_contact)
            .or_else(|| self.contact_persons.first())
    }
}

/// Zoho's invoice statuses (`viewed` is a sent invoice the customer opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FakeInvoiceStatus {
    Draft,
    #[default]
    Sent,
    Viewed,
    Overdue,
    PartiallyPaid,
    Paid,
    Void,
}

impl FakeInvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::Viewed => "viewed",
            Self::Overdue => "overdue",
            Self::PartiallyPaid => "partially_paid",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }

    /// Money is still owed (Zoho's "unpaid" filter).
    pub fn is_unpaid(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Viewed | Self::Overdue | Self::PartiallyPaid
        )
    }
}

/// A Books invoice; amounts in minor units of `currency_code`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeInvoice {
    /// Assigned by the fake.
    pub invoice_id: String,
    pub invoice_number: String,
    pub customer_id: String,
    pub status: FakeInvoiceStatus,
    pub date: NaiveDate,
    pub due_date: NaiveDate,
    pub currency_code: String,
    pub total_minor: i64,
    pub balance_minor: i64,
    pub reference_number: String,
    pub salesperson_name: String,
    pub reminders_sent: u32,
    pub last_reminder_sent_date: Option<NaiveDate>,
    pub payment_expected_date: Option<NaiveDate>,
    pub last_payment_date: Option<NaiveDate>,
    pub notes: String,
    pub terms: String,
    /// Set by the fake.
    pub created_time: DateTime<Utc>,
    /// Set by the fake on every modification.
    pub last_modified_time: DateTime<Utc>,
}

impl FakeInvoice {
    /// A sent, unpaid invoice.
    pub fn new(
        customer_id: &str,
        invoice_number: &str,
        currency_code: &str,
        total_minor: i64,
        date: NaiveDate,
        due_date: NaiveDate,
    ) -> Self {
        Self {
            invoice_number: invoice_number.to_owned(),
            customer_id: customer_id.to_owned(),
            status: FakeInvoiceStatus::Sent,
            date,
            due_date,
            currency_code: currency_code.to_ascii_uppercase(),
            total_minor,
            balance_minor: total_minor,
            ..Self::default()
        }
    }
}

/// A comment posted on an invoice through `POST /invoices/{id}/comments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub comment_id: String,
    pub invoice_id: String,
    pub description: String,
    pub payment_expected_date: Option<NaiveDate>,
    pub show_comment_to_clients: bool,
    /// The email of the user whose token posted it.
    pub commented_by: String,
    pub date_time: DateTime<Utc>,
}

pub(super) fn zoho_time(time: DateTime<Utc>, tz: Tz) -> String {
    time.with_timezone(&tz).format(TIME_FORMAT).to_string()
}

/// Parses `2018-11-18T02:02:51-0800` (a colon in the offset is tolerated).
pub(super) fn parse_zoho_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, TIME_FORMAT)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn date(value: Option<NaiveDate>) -> String {
    value
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A JSON number with the currency's decimals: 1234.5 for 123450 USD cents, 1500 for ¥1500.
/// (`minor / 10^digits` as the nearest f64 is exactly what parsing the decimal text gives.)
pub(super) fn amount(minor: i64, currency_code: &str) -> Value {
    let digits = Currency::parse(currency_code).map_or(2, |c| c.minor_digits());
    if digits == 0 {
        return Value::from(minor);
    }
    let value = minor as f64 / 10_f64.powi(digits as i32);
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn payment_terms_label(days: i64) -> String {
    if days == 0 {
        "Due on Receipt".to_owned()
    } else {
        format!("Net {days}")
    }
}

pub(super) fn contact_row(contact: &FakeContact, outstanding_minor: i64, tz: Tz) -> Value {
    let primary = contact.primary_person().cloned().unwrap_or_default();
    json!({
        "contact_id": contact.contact_id,
        "contact_name": contact.contact_name,
        "customer_name": contact.contact_name,
        "company_name": contact.company_name,
        "contact_type": contact.contact_type.as_str(),
        "status": if contact.active { "active" } else { "inactive" },
        "first_name": primary.first_name,
        "last_name": primary.last_name,
        "email": primary.email,
        "phone": primary.phone,
        "mobile": primary.mobile,
        "currency_code": contact.currency_code,
        "outstanding_receivable_amount": amount(outstanding_minor, &contact.currency_code),
        "unused_credits_receivable_amount": amount(0, &contact.currency_code),
        "payment_terms": contact.payment_terms,
        "payment_terms_label": payment_terms_label(contact.payment_terms),
        "created_time": zoho_time(contact.created_time, tz),
        "last_modified_time": zoho_time(contact.last_modified_time, tz),
    })
}

fn address(address: &FakeAddress) -> Value {
    json!({
        "attention": address.attention,
        "address": address.address,
        "street2": address.street2,
        "city": address.city,
        "state": address.state,
        "zip": address.zip,
        "country": address.country,
        "fax": "",
        "phone": "",
    })
}

fn person(person: &FakeContactPerson) -> Value {
    json!({
        "contact_person_id": person.contact_person_id,
        "salutation": "",
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "phone": person.phone,
        "mobile": person.mobile,
        "designation": person.designation,
        "department": "",
        "is_primary_contact": person.is_primary_contact,
    })
}

pub(super) fn contact_detail(contact: &FakeContact, outstanding_minor: i64, tz: Tz) -> Value {
    let mut value = contact_row(contact, outstanding_minor, tz);
    if let Value::Object(fields) = &mut value {
        fields.insert(
            "contact_persons".to_owned(),
            contact.contact_persons.iter().map(person).collect(),
        );
        fields.insert(
            "billing_address".to_owned(),
            address(&contact.billing_address),
        );
        fields.insert(
            "shipping_address".to_owned(),
            address(&FakeAddress::default()),
        );
        fields.insert("notes".to_owned(), Value::from(contact.notes.clone()));
    }
    value
}

pub(super) fn invoice_row(invoice: &FakeInvoice, customer_name: &str, tz: Tz) -> Value {
    let currency = invoice.currency_code.as_str();
    json!({
        "invoice_id": invoice.invoice_id,
        "invoice_number": invoice.invoice_number,
        "customer_id": invoice.customer_id,
        "customer_name": customer_name,
        "status": invoice.status.as_str(),
        "date": date(Some(invoice.date)),
        "due_date": date(Some(invoice.due_date)),
        "currency_code": currency,
        "total": amount(invoice.total_minor, currency),
        "balance": amount(invoice.balance_minor, currency),
        "created_time": zoho_time(invoice.created_time, tz),
        "last_modified_time": zoho_time(invoice.last_modified_time, tz),
        "reference_number": invoice.reference_number,
        "reminders_sent": invoice.reminders_sent,
        "last_reminder_sent_date": date(invoice.last_reminder_sent_date),
        "payment_expected_date": date(invoice.payment_expected_date),
        "last_payment_date": date(invoice.last_payment_date),
        "salesperson_name": invoice.salesperson_name,
    })
}

pub(super) fn invoice_detail(
    invoice: &FakeInvoice,
    customer: Option<&FakeContact>,
    tz: Tz,
    invoice_url: String,
) -> Value {
    let currency = invoice.currency_code.as_str();
    let name = customer.map(|c| c.contact_name.as_str()).unwrap_or("");
    let mut value = invoice_row(invoice, name, tz);
    let persons: Vec<Value> = customer
        .map(|c| {
            c.contact_persons
                .iter()
                .map(|p| Value::from(p.contact_person_id.clone()))
                .collect()
        })
        .unwrap_or_default();
    let billing = customer
        .map(|c| address(&c.billing_address))
        .unwrap_or_else(|| address(&FakeAddress::default()));
    if let Value::Object(fields) = &mut value {
        let extra = json!({
            "line_items": [{
                "line_item_id": format!("{}1", invoice.invoice_id),
                "name": "Services",
                "description": format!("Services as agreed ({})", invoice.invoice_number),
                "quantity": 1,
                "rate": amount(invoice.total_minor, currency),
                "item_total": amount(invoice.total_minor, currency),
            }],
            "sub_total": amount(invoice.total_minor, currency),
            "tax_total": amount(0, currency),
            "payment_made": amount(invoice.total_minor - invoice.balance_minor, currency),
            "credits_applied": amount(0, currency),
            "contact_persons": persons,
            "billing_address": billing,
            "invoice_url": invoice_url,
            "notes": invoice.notes,
            "terms": invoice.terms,
        });
        if let Value::Object(extra) = extra {
            fields.extend(extra);
        }
    }
    value
}
