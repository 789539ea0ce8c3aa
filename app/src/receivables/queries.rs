//! Reading receivables for the pages: the customers and invoices lists (keyset pagination,
//! search, filters, sorts), their detail views, and the dashboard figures. Everything reads
//! the local database only, and every query filters on the member's organization.

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use sqlx::any::AnyArguments;
use sqlx::{Any, FromRow};
use tracing::instrument;

use super::model::{AgingBucket, Currency, InvoiceStatus, Money, PhoneStatus, parse_amount};
use super::views::{
    AgingAmount, ContactView, CurrencySummary, CurrencyTotal, CustomerDetail, CustomerFilter,
    CustomerPage, CustomerRow, CustomerSort, DashboardData, InvoiceDetail, InvoiceFilter,
    InvoicePage, InvoiceRow, InvoiceSort, OverdueCustomer, PAGE_SIZE,
};
use crate::accounts::service::Member;
use crate::db::{Db, Dialect};
use crate::error::AppError;

pub use super::upsert::NO_OPEN_DUE;
use super::upsert::OPEN_INVOICE as OPEN;

/// A query assembled from optional parts, with `$n` placeholders numbered as they are added.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<Value>,
}

#[derive(Clone)]
enum Value {
    Int(i64),
    Text(String),
}

impl Sql {
    fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.values.len().to_string());
        self
    }

    fn query_as<'q, T>(&'q self) -> sqlx::query::QueryAs<'q, Any, T, AnyArguments<'q>>
    where
        T: for<'r> FromRow<'r, sqlx::any::AnyRow>,
    {
        // Not kept as a prepared statement: these queries change shape with every filter, and
        // PostgreSQL would plan a kept one once for all values ("generic plan"), blind to
        // whether `LIKE '%term%'` or a date range is selective. Planned per call instead.
        let mut query = sqlx::query_as::<_, T>(&self.text).persistent(false);
        for value in &self.values {
            query = match value {
                Value::Int(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.as_str()),
            };
        }
        query
    }
}

/// How a list is ordered for keyset pagination: by `column`, then by `id` to break ties, both
/// ascending or both descending.
struct Order {
    column: &'static str,
    id: &'static str,
    descending: bool,
    /// The cursor key is an integer (amounts), not text.
    numeric: bool,
}

impl Order {
    const fn new(column: &'static str, id: &'static str, descending: bool, numeric: bool) -> Self {
        Self {
            column,
            id,
            descending,
            numeric,
        }
    }
}

impl Sql {
    /// Appends "after `cursor`" (a `"<id>.<key>"` from [`split_page`]), the order and the limit
    /// of one page: `PAGE_SIZE` rows and one more, which tells whether another page follows.
    fn page(&mut self, order: &Order, after: Option<&str>) -> Result<&mut Self, AppError> {
        let (op, direction) = if order.descending {
            (" < ", " DESC")
        } else {
            (" > ", "")
        };
        if let Some(cursor) = after {
            let (id, key) = parse_cursor(cursor)?;
            let key = if order.numeric {
                Value::Int(key.parse().map_err(|_| AppError::BadRequest)?)
            } else {
                Value::from(key)
            };
            let Order {
                column,
                id: id_column,
                ..
            } = order;
            self.push(&format!(" AND ({column}{op}"))
                .bind(key.clone())
                .push(&format!(" OR ({column} = "))
                .bind(key)
                .push(&format!(" AND {id_column}{op}"))
                .bind(id)
                .push("))");
        }
        self.push(&format!(
            " ORDER BY {}{direction}, {}{direction} LIMIT ",
            order.column, order.id
        ))
        .bind(PAGE_SIZE as i64 + 1);
        Ok(self)
    }
}

