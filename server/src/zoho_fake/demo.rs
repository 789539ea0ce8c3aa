//! Demo books in Zoho's shapes: [`app::receivables::demo_books::generate`]'s customers and
//! invoices become contacts (with free-text billing countries, free-text phones and contact
//! persons split into first and last names) and invoices (Zoho statuses, minor units kept).
//! A few vendors join them, as real books have, so a client must filter on customers.
//!
//! Times: a contact was created some hours before the previous one; an invoice was created on
//! its issue date and last modified then or, once paid, some days later; all strictly before
//! the clock's now, so every later edit through the fake is newer than every seeded record.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use app::receivables::demo_books;
use app::receivables::model::InvoiceStatus;
use app::receivables::upsert::{CustomerRecord, InvoiceRecord};

use super::records::{
    FakeAddress, FakeContact, FakeContactPerson, FakeContactType, FakeInvoice, FakeInvoiceStatus,
};
use super::state::State;

/// What [`super::FakeZoho::seed_demo_books`] added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeededBooks {
    pub customers: usize,
    pub vendors: usize,
    pub invoices: usize,
}

/// Converted books, waiting for ids: invoices refer to their customer by index.
pub(super) struct Books {
    now: DateTime<Utc>,
    customers: Vec<FakeContact>,
    vendors: Vec<FakeContact>,
    invoices: Vec<(usize, FakeInvoice)>,
}

/// How Books users type the country of a billing address.
fn country_name(code: &str) -> &str {
    match code {
        "US" => "U.S.A",
        "GB" => "United Kingdom",
        "DE" => "Germany",
        "FR" => "France",
        "IN" => "India",
        "AU" => "Australia",
        "CA" => "Canada",
        "NL" => "Netherlands",
        "ES" => "Spain",
        "IE" => "Ireland",
        other => other,
    }
}

fn status(status: InvoiceStatus) -> FakeInvoiceStatus {
    match status {
        InvoiceStatus::Draft => FakeInvoiceStatus::Draft,
        InvoiceStatus::Sent => FakeInvoiceStatus::Sent,
        InvoiceStatus::Overdue => FakeInvoiceStatus::Overdue,
        InvoiceStatus::PartiallyPaid => FakeInvoiceStatus::PartiallyPaid,
        InvoiceStatus::Paid => FakeInvoiceStatus::Paid,
        InvoiceStatus::Void => FakeInvoiceStatus::Void,
    }
}

fn contact(record: &CustomerRecord, index: usize, now: DateTime<Utc>) -> FakeContact {
    let persons = record
        .contacts
        .iter()
        .map(|c| {
            let (first, last) = c.name.split_once(' ').unwrap_or((c.name.as_str(), ""));
            FakeContactPerson {
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                mobile: c.mobile.clone(),
                designation: if c.is_primary { "" } else { "Accounts" }.to_owned(),
                is_primary_contact: c.is_primary,
                ..FakeContactPerson::default()
            }
        })
        .collect();
    let created = now - Duration::hours(3 * (index as i64 + 1)) - Duration::seconds(1);
    let modified =
        (created + Duration::minutes((index as i64 * 37) % 600)).min(now - Duration::seconds(1));
    FakeContact {
        contact_name: record.display_name.clone(),
        company_name: record.company_name.clone(),
        contact_type: FakeContactType::Customer,
        active: record.active,
        currency_code: record.currency.code().to_owned(),
        payment_terms: 30,
        notes: record.notes.clone(),
        billing_address: FakeAddress {
            address: record.billing_street.clone(),
            city: record.billing_city.clone(),
            state: record.billing_state.clone(),
            zip: record.billing_postcode.clone(),
            country: country_name(&record.billing_country).to_owned(),
            ..FakeAddress::default()
        },
        contact_persons: persons,
        created_time: created,
        last_modified_time: modified,
        ..FakeContact::default()
    }
}

