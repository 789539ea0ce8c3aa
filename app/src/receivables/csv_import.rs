//! CSV import for businesses not on a connected accounting system.
//!
//! The whole file is validated first; if any row is bad nothing is imported and every problem
//! is reported with its row and column. A good file is imported in one transaction. Rows are
//! numbered as a spreadsheet shows them: the header is row 1.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::model::{Currency, InvoiceStatus, RowError, parse_amount};
use super::phone;
use super::upsert::{ContactRecord, CustomerRecord, InvoiceRecord};

/// The source name of imported records.
pub const SOURCE: &str = "csv";

/// Columns of the customers file: (name, required, description) — also the template.
pub const CUSTOMER_COLUMNS: [(&str, bool, &str); 18] = [
    (
        "customer_id",
        true,
        "Your unique id for the customer; re-importing the same id updates it",
    ),
    ("display_name", true, "Name shown in Duecall"),
    ("company_name", false, "Legal or company name"),
    ("email", false, "Billing email"),
    ("currency", true, "ISO 4217 code, e.g. USD"),
    ("status", false, "active (default) or inactive"),
    ("billing_street", false, ""),
    ("billing_city", false, ""),
    ("billing_state", false, ""),
    ("billing_postcode", false, ""),
    (
        "billing_country",
        false,
        "ISO 3166 two-letter code, e.g. GB; national phone numbers are read in this country",
    ),
    (
        "timezone",
        false,
        "IANA zone, e.g. Europe/London; calling hours follow it",
    ),
    ("notes", false, ""),
    (
        "opted_out",
        false,
        "true to never call this customer (a later file cannot undo an opt-out)",
    ),
    ("contact_name", false, "Primary contact person"),
    ("contact_email", false, ""),
    (
        "contact_phone",
        false,
        "Landline, national or international format",
    ),
    (
        "contact_mobile",
        false,
        "Mobile, national or international format",
    ),
];

/// Columns of the invoices file.
pub const INVOICE_COLUMNS: [(&str, bool, &str); 10] = [
    (
        "invoice_id",
        true,
        "Your unique id for the invoice; re-importing the same id updates it",
    ),
    (
        "customer_id",
        true,
        "The customer_id of a customer imported before or in the customers file",
    ),
    ("invoice_number", true, "Number printed on the invoice"),
    (
        "status",
        true,
        "draft, sent, overdue, partially_paid, paid or void",
    ),
    ("issue_date", true, "YYYY-MM-DD"),
    ("due_date", true, "YYYY-MM-DD, on or after the issue date"),
    ("currency", true, "ISO 4217 code, e.g. USD"),
    ("total", true, "Decimal amount, e.g. 1250.00"),
    (
        "balance",
        true,
        "Amount still owed, between 0 and the total",
    ),
    (
        "payment_expected_date",
        false,
        "YYYY-MM-DD, if the customer promised a date",
    ),
];

/// A header row and one example row, to download and fill in.
pub fn template(columns: &[(&str, bool, &str)], example: &[&str]) -> String {
    let header: Vec<&str> = columns.iter().map(|(name, _, _)| *name).collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(&header);
    let _ = writer.write_record(example);
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

pub fn customers_template() -> String {
    template(
        &CUSTOMER_COLUMNS,
        &[
            "C-1001",
            "Acme Trading",
            "Acme Trading Ltd",
            "accounts@acme.example",
            "GBP",
            "active",
            "1 High Street",
            "London",
            "",
            "EC1A 1AA",
            "GB",
            "Europe/London",
            "",
            "false",
            "Jane Smith",
            "jane@acme.example",
            "020 7946 0018",
            "07911 123456",
        ],
    )
}

pub fn invoices_template() -> String {
    template(
        &INVOICE_COLUMNS,
        &[
            "INV-1",
            "C-1001",
            "INV-2026-0001",
            "overdue",
            "2026-09-01",
            "2026-10-01",
            "GBP",
            "1250.00",
            "1250.00",
            "",
        ],
    )
}

struct Table {
    index: HashMap<String, usize>,
    rows: Vec<(usize, csv::StringRecord)>,
}

impl Table {
    fn get<'a>(&self, record: &'a csv::StringRecord, column: &str) -> &'a str {
        self.index
            .get(column)
            .and_then(|&i| record.get(i))
            .map(str::trim)
            .unwrap_or_default()
    }
}