/// Drops the extra row of a page fetched by [`Sql::page`] and returns the cursor of the last
/// row kept when more rows follow. `key` gives a row's id and sort key.
fn split_page<T>(rows: &mut Vec<T>, key: impl Fn(&T) -> (i64, String)) -> Option<String> {
    if rows.len() <= PAGE_SIZE {
        return None;
    }
    rows.truncate(PAGE_SIZE);
    rows.last().map(|row| {
        let (id, key) = key(row);
        format!("{id}.{key}")
    })
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

/// `%term%` for LIKE, with LIKE's own wildcards taken literally (used with `ESCAPE '\'`).
fn like_pattern(term: &str) -> String {
    let escaped = term
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// An FTS5 phrase query matching `term` anywhere in the text (on a trigram table), or `None`
/// when the term is too short to have a trigram.
fn trigram_phrase(term: &str) -> Option<String> {
    let term = term.trim().to_lowercase();
    (term.chars().count() >= 3).then(|| format!("\"{}\"", term.replace('"', "\"\"")))
}

/// Appends `SELECT <customer id> …` for the organization's customers whose name, company,
/// email or phone contains `term`: through the trigram index of each backend.
fn push_customer_matches(sql: &mut Sql, dialect: Dialect, org_id: i64, term: &str) {
    if let (Dialect::Sqlite, Some(phrase)) = (dialect, trigram_phrase(term)) {
        sql.push("SELECT m.id FROM customers m WHERE m.org_id = ")
            .bind(org_id)
            .push(" AND m.id IN (SELECT rowid FROM customer_search WHERE customer_search MATCH ")
            .bind(phrase)
            .push(")");
        return;
    }
    // PostgreSQL keeps the search text (and its trigram index) in its own table.
    sql.push(match dialect {
        Dialect::Sqlite => "SELECT m.id FROM customers m WHERE m.org_id = ",
        Dialect::Postgres => "SELECT m.customer_id FROM customer_search m WHERE m.org_id = ",
    })
    .bind(org_id)
    .push(" AND m.search_text LIKE ")
    .bind(like_pattern(term))
    .push(" ESCAPE '\\'");
}

/// Appends `SELECT <invoice id> …` for the organization's invoices whose number contains
/// `term`, or whose customer matches it.
fn push_invoice_matches(sql: &mut Sql, dialect: Dialect, org_id: i64, term: &str) {
    sql.push("SELECT j.id FROM invoices j WHERE j.org_id = ")
        .bind(org_id);
    match (dialect, trigram_phrase(term)) {
        (Dialect::Sqlite, Some(phrase)) => {
            sql.push(
                " AND j.id IN (SELECT rowid FROM invoice_number_search WHERE invoice_number_search MATCH ",
            )
            .bind(phrase)
            .push(")");
        }
        _ => {
            sql.push(" AND lower(j.number) LIKE ")
                .bind(like_pattern(term))
                .push(" ESCAPE '\\'");
        }
    }
    sql.push(" UNION SELECT k.id FROM invoices k WHERE k.org_id = ")
        .bind(org_id)
        .push(" AND k.customer_id IN (");
    push_customer_matches(sql, dialect, org_id, term);
    sql.push(")");
}

/// A search matching at most this many rows is run once and its rows then read by id.
const MATCHES_BY_ID: usize = 2_000;

/// What a list's search matched.
enum Matches {
    /// No search.
    All,
    /// The ids of every match (a few): the page (and its totals) read these rows by key
    /// rather than search again, and sorting them costs nothing.
    Ids(Vec<i64>),
    /// Too many to list: the search stays a subquery, and the planner walks the sort order
    /// (dense matches fill a page quickly).
    Broad,
}

impl Matches {
    /// Runs the search that `matches` appends (a `SELECT <id> …`), keeping the ids when there
    /// are few. Searching once this way costs the same for any term, where the planner,
    /// guessing how many rows match, would sometimes walk a whole sort index for a page.
    async fn find(db: &Db, matches: impl FnOnce(&mut Sql)) -> Result<Self, AppError> {
        let mut sql = Sql::default();
        sql.push("SELECT * FROM (");
        matches(&mut sql);
        sql.push(") AS matched LIMIT ")
            .bind(MATCHES_BY_ID as i64 + 1);
        let ids: Vec<(i64,)> = sql.query_as().fetch_all(db.pool()).await?;
        Ok(if ids.len() > MATCHES_BY_ID {
            Self::Broad
        } else {
            Self::Ids(ids.into_iter().map(|(id,)| id).collect())
        })
    }

    /// Appends ` AND <column> IN (…)` for the matches (nothing when there is no search).
    fn push(&self, sql: &mut Sql, column: &str, matches: impl FnOnce(&mut Sql)) {
        match self {
            Self::All => {}
            Self::Ids(ids) if ids.is_empty() => {
                sql.push(" AND 1 = 0");
            }
            Self::Ids(ids) => {
                sql.push(&format!(" AND {column} IN ("));
                for (n, id) in ids.iter().enumerate() {
                    if n > 0 {
                        sql.push(", ");
                    }
                    sql.bind(*id);
                }
                sql.push(")");
            }
            Self::Broad => {
                sql.push(&format!(" AND {column} IN ("));
                matches(sql);
                sql.push(")");
            }
        }
    }
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Today in the organization's time zone.
pub async fn org_today(db: &Db, org_id: i64) -> Result<NaiveDate, AppError> {
    let zone: String = sqlx::query_scalar("SELECT timezone FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
    Ok(chrono::Utc::now().with_timezone(&tz).date_naive())
}

fn days_between(earlier: &str, today: NaiveDate) -> Option<i64> {
    let due = NaiveDate::parse_from_str(earlier, "%Y-%m-%d").ok()?;
    Some((today - due).num_days())
}

fn money(minor: i64, currency: &str) -> Money {
    Money::new(
        minor,
        Currency::parse(currency).unwrap_or_else(|_| Currency::unknown()),
    )
}

/// Splits a cursor `"<id>.<key>"`.
fn parse_cursor(cursor: &str) -> Result<(i64, &str), AppError> {
    let (id, key) = cursor.split_once('.').ok_or(AppError::BadRequest)?;
    Ok((id.parse().map_err(|_| AppError::BadRequest)?, key))
}

/// The columns of [`CustomerRecordRow`].
const CUSTOMER_COLUMNS: &str = "id, display_name, sort_name, company_name, email, billing_country, \
     currency, outstanding_minor, open_invoices, oldest_open_due, phone_status, best_phone_e164, \
     best_phone_reason, opted_out";

#[derive(FromRow)]
struct CustomerRecordRow {
    id: i64,
    display_name: String,
    sort_name: String,
    company_name: String,
    email: String,
    billing_country: String,
    currency: String,
    outstanding_minor: i64,
    open_invoices: i64,
    oldest_open_due: String,
    phone_status: String,
    best_phone_e164: String,
    best_phone_reason: String,
    opted_out: i64,
}

/// One page of customers.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn list_customers(
    db: &Db,
    member: Member,
    filter: &CustomerFilter,
) -> Result<CustomerPage, AppError> {
    let today = org_today(db, member.org_id).await?;
    let search = |sql: &mut Sql| push_customer_matches(sql, db.dialect(), member.org_id, &filter.q);
    let matches = if filter.q.trim().is_empty() {
        Matches::All
    } else {
        Matches::find(db, search).await?
    };
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE org_id = "
    ))
    .bind(member.org_id);
    matches.push(&mut sql, "id", search);
    if filter.overdue_only {
        sql.push(" AND oldest_open_due < ").bind(date(today));
    }
    if !filter.country.is_empty() {
        sql.push(" AND billing_country = ")
            .bind(filter.country.to_ascii_uppercase());
    }
    if let Some(phone) = filter.phone {
        sql.push(" AND phone_status = ").bind(phone.as_str());
    }
    let order = match filter.sort {
        CustomerSort::Name => Order::new("sort_name", "id", false, false),
        CustomerSort::Outstanding => Order::new("outstanding_minor", "id", true, true),
        CustomerSort::OldestOverdue => Order::new("oldest_open_due", "id", false, false),
    };
    sql.page(&order, filter.after.as_deref())?;
    let mut rows: Vec<CustomerRecordRow> = sql.query_as().fetch_all(db.pool()).await?;
    let next = split_page(&mut rows, |r| {
        let key = match filter.sort {
            CustomerSort::Name => r.sort_name.clone(),
            CustomerSort::Outstanding => r.outstanding_minor.to_string(),
            CustomerSort::OldestOverdue => r.oldest_open_due.clone(),
        };
        (r.id, key)
    });
    // The distinct countries, found by skipping through the (org, country) index one country
    // at a time rather than reading every customer.
    let countries = sqlx::query_scalar::<_, String>(
        "WITH RECURSIVE found (country) AS ( \
           SELECT MIN(billing_country) FROM customers WHERE org_id = $1 AND billing_country > '' \
           UNION ALL \
           SELECT (SELECT MIN(billing_country) FROM customers WHERE org_id = $1 AND billing_country > found.country) \
           FROM found WHERE found.country IS NOT NULL) \
         SELECT country FROM found WHERE country IS NOT NULL ORDER BY country",
    )
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?;
    Ok(CustomerPage {
        rows: rows.into_iter().map(|r| customer_row(r, today)).collect(),
        next,
        countries,
    })
}

fn customer_row(r: CustomerRecordRow, today: NaiveDate) -> CustomerRow {
    let oldest_overdue_days = if r.oldest_open_due == NO_OPEN_DUE {
        None
    } else {
        days_between(&r.oldest_open_due, today).filter(|d| *d > 0)
    };
    CustomerRow {
        id: r.id,
        display_name: r.display_name,
        company_name: r.company_name,
        email: r.email,
        country: r.billing_country,
        outstanding: money(r.outstanding_minor, &r.currency),
        open_invoices: r.open_invoices,
        oldest_overdue_days,
        phone_status: PhoneStatus::parse(&r.phone_status).unwrap_or(PhoneStatus::Missing),
        best_phone: r.best_phone_e164,
        best_phone_reason: r.best_phone_reason,
        opted_out: r.opted_out != 0,
    }
}

/// The columns of [`InvoiceRecordRow`], read from [`INVOICE_FROM`].
const INVOICE_COLUMNS: &str = "i.id, i.number, i.customer_id, c.display_name AS customer_name, \
     i.status, i.issue_date, i.due_date, i.currency, i.total_minor, i.balance_minor, \
     i.payment_expected_date";
const INVOICE_FROM: &str =
    "FROM invoices i JOIN customers c ON c.id = i.customer_id AND c.org_id = i.org_id";

#[derive(FromRow)]
struct InvoiceRecordRow {
    id: i64,
    number: String,
    customer_id: i64,
    customer_name: String,
    status: String,
    issue_date: String,
    due_date: String,
    currency: String,
    total_minor: i64,
    balance_minor: i64,
    payment_expected_date: String,
}

/// What an invoice filter's conditions are written against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    /// `invoices i`.
    Invoices,
    /// `invoice_rollups r`: only for filters [`answerable_by_rollups`].
    Rollups,
}