fn vendor(index: usize, currency: &str, now: DateTime<Utc>) -> FakeContact {
    let name = format!("Office Supplies Wholesale {}", index + 1);
    let created = now - Duration::days(400 + index as i64);
    FakeContact {
        contact_type: FakeContactType::Vendor,
        contact_persons: vec![FakeContactPerson {
            first_name: "Sales".to_owned(),
            last_name: "Desk".to_owned(),
            email: format!("sales{}@wholesale.example", index + 1),
            phone: "+1-925-921-9201".to_owned(),
            is_primary_contact: true,
            ..FakeContactPerson::default()
        }],
        created_time: created,
        last_modified_time: created,
        ..FakeContact::customer(&name, currency)
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
}

fn invoice(record: &InvoiceRecord, index: usize, now: DateTime<Utc>) -> FakeInvoice {
    let issued = date(&record.issue_date);
    let status = status(record.status);
    // Spread the times so they do not all tie, and keep them before now.
    let cap = now - Duration::seconds(1 + (index as i64 % 3600));
    let created = (issued.and_hms_opt(9, 0, 0).unwrap_or_default().and_utc()
        + Duration::seconds(index as i64 % 28_800))
    .min(cap);
    let settled = matches!(
        status,
        FakeInvoiceStatus::Paid | FakeInvoiceStatus::PartiallyPaid | FakeInvoiceStatus::Void
    );
    let modified = if settled {
        (created + Duration::days(3 + (index as i64 * 7) % 40)).min(cap)
    } else {
        created
    };
    let paid_on = matches!(
        status,
        FakeInvoiceStatus::Paid | FakeInvoiceStatus::PartiallyPaid
    )
    .then(|| modified.date_naive());
    FakeInvoice {
        invoice_number: record.number.clone(),
        status,
        date: issued,
        due_date: date(&record.due_date),
        currency_code: record.currency.code().to_owned(),
        total_minor: record.total_minor,
        balance_minor: record.balance_minor,
        reference_number: if index.is_multiple_of(3) {
            format!("PO-{:05}", 40_000 + index)
        } else {
            String::new()
        },
        payment_expected_date: (!record.payment_expected_date.is_empty())
            .then(|| date(&record.payment_expected_date)),
        last_payment_date: paid_on,
        terms: "Payment is due within the agreed terms.".to_owned(),
        created_time: created,
        last_modified_time: modified,
        ..FakeInvoice::default()
    }
}

/// Generates and converts; no ids yet.
pub(super) fn convert(
    customers: usize,
    invoices: usize,
    today: NaiveDate,
    now: DateTime<Utc>,
    seed: u64,
) -> Books {
    let (customer_records, invoice_records) =
        demo_books::generate(customers.max(1), invoices, today, seed);
    let index: std::collections::HashMap<&str, usize> = customer_records
        .iter()
        .enumerate()
        .map(|(i, c)| (c.external_id.as_str(), i))
        .collect();
    let currency = customer_records
        .first()
        .map_or("USD", |c| c.currency.code())
        .to_owned();
    Books {
        now,
        customers: customer_records
            .iter()
            .enumerate()
            .map(|(i, c)| contact(c, i, now))
            .collect(),
        vendors: (0..customers.div_ceil(25))
            .map(|i| vendor(i, &currency, now))
            .collect(),
        invoices: invoice_records
            .iter()
            .enumerate()
            .filter_map(|(n, r)| {
                let owner = *index.get(r.customer_external_id.as_str())?;
                Some((owner, invoice(r, n, now)))
            })
            .collect(),
    }
}

/// Gives the converted books ids and stores them in `org_id` (which must exist).
pub(super) fn insert(state: &mut State, org_id: &str, books: Books) -> SeededBooks {
    let mut latest = books.now - Duration::days(3650);
    let mut customer_ids = Vec::with_capacity(books.customers.len());
    let mut contacts = Vec::with_capacity(books.customers.len() + books.vendors.len());
    let seeded = SeededBooks {
        customers: books.customers.len(),
        vendors: books.vendors.len(),
        invoices: books.invoices.len(),
    };
    for contact in books.customers.into_iter().chain(books.vendors) {
        let (created, modified) = (contact.created_time, contact.last_modified_time);
        let contact = state.adopt_contact(contact, created, modified);
        if contact.contact_type == FakeContactType::Customer {
            customer_ids.push(contact.contact_id.clone());
        }
        latest = latest.max(modified);
        contacts.push(contact);
    }
    let mut invoices = Vec::with_capacity(books.invoices.len());
    for (owner, mut invoice) in books.invoices {
        invoice.invoice_id = state.next_id();
        invoice.customer_id = customer_ids[owner].clone();
        latest = latest.max(invoice.last_modified_time);
        invoices.push(invoice);
    }
    state.saw_time(latest);
    if let Ok(org) = state.org_mut(org_id) {
        for contact in contacts {
            org.contacts.insert(contact.contact_id.clone(), contact);
        }
        for invoice in invoices {
            org.invoices.insert(invoice.invoice_id.clone(), invoice);
        }
        org.version += 1;
    }
    seeded
}
