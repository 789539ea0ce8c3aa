//! Writing customers and invoices from a source (CSV import, the demo generator, later the
//! Zoho sync). Upserts are keyed by (organization, source, external id), so re-importing or
//! re-syncing never duplicates; a record whose content is unchanged is skipped and counted as
//! such. Writes go in multi-row batches inside the caller's transaction.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::instrument;

pub use super::model::UpsertCounts;
use super::model::{Currency, ImportSummary, InvoiceStatus};
use super::phone::{self, ContactNumbers};
use crate::db::time::now_millis;
use crate::db::{Db, Dialect, Tx, numbered};
use crate::error::AppError;

/// `oldest_open_due` of a customer without unpaid invoices: sorts after every real date (the
/// migrations use it as the column default).
pub const NO_OPEN_DUE: &str = "9999-12-31";

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bind-parameter limits.
const BATCH: usize = 250;

/// A contact person as the source gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ContactRecord {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub mobile: String,
    pub is_primary: bool,
}

/// A customer as the source gives it, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerRecord {
    pub external_id: String,
    pub display_name: String,
    pub company_name: String,
    pub email: String,
    pub currency: Currency,
    pub active: bool,
    pub billing_street: String,
    pub billing_city: String,
    pub billing_state: String,
    pub billing_postcode: String,
    /// ISO 3166-1 alpha-2, upper case, or empty.
    pub billing_country: String,
    /// IANA zone or empty.
    pub timezone: String,
    pub notes: String,
    /// The customer asked not to be called. A write can set this but never clear it: an
    /// opt-out recorded in Duecall (or an earlier file) survives every later import and sync;
    /// only a person in Duecall opts a customer back in.
    pub opted_out: bool,
    pub contacts: Vec<ContactRecord>,
    pub source_updated_at: Option<i64>,
}

/// An invoice as the source gives it, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceRecord {
    pub external_id: String,
    pub customer_external_id: String,
    pub number: String,
    pub status: InvoiceStatus,
    /// `YYYY-MM-DD`.
    pub issue_date: String,
    pub due_date: String,
    pub currency: Currency,
    pub total_minor: i64,
    pub balance_minor: i64,
    pub payment_expected_date: String,
    pub source_updated_at: Option<i64>,
}

fn content_hash(value: &impl Serialize) -> Result<String, AppError> {
    let bytes = serde_json::to_vec(value).map_err(|e| AppError::internal("hashing a record", e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `($1, $2, …), (…)` (or `(?, ?, …)` on SQLite) for `rows` rows of `columns` values.
fn values_clause(dialect: Dialect, rows: usize, columns: usize) -> String {
    let mut placeholders = dialect.placeholders(rows * columns);
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholders.next().unwrap_or_default());
        }
        sql.push(')');
    }
    sql
}

/// Below this many records a write looks up only the rows it names; above, reading the whole
/// source at once is cheaper. (A sync writes page by page: reading everything per page would
/// make a large first sync quadratic.)
const LOOKUP_ALL_FROM: usize = 2_000;

/// `AND external_id IN (…)` for `ids` with placeholders numbered from `first`, or nothing when
/// the whole source is read.
fn id_filter(first: usize, count: usize) -> String {
    format!(" AND external_id IN ({})", numbered(first, count))
}

/// Existing (external id → (id, content hash)) of one source in one organization: of `ids`
/// only, or of the whole source for large writes.
#[instrument(skip_all, fields(table = table, ids = ids.len()))]
async fn existing(
    tx: &mut Tx<'_>,
    table: &'static str,
    org_id: i64,
    source: &str,
    ids: &[&str],
) -> Result<HashMap<String, (i64, String)>, AppError> {
    let base = format!(
        "SELECT external_id, id, content_hash FROM {table} WHERE org_id = $1 AND source = $2"
    );
    let mut found = HashMap::new();
    if ids.len() >= LOOKUP_ALL_FROM {
        let rows = sqlx::query_as::<_, (String, i64, String)>(&base)
            .bind(org_id)
            .bind(source)
            .fetch_all(&mut **tx)
            .await?;
        found.extend(rows.into_iter().map(|(ext, id, hash)| (ext, (id, hash))));
        return Ok(found);
    }
    for chunk in ids.chunks(500) {
        let sql = format!("{base}{}", id_filter(3, chunk.len()));
        let mut query = sqlx::query_as::<_, (String, i64, String)>(&sql)
            .bind(org_id)
            .bind(source);
        for id in chunk {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&mut **tx).await?;
        found.extend(rows.into_iter().map(|(ext, id, hash)| (ext, (id, hash))));
    }
    Ok(found)
}

struct PreparedCustomer {
    record: CustomerRecord,
    hash: String,
    /// Stored with a new customer (an update leaves the stored figures alone).
    totals: Totals,
    contacts: Vec<(ContactNumbers, ContactRecord)>,
    best: phone::BestPhone,
    search_text: String,
}