/// Whether the totals of `filter` can be summed from `invoice_rollups` (which knows each
/// invoice's currency, status, due date and openness, but not its number, customer or amount).
fn answerable_by_rollups(filter: &InvoiceFilter) -> bool {
    filter.q.trim().is_empty()
        && filter.min_balance.trim().is_empty()
        && filter.max_balance.trim().is_empty()
        && filter.customer_id.is_none()
}

/// Appends the invoice filter's conditions (shared by the page, its totals and the rollups).
fn invoice_conditions(
    sql: &mut Sql,
    dialect: Dialect,
    member: Member,
    filter: &InvoiceFilter,
    matches: &Matches,
    today: NaiveDate,
    table: Table,
) -> Result<(), AppError> {
    let (a, open) = match table {
        Table::Invoices => ("i", OPEN),
        Table::Rollups => ("r", "r.is_open = 1"),
    };
    sql.push(&format!(" WHERE {a}.org_id = "))
        .bind(member.org_id);
    if table == Table::Invoices {
        // By number, or by anything the customer search knows (name, email, phone).
        matches.push(sql, "i.id", |sql| {
            push_invoice_matches(sql, dialect, member.org_id, &filter.q)
        });
    }
    if let Some(status) = filter.status {
        sql.push(&format!(" AND {a}.status = "))
            .bind(status.as_str());
    }
    if let Some(bucket) = filter.bucket {
        sql.push(" AND ").push(open);
        let (from_days, to_days) = bucket.days();
        // d days overdue means due = today - d: more days, earlier due date.
        if let Some(from) = from_days {
            sql.push(&format!(" AND {a}.due_date <= "))
                .bind(date(today - Duration::days(from)));
        }
        if let Some(to) = to_days {
            sql.push(&format!(" AND {a}.due_date >= "))
                .bind(date(today - Duration::days(to)));
        }
    }
    for (bound, op, field) in [
        (&filter.due_from, " >= ", "due_from"),
        (&filter.due_to, " <= ", "due_to"),
    ] {
        if !bound.is_empty() {
            let day = NaiveDate::parse_from_str(bound, "%Y-%m-%d")
                .map_err(|_| AppError::invalid(field, "Use a date like 2026-01-31."))?;
            sql.push(&format!(" AND {a}.due_date"))
                .push(op)
                .bind(date(day));
        }
    }
    if !filter.currency.is_empty() {
        let currency =
            Currency::parse(&filter.currency).map_err(|m| AppError::invalid("currency", m))?;
        sql.push(&format!(" AND {a}.currency = "))
            .bind(currency.code().to_owned());
    }
    if table == Table::Rollups {
        return Ok(());
    }
    let amount_currency = Currency::parse(if filter.currency.is_empty() {
        "USD"
    } else {
        &filter.currency
    })
    .map_err(|m| AppError::invalid("currency", m))?;
    for (bound, op, field) in [
        (&filter.min_balance, " >= ", "min_balance"),
        (&filter.max_balance, " <= ", "max_balance"),
    ] {
        if !bound.trim().is_empty() {
            let minor =
                parse_amount(bound, &amount_currency).map_err(|m| AppError::invalid(field, m))?;
            sql.push(" AND i.balance_minor").push(op).bind(minor);
        }
    }
    if let Some(customer_id) = filter.customer_id {
        sql.push(" AND i.customer_id = ").bind(customer_id);
    }
    Ok(())
}