/// Reads the file and checks its header; file-level problems come back as row errors too.
fn read_table(bytes: &[u8], columns: &[(&str, bool, &str)]) -> Result<Table, Vec<RowError>> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| vec![RowError::new(1, "", format!("cannot read the header: {e}"))])?;
    let index: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, name)| (name.trim().to_ascii_lowercase(), i))
        .collect();
    let missing: Vec<RowError> = columns
        .iter()
        .filter(|(name, required, _)| *required && !index.contains_key(*name))
        .map(|(name, _, _)| RowError::new(1, name, "required column is missing from the header"))
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        match record {
            Ok(record) if record.iter().all(|v| v.trim().is_empty()) => {}
            Ok(record) => rows.push((row, record)),
            Err(e) => errors.push(RowError::new(row, "", format!("cannot read this row: {e}"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rows.is_empty() {
        return Err(vec![RowError::new(2, "", "the file has no data rows")]);
    }
    Ok(Table { index, rows })
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" | "n" => Ok(false),
        "true" | "yes" | "1" | "y" => Ok(true),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

fn parse_date(value: &str) -> Result<String, String> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("{value:?} is not a date like 2026-01-31"))
}

fn bounded(value: &str, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        Err(format!("longer than {max} characters"))
    } else if value.chars().any(|c| c.is_control() && c != '\n') {
        Err("contains control characters".into())
    } else {
        Ok(value.to_owned())
    }
}

/// Collects problems of one row.
struct RowCheck<'a> {
    row: usize,
    errors: &'a mut Vec<RowError>,
}

impl RowCheck<'_> {
    fn check<T>(&mut self, column: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|message| self.errors.push(RowError::new(self.row, column, message)))
            .ok()
    }

    /// Flags an id seen earlier in the file.
    fn unique(&mut self, seen: &mut HashSet<String>, column: &str, id: Option<&str>) {
        if let Some(id) = id
            && !seen.insert(id.to_owned())
        {
            self.errors.push(RowError::new(
                self.row,
                column,
                format!("{id:?} appears more than once in the file"),
            ));
        }
    }

    fn required(&mut self, column: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            self.errors
                .push(RowError::new(self.row, column, "is required"));
            None
        } else {
            self.check(column, bounded(value, 200))
        }
    }
}