/// Parses the phone numbers of `records` and derives what is stored with them. CPU-bound:
/// runs on a blocking thread.
fn prepare_customers(records: Vec<(CustomerRecord, String, Totals)>) -> Vec<PreparedCustomer> {
    let parsed = phone::parse_many(records.iter().flat_map(|(r, _, _)| {
        r.contacts.iter().flat_map(|c| {
            [
                (c.mobile.as_str(), r.billing_country.as_str()),
                (c.phone.as_str(), r.billing_country.as_str()),
            ]
        })
    }));
    let lookup = |raw: &str, country: &str| {
        parsed
            .get(&(raw.trim().to_owned(), country.to_owned()))
            .or_else(|| parsed.get(&(raw.to_owned(), country.to_owned())))
            .cloned()
            .unwrap_or_default()
    };
    records
        .into_iter()
        .map(|(record, hash, totals)| {
            let contacts: Vec<(ContactNumbers, ContactRecord)> = record
                .contacts
                .iter()
                .map(|c| {
                    let numbers = ContactNumbers {
                        name: c.name.clone(),
                        is_primary: c.is_primary,
                        mobile: lookup(&c.mobile, &record.billing_country),
                        phone: lookup(&c.phone, &record.billing_country),
                    };
                    (numbers, c.clone())
                })
                .collect();
            let numbers: Vec<ContactNumbers> = contacts.iter().map(|(n, _)| n.clone()).collect();
            let best = phone::best_number(&numbers);
            let mut search = vec![
                record.display_name.clone(),
                record.company_name.clone(),
                record.email.clone(),
            ];
            for (numbers, contact) in &contacts {
                search.push(contact.name.clone());
                search.push(contact.email.clone());
                for number in [&numbers.mobile, &numbers.phone] {
                    search.push(number.e164.clone());
                    search.push(number.raw.chars().filter(char::is_ascii_digit).collect());
                }
            }
            let search_text = search
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            PreparedCustomer {
                record,
                hash,
                totals,
                contacts,
                best,
                search_text,
            }
        })
        .collect()
}

/// Open-invoice figures of one customer, as [`refresh_customer_totals`] computes them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Totals {
    /// Balances of open invoices in the customer's currency.
    outstanding: i64,
    open_invoices: i64,
    oldest_open_due: String,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            outstanding: 0,
            open_invoices: 0,
            oldest_open_due: NO_OPEN_DUE.to_owned(),
        }
    }
}

/// The figures `invoices` give each customer of `customers` (external id → totals).
fn totals_of<'a>(
    customers: &'a [CustomerRecord],
    invoices: &[InvoiceRecord],
) -> HashMap<&'a str, Totals> {
    let mut totals: HashMap<&str, (&str, Totals)> = customers
        .iter()
        .map(|c| {
            (
                c.external_id.as_str(),
                (c.currency.code(), Totals::default()),
            )
        })
        .collect();
    for invoice in invoices {
        if !(invoice.status.is_open() && invoice.balance_minor > 0) {
            continue;
        }
        if let Some((currency, t)) = totals.get_mut(invoice.customer_external_id.as_str()) {
            if *currency == invoice.currency.code() {
                t.outstanding += invoice.balance_minor;
            }
            t.open_invoices += 1;
            if invoice.due_date < t.oldest_open_due {
                t.oldest_open_due.clone_from(&invoice.due_date);
            }
        }
    }
    totals.into_iter().map(|(id, (_, t))| (id, t)).collect()
}

/// Writes a whole book (customers, then their invoices) in the caller's transaction. New
/// customers are stored with the figures these invoices give them, so the refresh of the
/// customers' totals after the invoices finds nothing to rewrite (a first import of 20,000
/// customers would otherwise write every customer row twice).
pub async fn upsert_books(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    customers: &[CustomerRecord],
    invoices: &[InvoiceRecord],
) -> Result<ImportSummary, AppError> {
    let totals = totals_of(customers, invoices);
    Ok(ImportSummary {
        customers: write_customer_records(tx, org_id, source, customers, &totals).await?,
        invoices: upsert_invoices(tx, org_id, source, invoices).await?,
    })
}

/// Inserts new customers and updates changed ones (with their contact persons).
pub async fn upsert_customers(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    records: &[CustomerRecord],
) -> Result<UpsertCounts, AppError> {
    write_customer_records(tx, org_id, source, records, &HashMap::new()).await
}