/// One page of invoices, with the totals of everything the filter matches.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn list_invoices(
    db: &Db,
    member: Member,
    filter: &InvoiceFilter,
) -> Result<InvoicePage, AppError> {
    let today = org_today(db, member.org_id).await?;
    let matches = if filter.q.trim().is_empty() {
        Matches::All
    } else {
        Matches::find(db, |sql| {
            push_invoice_matches(sql, db.dialect(), member.org_id, &filter.q)
        })
        .await?
    };
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {INVOICE_COLUMNS} {INVOICE_FROM}"));
    invoice_conditions(
        &mut sql,
        db.dialect(),
        member,
        filter,
        &matches,
        today,
        Table::Invoices,
    )?;
    let order = match filter.sort {
        InvoiceSort::DueDate => Order::new("i.due_date", "i.id", true, false),
        InvoiceSort::Balance => Order::new("i.balance_minor", "i.id", true, true),
        InvoiceSort::DaysOverdue => Order::new("i.due_date", "i.id", false, false),
    };
    sql.page(&order, filter.after.as_deref())?;
    let mut rows: Vec<InvoiceRecordRow> = sql.query_as().fetch_all(db.pool()).await?;
    let next = split_page(&mut rows, |r| {
        let key = match filter.sort {
            InvoiceSort::DueDate | InvoiceSort::DaysOverdue => r.due_date.clone(),
            InvoiceSort::Balance => r.balance_minor.to_string(),
        };
        (r.id, key)
    });

    // Totals of the whole filter: from the rollups when they can answer (a few thousand rows
    // instead of every invoice), else from the matching invoices themselves.
    let mut totals_sql = Sql::default();
    if answerable_by_rollups(filter) {
        totals_sql.push(
            "SELECT r.currency, CAST(SUM(r.balance_minor) AS BIGINT), CAST(SUM(r.invoice_count) AS BIGINT) \
             FROM invoice_rollups r",
        );
        invoice_conditions(
            &mut totals_sql,
            db.dialect(),
            member,
            filter,
            &matches,
            today,
            Table::Rollups,
        )?;
        totals_sql.push(" GROUP BY r.currency HAVING SUM(r.invoice_count) > 0 ORDER BY r.currency");
    } else {
        totals_sql.push(
            "SELECT i.currency, CAST(SUM(i.balance_minor) AS BIGINT), COUNT(*) FROM invoices i",
        );
        invoice_conditions(
            &mut totals_sql,
            db.dialect(),
            member,
            filter,
            &matches,
            today,
            Table::Invoices,
        )?;
        totals_sql.push(" GROUP BY i.currency ORDER BY i.currency");
    }
    let totals = totals_sql
        .query_as::<(String, i64, i64)>()
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .map(|(currency, balance, count)| CurrencyTotal {
            balance: money(balance, &currency),
            count,
        })
        .collect();
    let currencies = sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT currency FROM invoice_rollups WHERE org_id = $1 ORDER BY currency",
    )
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?;
    Ok(InvoicePage {
        rows: rows.into_iter().map(|r| invoice_row(r, today)).collect(),
        next,
        totals,
        currencies,
    })
}