/// Parses and validates a customers file.
pub fn parse_customers(bytes: &[u8]) -> Result<Vec<CustomerRecord>, Vec<RowError>> {
    let table = read_table(bytes, &CUSTOMER_COLUMNS)?;
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(table.rows.len());
    let mut seen = HashSet::new();
    for (row, record) in &table.rows {
        let get = |c: &str| table.get(record, c);
        let mut check = RowCheck {
            row: *row,
            errors: &mut errors,
        };
        let external_id = check.required("customer_id", get("customer_id"));
        check.unique(&mut seen, "customer_id", external_id.as_deref());
        let display_name = check.required("display_name", get("display_name"));
        let currency = check.check("currency", Currency::parse(get("currency")));
        let active = check.check(
            "status",
            match get("status").to_ascii_lowercase().as_str() {
                "" | "active" => Ok(true),
                "inactive" => Ok(false),
                other => Err(format!("{other:?} is not active or inactive")),
            },
        );
        let country = get("billing_country").to_ascii_uppercase();
        let country = check.check(
            "billing_country",
            if country.is_empty() || phone::region(&country).is_some() {
                Ok(country)
            } else {
                Err(format!(
                    "{country:?} is not a two-letter country code like GB"
                ))
            },
        );
        let timezone = get("timezone");
        let timezone = check.check(
            "timezone",
            if timezone.is_empty() {
                Ok(String::new())
            } else {
                timezone
                    .parse::<Tz>()
                    .map(|tz| tz.name().to_owned())
                    .map_err(|_| format!("{timezone:?} is not a time zone like Europe/London"))
            },
        );
        let opted_out = check.check("opted_out", parse_bool(get("opted_out")));
        let mut text = |column: &str, max: usize| {
            check
                .check(column, bounded(get(column), max))
                .unwrap_or_default()
        };
        let company_name = text("company_name", 200);
        let email = text("email", 254);
        let street = text("billing_street", 300);
        let city = text("billing_city", 100);
        let state = text("billing_state", 100);
        let postcode = text("billing_postcode", 20);
        let notes = text("notes", 2000);
        let contact = ContactRecord {
            name: text("contact_name", 200),
            email: text("contact_email", 254),
            phone: text("contact_phone", 40),
            mobile: text("contact_mobile", 40),
            is_primary: true,
        };
        let has_contact = !(contact.name.is_empty()
            && contact.email.is_empty()
            && contact.phone.is_empty()
            && contact.mobile.is_empty());
        if let (
            Some(external_id),
            Some(display_name),
            Some(currency),
            Some(active),
            Some(billing_country),
            Some(timezone),
            Some(opted_out),
        ) = (
            external_id,
            display_name,
            currency,
            active,
            country,
            timezone,
            opted_out,
        ) {
            records.push(CustomerRecord {
                external_id,
                display_name,
                company_name,
                email,
                currency,
                active,
                billing_street: street,
                billing_city: city,
                billing_state: state,
                billing_postcode: postcode,
                billing_country,
                timezone,
                notes,
                opted_out,
                contacts: if has_contact {
                    vec![contact]
                } else {
                    Vec::new()
                },
                source_updated_at: None,
            });
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

/// Parses and validates an invoices file. `known_customers` are the customer ids that exist
/// (already imported, or in a customers file imported together).
pub fn parse_invoices(
    bytes: &[u8],
    known_customers: &HashSet<String>,
) -> Result<Vec<InvoiceRecord>, Vec<RowError>> {
    let table = read_table(bytes, &INVOICE_COLUMNS)?;
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(table.rows.len());
    let mut seen = HashSet::new();
    for (row, record) in &table.rows {
        let get = |c: &str| table.get(record, c);
        let mut check = RowCheck {
            row: *row,
            errors: &mut errors,
        };
        let external_id = check.required("invoice_id", get("invoice_id"));
        check.unique(&mut seen, "invoice_id", external_id.as_deref());
        let customer = check.required("customer_id", get("customer_id"));
        let customer = customer.and_then(|c| {
            if known_customers.contains(&c) {
                Some(c)
            } else {
                check.errors.push(RowError::new(
                    *row,
                    "customer_id",
                    format!("no customer with id {c:?}; import customers first"),
                ));
                None
            }
        });
        let number = check.required("invoice_number", get("invoice_number"));
        let status = check.check("status", InvoiceStatus::parse(get("status")));
        let issue_date = check.check("issue_date", parse_date(get("issue_date")));
        let due_date = check.check("due_date", parse_date(get("due_date")));
        if let (Some(issue), Some(due)) = (&issue_date, &due_date)
            && due < issue
        {
            check
                .errors
                .push(RowError::new(*row, "due_date", "is before the issue date"));
        }
        let expected = get("payment_expected_date");
        let expected = check.check(
            "payment_expected_date",
            if expected.is_empty() {
                Ok(String::new())
            } else {
                parse_date(expected)
            },
        );
        let currency = check.check("currency", Currency::parse(get("currency")));
        let (total, balance) = match &currency {
            Some(currency) => (
                check.check("total", parse_amount(get("total"), currency)),
                check.check("balance", parse_amount(get("balance"), currency)),
            ),
            None => (None, None),
        };
        if let (Some(total), Some(balance)) = (total, balance) {
            if total < 0 {
                check
                    .errors
                    .push(RowError::new(*row, "total", "cannot be negative"));
            } else if balance < 0 || balance > total {
                check.errors.push(RowError::new(
                    *row,
                    "balance",
                    "must be between 0 and the total",
                ));
            }
        }
        if let (
            Some(external_id),
            Some(customer_external_id),
            Some(number),
            Some(status),
            Some(issue_date),
            Some(due_date),
            Some(currency),
            Some(total_minor),
            Some(balance_minor),
            Some(payment_expected_date),
        ) = (
            external_id,
            customer,
            number,
            status,
            issue_date,
            due_date,
            currency,
            total,
            balance,
            expected,
        ) {
            records.push(InvoiceRecord {
                external_id,
                customer_external_id,
                number,
                status,
                issue_date,
                due_date,
                currency,
                total_minor,
                balance_minor,
                payment_expected_date,
                source_updated_at: None,
            });
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_import_cleanly() {
        let customers = parse_customers(customers_template().as_bytes()).unwrap();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0].contacts[0].mobile, "07911 123456");
        let known = HashSet::from(["C-1001".to_owned()]);
        let invoices = parse_invoices(invoices_template().as_bytes(), &known).unwrap();
        assert_eq!(invoices[0].total_minor, 125_000);
    }

    #[test]
    fn every_bad_cell_is_reported_with_row_and_column() {
        let file = "customer_id,display_name,currency,billing_country,timezone,opted_out\n\
                    C1,Good,USD,US,America/New_York,no\n\
                    C2,,usd,XX,Mars/Base,maybe\n\
                    C1,Dup,EURO,,,\n";
        let errors = parse_customers(file.as_bytes()).unwrap_err();
        let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        assert_eq!(
            found,
            [
                (3, "display_name"),
                (3, "billing_country"),
                (3, "timezone"),
                (3, "opted_out"),
                (4, "customer_id"),
                (4, "currency")
            ]
        );
    }

    #[test]
    fn missing_columns_and_empty_files_are_refused() {
        let errors = parse_customers(b"display_name,currency\nAcme,USD\n").unwrap_err();
        assert_eq!(
            (errors[0].row, errors[0].column.as_str()),
            (1, "customer_id")
        );
        let errors = parse_customers(b"customer_id,display_name,currency\n").unwrap_err();
        assert!(errors[0].message.contains("no data rows"));
        let errors =
            parse_customers(b"customer_id,display_name,currency\nC1,A,USD,extra\n").unwrap_err();
        assert_eq!(errors[0].row, 2);
    }

    #[test]
    fn invoice_rules_are_checked() {
        let known = HashSet::from(["C1".to_owned()]);
        let file = "invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance\n\
                    I1,C1,N1,sent,2026-01-10,2026-02-10,USD,100.00,50.00\n\
                    I2,C9,N2,unpaid,2026-02-30,2026-01-01,USD,100.001,150\n\
                    I3,C1,N3,paid,2026-03-01,2026-02-01,USD,100,101\n";
        let errors = parse_invoices(file.as_bytes(), &known).unwrap_err();
        let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        assert_eq!(
            found,
            [
                (3, "customer_id"),
                (3, "status"),
                (3, "issue_date"),
                (3, "total"),
                (4, "due_date"),
                (4, "balance")
            ]
        );
    }

    #[test]
    fn headers_are_case_insensitive_and_a_bom_is_ignored() {
        let file = "\u{feff}Customer_ID, Display_Name ,CURRENCY\nC1,Acme,gbp\n";
        let records = parse_customers(file.as_bytes()).unwrap();
        assert_eq!(records[0].currency.code(), "GBP");
    }
}