#[instrument(skip_all, fields(org_id, source, records = records.len()))]
async fn write_customer_records(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    records: &[CustomerRecord],
    totals: &HashMap<&str, Totals>,
) -> Result<UpsertCounts, AppError> {
    let ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    let known = existing(tx, "customers", org_id, source, &ids).await?;
    let mut counts = UpsertCounts::default();
    let mut changed = Vec::new();
    for record in records {
        let hash = content_hash(record)?;
        match known.get(&record.external_id) {
            Some((_, old)) if *old == hash => counts.unchanged += 1,
            Some(_) => {
                counts.updated += 1;
                changed.push((record.clone(), hash, Totals::default()));
            }
            None => {
                counts.new += 1;
                let figures = totals
                    .get(record.external_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                changed.push((record.clone(), hash, figures));
            }
        }
    }
    let changed = tokio::task::spawn_blocking(move || prepare_customers(changed))
        .await
        .map_err(|e| AppError::internal("preparing customers", e))?;
    write_customers(tx, org_id, source, &changed).await?;
    if !changed.is_empty() {
        replace_contacts(tx, org_id, source, &changed).await?;
    }
    Ok(counts)
}

/// The customer columns an upsert writes, and what it changes on a conflict. An opt-out is
/// kept whatever the source says (see [`CustomerRecord::opted_out`]).
const CUSTOMER_INSERT: &str = "INSERT INTO customers (org_id, source, external_id, display_name, \
     sort_name, company_name, email, currency, status, billing_street, billing_city, billing_state, \
     billing_postcode, billing_country, timezone, notes, opted_out, best_phone_e164, \
     best_phone_reason, phone_status, search_text, content_hash, source_updated_at, \
     outstanding_minor, open_invoices, oldest_open_due, created_at, updated_at) ";
const CUSTOMER_CONFLICT: &str = " ON CONFLICT (org_id, source, external_id) DO UPDATE SET \
     display_name = excluded.display_name, sort_name = excluded.sort_name, \
     company_name = excluded.company_name, email = excluded.email, currency = excluded.currency, \
     status = excluded.status, billing_street = excluded.billing_street, \
     billing_city = excluded.billing_city, billing_state = excluded.billing_state, \
     billing_postcode = excluded.billing_postcode, billing_country = excluded.billing_country, \
     timezone = excluded.timezone, notes = excluded.notes, \
     opted_out = CASE WHEN customers.opted_out = 1 THEN 1 ELSE excluded.opted_out END, \
     best_phone_e164 = excluded.best_phone_e164, best_phone_reason = excluded.best_phone_reason, \
     phone_status = excluded.phone_status, search_text = excluded.search_text, \
     content_hash = excluded.content_hash, source_updated_at = excluded.source_updated_at, \
     updated_at = excluded.updated_at";

/// One customer row as PostgreSQL's `json_to_recordset` reads it.
#[derive(Serialize)]
struct CustomerJson<'a> {
    external_id: &'a str,
    display_name: &'a str,
    sort_name: String,
    company_name: &'a str,
    email: &'a str,
    currency: &'a str,
    status: &'a str,
    billing_street: &'a str,
    billing_city: &'a str,
    billing_state: &'a str,
    billing_postcode: &'a str,
    billing_country: &'a str,
    timezone: &'a str,
    notes: &'a str,
    opted_out: i64,
    best_phone_e164: &'a str,
    best_phone_reason: &'a str,
    phone_status: &'a str,
    search_text: &'a str,
    content_hash: &'a str,
    source_updated_at: Option<i64>,
    outstanding_minor: i64,
    open_invoices: i64,
    oldest_open_due: &'a str,
}

impl<'a> CustomerJson<'a> {
    fn new(p: &'a PreparedCustomer) -> Self {
        let r = &p.record;
        Self {
            external_id: &r.external_id,
            display_name: &r.display_name,
            sort_name: r.display_name.to_lowercase(),
            company_name: &r.company_name,
            email: &r.email,
            currency: r.currency.code(),
            status: if r.active { "active" } else { "inactive" },
            billing_street: &r.billing_street,
            billing_city: &r.billing_city,
            billing_state: &r.billing_state,
            billing_postcode: &r.billing_postcode,
            billing_country: &r.billing_country,
            timezone: &r.timezone,
            notes: &r.notes,
            opted_out: i64::from(r.opted_out),
            best_phone_e164: &p.best.e164,
            best_phone_reason: &p.best.reason,
            phone_status: p.best.status.as_str(),
            search_text: &p.search_text,
            content_hash: &p.hash,
            source_updated_at: r.source_updated_at,
            outstanding_minor: p.totals.outstanding,
            open_invoices: p.totals.open_invoices,
            oldest_open_due: &p.totals.oldest_open_due,
        }
    }
}