fn invoice_row(r: InvoiceRecordRow, today: NaiveDate) -> InvoiceRow {
    let status = InvoiceStatus::parse(&r.status).unwrap_or(InvoiceStatus::Sent);
    let days_overdue = (status.is_open() && r.balance_minor > 0)
        .then(|| days_between(&r.due_date, today))
        .flatten()
        .filter(|d| *d > 0);
    InvoiceRow {
        id: r.id,
        number: r.number,
        customer_id: r.customer_id,
        customer_name: r.customer_name,
        status,
        issue_date: r.issue_date,
        due_date: r.due_date,
        days_overdue,
        total: money(r.total_minor, &r.currency),
        balance: money(r.balance_minor, &r.currency),
        payment_expected_date: r.payment_expected_date,
    }
}

/// The dashboard's figures.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn dashboard(db: &Db, member: Member) -> Result<DashboardData, AppError> {
    let today = org_today(db, member.org_id).await?;
    let ago = |days: i64| date(today - Duration::days(days));
    let mut sql = Sql::default();
    // Bucket the open-invoice rollups by due date: on or after today is current; then 1–30,
    // 31–60, 61–90, 90+ days late.
    sql.push("SELECT i.currency, CASE WHEN i.due_date >= ")
        .bind(date(today));
    sql.push(" THEN 0 WHEN i.due_date >= ").bind(ago(30));
    sql.push(" THEN 1 WHEN i.due_date >= ").bind(ago(60));
    sql.push(" THEN 2 WHEN i.due_date >= ").bind(ago(90));
    sql.push(
        " THEN 3 ELSE 4 END AS bucket, CAST(SUM(i.balance_minor) AS BIGINT), CAST(SUM(i.invoice_count) AS BIGINT) \
         FROM invoice_rollups i WHERE i.org_id = ",
    )
    .bind(member.org_id)
    .push(" AND i.is_open = 1 GROUP BY i.currency, bucket ORDER BY i.currency, bucket");
    let rows: Vec<(String, i64, i64, i64)> = sql.query_as().fetch_all(db.pool()).await?;
    let default_currency: String =
        sqlx::query_scalar("SELECT default_currency FROM organizations WHERE id = $1")
            .bind(member.org_id)
            .fetch_one(db.pool())
            .await?;

    let mut currencies: Vec<CurrencySummary> = Vec::new();
    for (currency, bucket, amount, count) in rows {
        let position = match currencies
            .iter()
            .position(|c| c.receivable.currency.code() == currency)
        {
            Some(position) => position,
            None => {
                currencies.push(CurrencySummary {
                    receivable: money(0, &currency),
                    overdue: money(0, &currency),
                    overdue_count: 0,
                    aging: AgingBucket::ALL
                        .into_iter()
                        .map(|bucket| AgingAmount {
                            bucket,
                            amount: money(0, &currency),
                            count: 0,
                        })
                        .collect(),
                });
                currencies.len() - 1
            }
        };
        let summary = &mut currencies[position];
        let index = usize::try_from(bucket).unwrap_or(0).min(4);
        summary.aging[index].amount.minor += amount;
        summary.aging[index].count += count;
        summary.receivable.minor += amount;
        if index > 0 {
            summary.overdue.minor += amount;
            summary.overdue_count += count;
        }
    }
    currencies.sort_by_key(|c| {
        (
            c.receivable.currency.code() != default_currency,
            std::cmp::Reverse(c.receivable.minor),
        )
    });
    let overdue_invoices = currencies.iter().map(|c| c.overdue_count).sum();

    // Grouped from the open-invoices index alone; only the ten winners are joined for names.
    let mut top = Sql::default();
    top.push(
        "SELECT c.id, c.display_name, t.currency, t.overdue, t.oldest FROM \
         (SELECT i.customer_id, i.currency, CAST(SUM(i.balance_minor) AS BIGINT) AS overdue, \
            MIN(i.due_date) AS oldest FROM invoices i WHERE i.org_id = ",
    )
    .bind(member.org_id)
    .push(" AND ")
    .push(OPEN)
    .push(" AND i.due_date < ")
    .bind(date(today))
    .push(
        " GROUP BY i.customer_id, i.currency ORDER BY overdue DESC, i.customer_id LIMIT 10) t \
         JOIN customers c ON c.id = t.customer_id AND c.org_id = ",
    )
    .bind(member.org_id)
    .push(" ORDER BY t.overdue DESC, c.id");
    let top_overdue = top
        .query_as::<(i64, String, String, i64, String)>()
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .map(|(id, name, currency, overdue, oldest)| OverdueCustomer {
            id,
            name,
            overdue: money(overdue, &currency),
            oldest_days: days_between(&oldest, today).unwrap_or(0),
        })
        .collect();
    let customers =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM customers WHERE org_id = $1")
            .bind(member.org_id)
            .fetch_one(db.pool())
            .await?;
    Ok(DashboardData {
        currencies,
        overdue_invoices,
        top_overdue,
        customers,
        today: date(today),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern(" 50%_Off "), "%50\\%\\_off%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn cursors_carry_id_and_key() {
        assert_eq!(parse_cursor("42.acme. ltd").unwrap(), (42, "acme. ltd"));
        assert!(parse_cursor("x.1").is_err());
        assert!(parse_cursor("nodot").is_err());
    }
}

#[derive(FromRow)]
struct CustomerDetailRow {
    #[sqlx(flatten)]
    row: CustomerRecordRow,
    #[sqlx(flatten)]
    extra: CustomerExtra,
}

#[derive(FromRow)]
struct CustomerExtra {
    status: String,
    source: String,
    external_id: String,
    billing_street: String,
    billing_city: String,
    billing_state: String,
    billing_postcode: String,
    timezone: String,
    notes: String,
}

#[derive(FromRow)]
struct ContactRow {
    name: String,
    email: String,
    is_primary: i64,
    phone_raw: String,
    phone_e164: String,
    phone_error: String,
    mobile_raw: String,
    mobile_e164: String,
    mobile_error: String,
}

/// One customer with contacts, address and unpaid invoices; `NotFound` outside the organization.
#[instrument(skip_all, fields(org_id = member.org_id, customer_id = id))]
pub async fn customer_detail(db: &Db, member: Member, id: i64) -> Result<CustomerDetail, AppError> {
    let today = org_today(db, member.org_id).await?;
    let CustomerDetailRow { row, extra } = sqlx::query_as(&format!(
        "SELECT {CUSTOMER_COLUMNS}, status, source, external_id, billing_street, billing_city, \
         billing_state, billing_postcode, timezone, notes FROM customers WHERE org_id = $1 AND id = $2"
    ))
    .bind(member.org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(AppError::NotFound)?;
    let contacts: Vec<ContactRow> = sqlx::query_as(
        "SELECT name, email, is_primary, phone_raw, phone_e164, phone_error, mobile_raw, mobile_e164, mobile_error \
         FROM contact_persons WHERE org_id = $1 AND customer_id = $2 ORDER BY is_primary DESC, position",
    )
    .bind(member.org_id)
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let open_invoices: Vec<InvoiceRecordRow> = sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} {INVOICE_FROM} \
         WHERE i.org_id = $1 AND i.customer_id = $2 AND {OPEN} ORDER BY i.due_date, i.id"
    ))
    .bind(member.org_id)
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let country = row.billing_country.clone();
    let mut address: Vec<String> = [
        extra.billing_street,
        extra.billing_city,
        [extra.billing_state, extra.billing_postcode]
            .join(" ")
            .trim()
            .to_owned(),
        country,
    ]
    .into_iter()
    .filter(|line| !line.trim().is_empty())
    .collect();
    address.dedup();
    Ok(CustomerDetail {
        row: customer_row(row, today),
        active: extra.status == "active",
        source: extra.source,
        external_id: extra.external_id,
        address,
        timezone: extra.timezone,
        notes: extra.notes,
        contacts: contacts
            .into_iter()
            .map(|c| ContactView {
                name: c.name,
                email: c.email,
                is_primary: c.is_primary != 0,
                phone_raw: c.phone_raw,
                phone_e164: c.phone_e164,
                phone_error: c.phone_error,
                mobile_raw: c.mobile_raw,
                mobile_e164: c.mobile_e164,
                mobile_error: c.mobile_error,
            })
            .collect(),
        open_invoices: open_invoices
            .into_iter()
            .map(|r| invoice_row(r, today))
            .collect(),
    })
}