/// Inserts or updates the prepared customers: as JSON documents on PostgreSQL, as multi-row
/// `VALUES` on SQLite (see [`write_invoices`]).
#[instrument(skip_all)]
async fn write_customers(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    changed: &[PreparedCustomer],
) -> Result<(), AppError> {
    let now = now_millis();
    if Dialect::of(tx) == Dialect::Postgres {
        let sql = format!(
            "{CUSTOMER_INSERT}SELECT $1, $2, r.external_id, r.display_name, r.sort_name, \
               r.company_name, r.email, r.currency, r.status, r.billing_street, r.billing_city, \
               r.billing_state, r.billing_postcode, r.billing_country, r.timezone, r.notes, \
               r.opted_out, r.best_phone_e164, r.best_phone_reason, r.phone_status, r.search_text, \
               r.content_hash, r.source_updated_at, r.outstanding_minor, r.open_invoices, \
               r.oldest_open_due, $3, $3 \
             FROM json_to_recordset($4::json) AS r(external_id TEXT, display_name TEXT, \
               sort_name TEXT, company_name TEXT, email TEXT, currency TEXT, status TEXT, \
               billing_street TEXT, billing_city TEXT, billing_state TEXT, billing_postcode TEXT, \
               billing_country TEXT, timezone TEXT, notes TEXT, opted_out INTEGER, \
               best_phone_e164 TEXT, best_phone_reason TEXT, phone_status TEXT, search_text TEXT, \
               content_hash TEXT, source_updated_at BIGINT, outstanding_minor BIGINT, \
               open_invoices BIGINT, oldest_open_due TEXT){CUSTOMER_CONFLICT}"
        );
        for chunk in changed.chunks(JSON_BATCH) {
            let rows: Vec<CustomerJson<'_>> = chunk.iter().map(CustomerJson::new).collect();
            execute_json(tx, &sql, (org_id, source, now), &rows).await?;
        }
        return Ok(());
    }
    const COLUMNS: usize = 28;
    for chunk in changed.chunks(BATCH) {
        let sql = format!(
            "{CUSTOMER_INSERT}VALUES {}{CUSTOMER_CONFLICT}",
            values_clause(Dialect::Sqlite, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(&sql);
        for p in chunk {
            let row = CustomerJson::new(p);
            query = query
                .bind(org_id)
                .bind(source)
                .bind(row.external_id)
                .bind(row.display_name)
                .bind(row.sort_name)
                .bind(row.company_name)
                .bind(row.email)
                .bind(row.currency)
                .bind(row.status)
                .bind(row.billing_street)
                .bind(row.billing_city)
                .bind(row.billing_state)
                .bind(row.billing_postcode)
                .bind(row.billing_country)
                .bind(row.timezone)
                .bind(row.notes)
                .bind(row.opted_out)
                .bind(row.best_phone_e164)
                .bind(row.best_phone_reason)
                .bind(row.phone_status)
                .bind(row.search_text)
                .bind(row.content_hash)
                .bind(row.source_updated_at)
                .bind(row.outstanding_minor)
                .bind(row.open_invoices)
                .bind(row.oldest_open_due)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

#[instrument(skip_all)]
async fn replace_contacts(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    customers: &[PreparedCustomer],
) -> Result<(), AppError> {
    let names: Vec<&str> = customers
        .iter()
        .map(|c| c.record.external_id.as_str())
        .collect();
    let ids = existing(tx, "customers", org_id, source, &names).await?;
    let customer_ids: Vec<i64> = customers
        .iter()
        .filter_map(|c| ids.get(&c.record.external_id).map(|(id, _)| *id))
        .collect();
    for chunk in customer_ids.chunks(BATCH) {
        let mut placeholders = Dialect::of(tx).placeholders(chunk.len() + 1);
        let org = placeholders.next().unwrap_or_default();
        let sql = format!(
            "DELETE FROM contact_persons WHERE org_id = {org} AND customer_id IN ({})",
            placeholders.collect::<Vec<_>>().join(", ")
        );
        let mut query = sqlx::query(&sql).bind(org_id);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await?;
    }
    let rows: Vec<(i64, i64, &ContactNumbers, &ContactRecord)> = customers
        .iter()
        .filter_map(|c| ids.get(&c.record.external_id).map(|(id, _)| (*id, c)))
        .flat_map(|(id, c)| {
            c.contacts
                .iter()
                .enumerate()
                .map(move |(position, (numbers, record))| (id, position as i64, numbers, record))
        })
        .collect();
    const COLUMNS: usize = 12;
    for chunk in rows.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO contact_persons (org_id, customer_id, position, name, email, phone_raw, phone_e164, \
             phone_error, mobile_raw, mobile_e164, mobile_error, is_primary) VALUES {}",
            values_clause(Dialect::of(tx), chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(&sql);
        for (customer_id, position, numbers, record) in chunk {
            query = query
                .bind(org_id)
                .bind(*customer_id)
                .bind(*position)
                .bind(&record.name)
                .bind(&record.email)
                .bind(&numbers.phone.raw)
                .bind(&numbers.phone.e164)
                .bind(&numbers.phone.error)
                .bind(&numbers.mobile.raw)
                .bind(&numbers.mobile.e164)
                .bind(&numbers.mobile.error)
                .bind(i64::from(record.is_primary));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts new invoices and updates changed ones; their customers must already exist in the
/// same source. Refreshes the affected customers' totals.
pub async fn upsert_invoices(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    records: &[InvoiceRecord],
) -> Result<UpsertCounts, AppError> {
    Ok(upsert_invoices_tracked(tx, org_id, source, records)
        .await?
        .0)
}

/// [`upsert_invoices`], also returning the ids of stored invoices that this write settled
/// (they were open and are now paid or void): reminders for them must stop.
#[instrument(skip_all, fields(org_id, source, records = records.len()))]
pub async fn upsert_invoices_tracked(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    records: &[InvoiceRecord],
) -> Result<(UpsertCounts, Vec<i64>), AppError> {
    let mut named: Vec<&str> = records
        .iter()
        .map(|r| r.customer_external_id.as_str())
        .collect();
    named.sort_unstable();
    named.dedup();
    let customers = existing(tx, "customers", org_id, source, &named).await?;
    let ids: Vec<&str> = records.iter().map(|r| r.external_id.as_str()).collect();
    let known = known_invoices(tx, org_id, source, &ids).await?;
    let mut counts = UpsertCounts::default();
    let mut changed = Vec::new();
    // Customers whose totals may change: the new owners and, for reassigned invoices, the old;
    // and the rollup rows the old and new versions fall in.
    let mut affected = BTreeSet::new();
    let mut rollup_keys = BTreeSet::new();
    let mut settled = Vec::new();
    for record in records {
        let Some((customer_id, _)) = customers.get(&record.customer_external_id) else {
            return Err(AppError::invalid(
                "customer_external_id",
                format!(
                    "invoice {} names unknown customer {:?}",
                    record.number, record.customer_external_id
                ),
            ));
        };
        let hash = content_hash(record)?;
        match known.get(&record.external_id) {
            Some(old) if old.content_hash == hash => {
                counts.unchanged += 1;
                continue;
            }
            Some(old) => {
                counts.updated += 1;
                let was_open = InvoiceStatus::parse(&old.status).is_ok_and(InvoiceStatus::is_open);
                if was_open && matches!(record.status, InvoiceStatus::Paid | InvoiceStatus::Void) {
                    settled.push(old.id);
                }
                affected.insert(old.customer_id);
                rollup_keys.insert(RollupKey::new(&old.currency, &old.status, &old.due_date));
            }
            None => counts.new += 1,
        }
        affected.insert(*customer_id);
        rollup_keys.insert(RollupKey::new(
            record.currency.code(),
            record.status.as_str(),
            &record.due_date,
        ));
        changed.push((record, *customer_id, hash));
    }
    write_invoices(tx, org_id, source, &changed).await?;
    let affected: Vec<i64> = affected.into_iter().collect();
    refresh_customer_totals(tx, org_id, &affected).await?;
    let rollup_keys: Vec<RollupKey> = rollup_keys.into_iter().collect();
    refresh_rollups(tx, org_id, &rollup_keys).await?;
    Ok((counts, settled))
}

/// Deletes the invoices of `source` named by `external_ids` (deleted at the source), keeping
/// customer totals and rollups right. Returns the ids of those that were open: reminders for
/// them must stop. Unknown ids are ignored.
#[instrument(skip_all, fields(org_id, source, invoices = external_ids.len()))]
pub async fn delete_invoices(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    external_ids: &[&str],
) -> Result<Vec<i64>, AppError> {
    let known = known_invoices(tx, org_id, source, external_ids).await?;
    let doomed: Vec<&Known> = external_ids
        .iter()
        .filter_map(|id| known.get(*id))
        .collect();
    let mut affected = BTreeSet::new();
    let mut rollup_keys = BTreeSet::new();
    let mut open = Vec::new();
    for old in &doomed {
        affected.insert(old.customer_id);
        rollup_keys.insert(RollupKey::new(&old.currency, &old.status, &old.due_date));
        if InvoiceStatus::parse(&old.status).is_ok_and(InvoiceStatus::is_open) {
            open.push(old.id);
        }
    }
    for chunk in doomed.chunks(500) {
        let sql = format!(
            "DELETE FROM invoices WHERE org_id = $1 AND id IN ({})",
            numbered(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).persistent(false).bind(org_id);
        for old in chunk {
            query = query.bind(old.id);
        }
        query.execute(&mut **tx).await?;
    }
    let affected: Vec<i64> = affected.into_iter().collect();
    refresh_customer_totals(tx, org_id, &affected).await?;
    let rollup_keys: Vec<RollupKey> = rollup_keys.into_iter().collect();
    refresh_rollups(tx, org_id, &rollup_keys).await?;
    Ok(open)
}

/// The invoice columns an upsert writes, and what it changes on a conflict.
const INVOICE_INSERT: &str = "INSERT INTO invoices (org_id, customer_id, source, external_id, number, \
     status, issue_date, due_date, currency, total_minor, balance_minor, payment_expected_date, \
     content_hash, source_updated_at, created_at, updated_at) ";
const INVOICE_CONFLICT: &str = " ON CONFLICT (org_id, source, external_id) DO UPDATE SET \
     customer_id = excluded.customer_id, number = excluded.number, status = excluded.status, \
     issue_date = excluded.issue_date, due_date = excluded.due_date, currency = excluded.currency, \
     total_minor = excluded.total_minor, balance_minor = excluded.balance_minor, \
     paid_down_at = CASE WHEN excluded.balance_minor < invoices.balance_minor \
       THEN excluded.updated_at ELSE invoices.paid_down_at END, \
     payment_expected_date = excluded.payment_expected_date, content_hash = excluded.content_hash, \
     source_updated_at = excluded.source_updated_at, updated_at = excluded.updated_at";

/// One invoice row as PostgreSQL's `json_to_recordset` reads it.
#[derive(Serialize)]
struct InvoiceJson<'a> {
    customer_id: i64,
    external_id: &'a str,
    number: &'a str,
    status: &'a str,
    issue_date: &'a str,
    due_date: &'a str,
    currency: &'a str,
    total_minor: i64,
    balance_minor: i64,
    payment_expected_date: &'a str,
    content_hash: &'a str,
    source_updated_at: Option<i64>,
}

/// Runs a PostgreSQL bulk write whose parameters are the organization, the source, the time
/// of the write and `rows` as one JSON array.
async fn execute_json<T: Serialize>(
    tx: &mut Tx<'_>,
    sql: &str,
    (org_id, source, now): (i64, &str, i64),
    rows: &[T],
) -> Result<(), AppError> {
    let json = serde_json::to_string(rows).map_err(|e| AppError::internal("encoding rows", e))?;
    sqlx::query(sql)
        .bind(org_id)
        .bind(source)
        .bind(now)
        .bind(json)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rows per statement when PostgreSQL reads them from one JSON parameter.
const JSON_BATCH: usize = 5_000;

/// Inserts or updates `changed` (record, customer id, content hash).
///
/// PostgreSQL gets the rows as one JSON document per few thousand rows: a multi-row `VALUES`
/// of 4,000 parameters costs it a parse, bind and plan per 250 rows (a 100,000-invoice import
/// took about a second longer that way). SQLite, in process, binds `VALUES` rows cheaply.
#[instrument(skip_all)]
async fn write_invoices(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    changed: &[(&InvoiceRecord, i64, String)],
) -> Result<(), AppError> {
    let now = now_millis();
    if Dialect::of(tx) == Dialect::Postgres {
        let sql = format!(
            "{INVOICE_INSERT}SELECT $1, r.customer_id, $2, r.external_id, r.number, r.status, \
               r.issue_date, r.due_date, r.currency, r.total_minor, r.balance_minor, \
               r.payment_expected_date, r.content_hash, r.source_updated_at, $3, $3 \
             FROM json_to_recordset($4::json) AS r(customer_id BIGINT, external_id TEXT, \
               number TEXT, status TEXT, issue_date TEXT, due_date TEXT, currency TEXT, \
               total_minor BIGINT, balance_minor BIGINT, payment_expected_date TEXT, \
               content_hash TEXT, source_updated_at BIGINT){INVOICE_CONFLICT}"
        );
        for chunk in changed.chunks(JSON_BATCH) {
            let rows: Vec<InvoiceJson<'_>> = chunk
                .iter()
                .map(|(r, customer_id, hash)| InvoiceJson {
                    customer_id: *customer_id,
                    external_id: &r.external_id,
                    number: &r.number,
                    status: r.status.as_str(),
                    issue_date: &r.issue_date,
                    due_date: &r.due_date,
                    currency: r.currency.code(),
                    total_minor: r.total_minor,
                    balance_minor: r.balance_minor,
                    payment_expected_date: &r.payment_expected_date,
                    content_hash: hash,
                    source_updated_at: r.source_updated_at,
                })
                .collect();
            execute_json(tx, &sql, (org_id, source, now), &rows).await?;
        }
        return Ok(());
    }
    const COLUMNS: usize = 16;
    for chunk in changed.chunks(BATCH) {
        let sql = format!(
            "{INVOICE_INSERT}VALUES {}{INVOICE_CONFLICT}",
            values_clause(Dialect::Sqlite, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(&sql);
        for (r, customer_id, hash) in chunk {
            query = query
                .bind(org_id)
                .bind(*customer_id)
                .bind(source)
                .bind(&r.external_id)
                .bind(&r.number)
                .bind(r.status.as_str())
                .bind(&r.issue_date)
                .bind(&r.due_date)
                .bind(r.currency.code())
                .bind(r.total_minor)
                .bind(r.balance_minor)
                .bind(&r.payment_expected_date)
                .bind(hash)
                .bind(r.source_updated_at)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// After a large write, refreshes the query planner's statistics, so the next page loads pick
/// the right indexes at once rather than after the database's own schedule.
#[instrument(skip_all)]
pub async fn refresh_statistics_after(db: &Db, summary: &ImportSummary) -> Result<(), AppError> {
    let written = summary.customers.new
        + summary.customers.updated
        + summary.invoices.new
        + summary.invoices.updated;
    if written > 1_000 {
        db.refresh_statistics(&[
            "customers",
            "contact_persons",
            "invoices",
            "invoice_rollups",
        ])
        .await?;
    }
    Ok(())
}

/// The stored versions of the invoices `ids` names (of the whole source for large writes).
#[instrument(skip_all, fields(ids = ids.len()))]
async fn known_invoices(
    tx: &mut Tx<'_>,
    org_id: i64,
    source: &str,
    ids: &[&str],
) -> Result<HashMap<String, Known>, AppError> {
    let base = "SELECT id, external_id, content_hash, customer_id, currency, status, due_date \
                FROM invoices WHERE org_id = $1 AND source = $2";
    let mut known = HashMap::new();
    let chunks: Vec<&[&str]> = if ids.len() >= LOOKUP_ALL_FROM {
        vec![&[]]
    } else {
        ids.chunks(500).collect()
    };
    for chunk in chunks {
        let sql = if chunk.is_empty() {
            base.to_owned()
        } else {
            format!("{base}{}", id_filter(3, chunk.len()))
        };
        let mut query = sqlx::query_as::<_, Known>(&sql).bind(org_id).bind(source);
        for id in chunk {
            query = query.bind(*id);
        }
        known.extend(
            query
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(|k| (k.external_id.clone(), k)),
        );
    }
    Ok(known)
}

/// An invoice as stored, for deciding what an upsert changes.
#[derive(sqlx::FromRow)]
struct Known {
    id: i64,
    external_id: String,
    content_hash: String,
    customer_id: i64,
    currency: String,
    status: String,
    due_date: String,
}

/// One row of `invoice_rollups` without its openness (both are recomputed together).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RollupKey {
    currency: String,
    status: String,
    due_date: String,
}

impl RollupKey {
    fn new(currency: &str, status: &str, due_date: &str) -> Self {
        Self {
            currency: currency.to_owned(),
            status: status.to_owned(),
            due_date: due_date.to_owned(),
        }
    }
}

/// Beyond this many rollup keys, recomputing the organization's rollups in one grouped pass is
/// cheaper than key by key.
const FULL_ROLLUP_FROM: usize = 500;

/// Recomputes the `invoice_rollups` rows of `keys` from the invoices themselves (in the
/// caller's transaction, after the invoice writes).
#[instrument(skip_all, fields(org_id, keys = keys.len()))]
async fn refresh_rollups(tx: &mut Tx<'_>, org_id: i64, keys: &[RollupKey]) -> Result<(), AppError> {
    let grouped = format!(
        "SELECT i.org_id, i.currency, i.status, i.due_date, CASE WHEN {OPEN_INVOICE} THEN 1 ELSE 0 END, \
         COUNT(*), CAST(SUM(i.balance_minor) AS BIGINT) FROM invoices i WHERE i.org_id = $1"
    );
    const INSERT: &str = "INSERT INTO invoice_rollups \
         (org_id, currency, status, due_date, is_open, invoice_count, balance_minor) ";
    if keys.len() >= FULL_ROLLUP_FROM {
        sqlx::query("DELETE FROM invoice_rollups WHERE org_id = $1")
            .bind(org_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(&format!("{INSERT}{grouped} GROUP BY 1, 2, 3, 4, 5"))
            .bind(org_id)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    for chunk in keys.chunks(100) {
        let tuples = (0..chunk.len())
            .map(|n| format!("(${}, ${}, ${})", 3 * n + 2, 3 * n + 3, 3 * n + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let matches = format!("(currency, status, due_date) IN (VALUES {tuples})");
        for sql in [
            format!("DELETE FROM invoice_rollups WHERE org_id = $1 AND {matches}"),
            format!("{INSERT}{grouped} AND {matches} GROUP BY 1, 2, 3, 4, 5"),
        ] {
            let mut query = sqlx::query(&sql).persistent(false).bind(org_id);
            for key in chunk {
                query = query
                    .bind(key.currency.as_str())
                    .bind(key.status.as_str())
                    .bind(key.due_date.as_str());
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Beyond this many affected customers, one grouped pass over all the organization's open
/// invoices is cheaper than looking each customer up.
const FULL_REFRESH_FROM: usize = 2_000;

/// Recomputes the outstanding amount (open invoices in the customer's currency), open invoice
/// count and oldest open due date of the `affected` customers. Rows are written only where a
/// figure changes: every rewrite of a customer row costs index maintenance.
#[instrument(skip_all, fields(org_id, affected = affected.len()))]
pub async fn refresh_customer_totals(
    tx: &mut Tx<'_>,
    org_id: i64,
    affected: &[i64],
) -> Result<(), AppError> {
    if affected.len() >= FULL_REFRESH_FROM {
        return refresh_all_customer_totals(tx, org_id).await;
    }
    for chunk in affected.chunks(BATCH) {
        // Numbered placeholders on both backends: at a few hundred parameters SQLite's
        // named-parameter lookup costs nothing that matters.
        let ids = numbered(2, chunk.len());
        // What is stored, and what the open invoices say (one grouped read through the
        // (org, customer) index); then one small update per customer whose figures change.
        let stored_sql = format!(
            "SELECT id, currency, outstanding_minor, open_invoices, oldest_open_due FROM customers \
             WHERE org_id = $1 AND id IN ({ids})"
        );
        let mut stored =
            sqlx::query_as::<_, (i64, String, i64, i64, String)>(&stored_sql).bind(org_id);
        let open_sql = format!(
            "SELECT i.customer_id, i.currency, CAST(SUM(i.balance_minor) AS BIGINT), COUNT(*), MIN(i.due_date) \
             FROM invoices i WHERE i.org_id = $1 AND i.customer_id IN ({ids}) AND {OPEN_INVOICE} \
             GROUP BY i.customer_id, i.currency"
        );
        let mut open = sqlx::query_as::<_, (i64, String, i64, i64, String)>(&open_sql)
            .persistent(false)
            .bind(org_id);
        for id in chunk {
            stored = stored.bind(*id);
            open = open.bind(*id);
        }
        let stored = stored.fetch_all(&mut **tx).await?;
        let open = open.fetch_all(&mut **tx).await?;
        let mut figures: HashMap<i64, Vec<(String, i64, i64, String)>> = HashMap::new();
        for (customer_id, currency, balance, count, oldest) in open {
            figures
                .entry(customer_id)
                .or_default()
                .push((currency, balance, count, oldest));
        }
        let mut changed: Vec<(i64, i64, i64, String)> = Vec::new();
        for (id, currency, outstanding, open_count, oldest_due) in stored {
            let rows = figures.get(&id).map(Vec::as_slice).unwrap_or_default();
            // Outstanding counts the customer's own currency; the count and the oldest due
            // date count every open invoice.
            let new_outstanding: i64 = rows
                .iter()
                .filter(|(c, ..)| *c == currency)
                .map(|(_, balance, ..)| balance)
                .sum();
            let new_count: i64 = rows.iter().map(|(_, _, count, _)| count).sum();
            let new_oldest = rows
                .iter()
                .map(|(.., oldest)| oldest.as_str())
                .min()
                .unwrap_or(NO_OPEN_DUE);
            if (new_outstanding, new_count, new_oldest)
                != (outstanding, open_count, oldest_due.as_str())
            {
                changed.push((id, new_outstanding, new_count, new_oldest.to_owned()));
            }
        }
        if changed.is_empty() {
            continue;
        }
        // One statement for the changed rows (`VALUES` columns are `column1…` on both backends).
        let values = (0..changed.len())
            .map(|n| {
                format!(
                    "(${}, ${}, ${}, ${})",
                    4 * n + 2,
                    4 * n + 3,
                    4 * n + 4,
                    4 * n + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE customers SET outstanding_minor = v.column2, open_invoices = v.column3, \
               oldest_open_due = v.column4 \
             FROM (VALUES {values}) AS v \
             WHERE customers.org_id = $1 AND customers.id = v.column1"
        );
        let mut update = sqlx::query(&sql).persistent(false).bind(org_id);
        for (id, outstanding, count, oldest) in &changed {
            update = update
                .bind(*id)
                .bind(*outstanding)
                .bind(*count)
                .bind(oldest.as_str());
        }
        update.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The refresh for every customer: one grouped pass over the invoices, then one joined update.
async fn refresh_all_customer_totals(tx: &mut Tx<'_>, org_id: i64) -> Result<(), AppError> {
    // Customers left without open invoices go back to the defaults.
    sqlx::query(&format!(
        "UPDATE customers SET outstanding_minor = 0, open_invoices = 0, oldest_open_due = $2 \
         WHERE org_id = $1 AND (outstanding_minor <> 0 OR open_invoices <> 0 OR oldest_open_due <> $2) \
           AND id NOT IN (SELECT i.customer_id FROM invoices i WHERE i.org_id = $1 AND {OPEN_INVOICE})"
    ))
    .bind(org_id)
    .bind(NO_OPEN_DUE)
    .execute(&mut **tx)
    .await?;
    // This pass reads every open invoice of the organization, so hash joins are the plan. Right
    // after an organization's first large write the planner's statistics still say it has
    // no rows, and PostgreSQL then picks nested loops that re-read the invoices once per
    // customer (minutes at 10,000 invoices). Nested loops are off for this statement only.
    let postgres = Dialect::of(tx) == Dialect::Postgres;
    if postgres {
        sqlx::query("SET LOCAL enable_nestloop = off")
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(&format!(
        "UPDATE customers SET outstanding_minor = totals.outstanding, open_invoices = totals.open_count, \
           oldest_open_due = totals.oldest_due \
         FROM (SELECT i.customer_id AS customer_id, \
                 CAST(SUM(CASE WHEN i.currency = c.currency THEN i.balance_minor ELSE 0 END) AS BIGINT) AS outstanding, \
                 COUNT(*) AS open_count, MIN(i.due_date) AS oldest_due \
               FROM invoices i JOIN customers c ON c.id = i.customer_id AND c.org_id = i.org_id \
               WHERE i.org_id = $1 AND {OPEN_INVOICE} \
               GROUP BY i.customer_id) AS totals \
         WHERE customers.org_id = $1 AND customers.id = totals.customer_id \
           AND (customers.outstanding_minor <> totals.outstanding OR customers.open_invoices <> totals.open_count \
                OR customers.oldest_open_due <> totals.oldest_due)"
    ))
    .bind(org_id)
    .execute(&mut **tx)
    .await?;
    if postgres {
        sqlx::query("SET LOCAL enable_nestloop = on")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The open-invoice condition for an invoices table aliased `i`: what the customers' totals,
/// the rollups' `is_open` and every open-invoice query count.
pub const OPEN_INVOICE: &str =
    "i.status IN ('sent', 'overdue', 'partially_paid') AND i.balance_minor > 0";

#[cfg(test)]
mod tests {
    use super::{CustomerRecord, InvoiceRecord, Totals, totals_of, values_clause};
    use crate::db::Dialect;
    use crate::receivables::model::{Currency, InvoiceStatus};

    #[test]
    fn new_customers_get_the_figures_of_their_open_invoices() {
        let customer = |id: &str, currency: &str| CustomerRecord {
            external_id: id.into(),
            display_name: id.into(),
            company_name: String::new(),
            email: String::new(),
            currency: Currency::parse(currency).unwrap(),
            active: true,
            billing_street: String::new(),
            billing_city: String::new(),
            billing_state: String::new(),
            billing_postcode: String::new(),
            billing_country: String::new(),
            timezone: String::new(),
            notes: String::new(),
            opted_out: false,
            contacts: Vec::new(),
            source_updated_at: None,
        };
        let invoice = |customer: &str, status, currency: &str, balance, due: &str| InvoiceRecord {
            external_id: format!("{customer}-{due}-{balance}"),
            customer_external_id: customer.into(),
            number: String::new(),
            status,
            issue_date: "2026-01-01".into(),
            due_date: due.into(),
            currency: Currency::parse(currency).unwrap(),
            total_minor: balance,
            balance_minor: balance,
            payment_expected_date: String::new(),
            source_updated_at: None,
        };
        let customers = [customer("A", "GBP"), customer("B", "USD")];
        let invoices = [
            invoice("A", InvoiceStatus::Overdue, "GBP", 1_000, "2026-03-01"),
            invoice("A", InvoiceStatus::PartiallyPaid, "GBP", 250, "2026-02-01"),
            // Another currency: counted and dated, not added to the amount.
            invoice("A", InvoiceStatus::Sent, "EUR", 900, "2026-01-15"),
            // Not open: ignored.
            invoice("A", InvoiceStatus::Paid, "GBP", 0, "2025-12-01"),
            invoice("A", InvoiceStatus::Sent, "GBP", 0, "2025-12-02"),
            invoice("B", InvoiceStatus::Void, "USD", 500, "2025-11-01"),
            // A customer not in this write: nothing to say.
            invoice("Z", InvoiceStatus::Overdue, "USD", 100, "2026-01-01"),
        ];
        let totals = totals_of(&customers, &invoices);
        assert_eq!(totals.len(), 2);
        assert_eq!(
            totals["A"],
            Totals {
                outstanding: 1_250,
                open_invoices: 3,
                oldest_open_due: "2026-01-15".into()
            }
        );
        assert_eq!(totals["B"], Totals::default());
    }

    #[test]
    fn values_are_numbered_row_by_row() {
        assert_eq!(
            values_clause(Dialect::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(values_clause(Dialect::Sqlite, 1, 3), "(?, ?, ?)");
    }
}