#[derive(FromRow)]
struct InvoiceDetailRow {
    #[sqlx(flatten)]
    row: InvoiceRecordRow,
    #[sqlx(flatten)]
    extra: InvoiceExtra,
}

#[derive(FromRow)]
struct InvoiceExtra {
    source: String,
    external_id: String,
    best_phone_e164: String,
    best_phone_reason: String,
}

/// One invoice; `NotFound` outside the organization.
#[instrument(skip_all, fields(org_id = member.org_id, invoice_id = id))]
pub async fn invoice_detail(db: &Db, member: Member, id: i64) -> Result<InvoiceDetail, AppError> {
    let today = org_today(db, member.org_id).await?;
    let InvoiceDetailRow { row, extra } = sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS}, i.source, i.external_id, c.best_phone_e164, c.best_phone_reason \
         {INVOICE_FROM} WHERE i.org_id = $1 AND i.id = $2"
    ))
    .bind(member.org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(AppError::NotFound)?;
    let row = invoice_row(row, today);
    let paid = Money::new(
        row.total.minor - row.balance.minor,
        row.total.currency.clone(),
    );
    Ok(InvoiceDetail {
        row,
        source: extra.source,
        external_id: extra.external_id,
        customer_phone: extra.best_phone_e164,
        customer_phone_reason: extra.best_phone_reason,
        paid,
    })
}
