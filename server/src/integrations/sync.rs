//! The sync engines of one connection: contacts → customers (and contact persons), then
//! invoices, then the full customer records still owed.
//!
//! Each page is applied in one transaction together with the pass's position (next page and
//! newest modification time seen), so a crash loses at most the page in flight, which the next
//! run fetches again. A watermark advances only when a whole pass has been committed:
//!
//! - contacts: Books has no modification filter for contacts, so the pass reads them newest
//!   first and stops at the first one older than the watermark;
//! - invoices: the pass asks for invoices modified after the watermark (less one second:
//!   Zoho's times have whole seconds, and an edit in the watermark's own second must not be
//!   missed), sorted by creation so pages stay put while Zoho adds invoices; a resumed pass
//!   starts one page early in case deletions shifted the pages.
//!
//! Books reports no deletions. Once a day (`Settings::reconcile_every`) a run also lists the
//! invoices Books counts as unpaid: an invoice open here but not in that list was settled or
//! deleted since; it is fetched, and removed here when Books no longer has it.
//!
//! Contact list rows lack contact persons and addresses. Customers who owe money get their full
//! record from `GET /contacts/{id}`, queued in `sync_contact_details` and fetched within a
//! per-run budget, largest balances first, so a first sync of a big book fits Zoho's quota.

use std::collections::{BTreeSet, HashMap, HashSet};

use app::db::time::now_millis;
use app::db::{Db, Tx, numbered};
use app::error::AppError;
use app::receivables::model::{Currency, ImportSummary, UpsertCounts};
use app::receivables::upsert::{self, CustomerRecord, InvoiceRecord};
use chrono::{TimeZone, Utc};
use futures_util::future::join_all;

use super::Zoho;
use super::store::{self, Connection, PROVIDER, SOURCE};
use super::tokens::ConnectionTokens;
use super::zoho::api::{BooksApi, ZohoError};
use super::zoho::wire::{ContactDetail, ContactRow, InvoiceRow, format_time};

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedBy {
    Connect,
    Schedule,
    Manual,
    Push,
}

impl StartedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Push => "push",
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: i64,
    pub customers: UpsertCounts,
    pub invoices: UpsertCounts,
    pub pages: i64,
    pub api_calls: u64,
    /// Customers whose full record is still to be fetched (budget spent).
    pub details_pending: i64,
    /// Invoices removed here because Books no longer has them.
    pub invoices_deleted: u64,
    /// Invoices Zoho sent that could not be stored, with the reason.
    pub skipped: Vec<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Finished(RunReport),
    /// Another worker holds the connection's sync lease.
    Busy,
    /// The connection is not ready (no Books organization chosen, paused, or gone).
    NotReady,
    Failed {
        run_id: i64,
        error: ZohoError,
    },
}

/// Why a run stopped early.
#[derive(Debug)]
enum Stop {
    Zoho(ZohoError),
    App(AppError),
}

impl From<ZohoError> for Stop {
    fn from(err: ZohoError) -> Self {
        Self::Zoho(err)
    }
}

impl From<AppError> for Stop {
    fn from(err: AppError) -> Self {
        Self::App(err)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(err: sqlx::Error) -> Self {
        Self::App(err.into())
    }
}

/// One run in progress.
struct Run<'a> {
    zoho: &'a Zoho,
    db: &'a Db,
    connection: Connection,
    api: BooksApi<ConnectionTokens>,
    currency: Currency,
    report: RunReport,
    lease_owner: String,
    /// Rows written when the planner's statistics were last refreshed.
    analyzed_at: u64,
}

/// How fresh the last sync must be for the pre-call check to trust the stored invoice.
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Before a call: when the organization's Books connection last synced longer ago than
/// [`FRESH_FOR`], fetches the invoice from Books and stores it (a payment since then settles
/// it, and the check then says so). Invoices from elsewhere, and fresh syncs, need nothing.
/// Returns whether the invoice was fetched.
pub async fn refresh_invoice(zoho: &Zoho, org_id: i64, invoice_id: i64) -> Result<bool, ZohoError> {
    let db = &zoho.db;
    let app = |e: AppError| {
        ZohoError::Unavailable(format!("Duecall could not read or store the invoice: {e}"))
    };
    let connection = store::connection(db, org_id).await.map_err(app)?;
    let Some(connection) = connection.filter(|c| c.status == "connected") else {
        return Ok(false);
    };
    let fresh_since = now_millis() - FRESH_FOR.as_millis() as i64;
    if connection
        .last_success_at
        .is_some_and(|at| at >= fresh_since)
    {
        return Ok(false);
    }
    let external: Option<String> = sqlx::query_scalar(
        "SELECT external_id FROM invoices WHERE id = $1 AND org_id = $2 AND source = $3",
    )
    .bind(invoice_id)
    .bind(org_id)
    .bind(SOURCE)
    .fetch_optional(db.pool())
    .await
    .map_err(|e| app(e.into()))?;
    let Some(external) = external else {
        return Ok(false);
    };
    let currency: String =
        sqlx::query_scalar("SELECT default_currency FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(db.pool())
            .await
            .map_err(|e| app(e.into()))?;
    let mut run = Run {
        zoho,
        db,
        api: zoho.api(&connection),
        currency: Currency::parse(&currency).unwrap_or_else(|_| Currency::unknown()),
        report: RunReport::default(),
        lease_owner: String::new(),
        connection,
        analyzed_at: 0,
    };
    let stop = |stop: Stop| match stop {
        Stop::Zoho(err) => err,
        Stop::App(err) => app(err),
    };
    let mut tx = db.begin().await.map_err(|e| app(e.into()))?;
    match run.api.invoice(&external).await {
        Ok(row) => run.apply_invoices(&mut tx, &[row]).await.map_err(stop)?,
        Err(ZohoError::NotFound) => {
            let deleted = upsert::delete_invoices(&mut tx, org_id, SOURCE, &[external.as_str()])
                .await
                .map_err(app)?;
            if !deleted.is_empty() {
                zoho.settled(org_id, deleted);
            }
        }
        Err(err) => return Err(err),
    }
    tx.commit().await.map_err(|e| app(e.into()))?;
    Ok(true)
}

impl Run<'_> {
    fn org_id(&self) -> i64 {
        self.connection.org_id
    }

    /// Writes the run's figures and extends the lease (inside the page's transaction, so the
    /// progress shown is exactly what is committed).
    async fn progress(&self, tx: &mut Tx<'_>, phase: &str) -> Result<(), Stop> {
        let now = now_millis();
        let r = &self.report;
        sqlx::query(
            "UPDATE sync_runs SET phase = $2, pages = $3, api_calls = $4, customers_new = $5, \
               customers_updated = $6, invoices_new = $7, invoices_updated = $8, heartbeat_at = $9 \
             WHERE id = $1",
        )
        .bind(r.run_id)
        .bind(phase)
        .bind(r.pages)
        .bind(self.api.calls() as i64)
        .bind(r.customers.new as i64)
        .bind(r.customers.updated as i64)
        .bind(r.invoices.new as i64)
        .bind(r.invoices.updated as i64)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE integration_connections SET sync_lease_until = $3 \
             WHERE id = $1 AND sync_lease_owner = $2",
        )
        .bind(self.connection.id)
        .bind(&self.lease_owner)
        .bind(now + self.zoho.settings.lease.as_millis() as i64)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// On PostgreSQL, refreshes the planner's statistics whenever the rows this run wrote have
    /// doubled since the last time (at least 2,000): a first sync grows the tables from
    /// nothing, and plans made for an empty table scan the growing one on every page (2.5× the
    /// time of a 50,000-invoice first sync). SQLite's plans do not depend on them this way.
    async fn keep_statistics_fresh(&mut self) -> Result<(), Stop> {
        if self.db.dialect() != app::db::Dialect::Postgres {
            return Ok(());
        }
        let r = &self.report;
        let written = r.customers.new + r.customers.updated + r.invoices.new + r.invoices.updated;
        if written >= 2_000 && written >= 2 * self.analyzed_at {
            self.db
                .refresh_statistics(&[
                    "customers",
                    "contact_persons",
                    "invoices",
                    "invoice_rollups",
                ])
                .await?;
            self.analyzed_at = written;
        }
        Ok(())
    }

    fn add(total: &mut UpsertCounts, counts: UpsertCounts) {
        total.new += counts.new;
        total.updated += counts.updated;
        total.unchanged += counts.unchanged;
    }

    /// `external_id → source_updated_at` of this source's customers among `ids`.
    async fn known_customers(
        &self,
        tx: &mut Tx<'_>,
        ids: &[&str],
    ) -> Result<HashMap<String, Option<i64>>, Stop> {
        let mut known = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT external_id, source_updated_at FROM customers \
                 WHERE org_id = $1 AND source = $2 AND external_id IN ({})",
                numbered(3, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, Option<i64>)>(&sql)
                .bind(self.org_id())
                .bind(SOURCE);
            for id in chunk {
                query = query.bind(*id);
            }
            known.extend(query.fetch_all(&mut **tx).await?);
        }
        Ok(known)
    }

    /// Queues customers for a full-record fetch (`priority`: larger first).
    async fn want_details(&self, tx: &mut Tx<'_>, wanted: &[(String, i64)]) -> Result<(), Stop> {
        let now = now_millis();
        for (external_id, priority) in wanted {
            sqlx::query(
                "INSERT INTO sync_contact_details (org_id, provider, external_id, priority, wanted_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (org_id, provider, external_id) DO UPDATE SET \
                   priority = excluded.priority, \
                   wanted_at = COALESCE(sync_contact_details.wanted_at, excluded.wanted_at)",
            )
            .bind(self.org_id())
            .bind(PROVIDER)
            .bind(external_id)
            .bind(*priority)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Applies one page of contact rows: new customers are stored from the row at once
    /// (invoices may name them); customers who owe money, and any already stored in full, are
    /// queued for their full record.
    async fn apply_contacts(&mut self, tx: &mut Tx<'_>, rows: &[ContactRow]) -> Result<(), Stop> {
        let ids: Vec<&str> = rows.iter().map(|r| r.contact_id.as_str()).collect();
        let known = self.known_customers(tx, &ids).await?;
        let mut records: Vec<CustomerRecord> = Vec::new();
        let mut wanted = Vec::new();
        for row in rows {
            let modified = row.modified().map(|t| t.timestamp_millis());
            match known.get(&row.contact_id) {
                // Stored at this version or later: nothing new.
                Some(Some(stored)) if modified.is_some_and(|m| m <= *stored) => continue,
                Some(_) => wanted.push((row.contact_id.clone(), outstanding_priority(row))),
                None => {
                    records.push(row.to_record(&self.currency));
                    if row.owes() {
                        wanted.push((row.contact_id.clone(), outstanding_priority(row)));
                    }
                }
            }
        }
        if !records.is_empty() {
            let counts = upsert::upsert_customers(tx, self.org_id(), SOURCE, &records).await?;
            Self::add(&mut self.report.customers, counts);
        }
        self.want_details(tx, &wanted).await?;
        Ok(())
    }

    async fn contacts_pass(&mut self) -> Result<(), Stop> {
        let watermark = self.connection.contacts_watermark;
        let mut high = self.connection.contacts_pass_high;
        let mut page = u32::try_from(self.connection.contacts_pass_page.max(1)).unwrap_or(1);
        loop {
            let (rows, context) = self.api.contacts_page(page).await?;
            let mut done = !context.has_more_page;
            let mut fresh = Vec::with_capacity(rows.len());
            for row in rows {
                let modified = row.modified().map(|t| t.timestamp());
                // Older than the watermark: everything from here on was stored by an earlier
                // pass (rows of the watermark's own second are looked at again).
                if let (Some(mark), Some(m)) = (watermark, modified)
                    && m < mark
                {
                    done = true;
                    break;
                }
                high = high.max(modified);
                fresh.push(row);
            }
            let mut tx = self.db.begin().await?;
            self.apply_contacts(&mut tx, &fresh).await?;
            self.end_page(tx, "contacts", page, done, high, watermark)
                .await?;
            if done {
                return Ok(());
            }
            page += 1;
        }
    }

    /// Ends a page of a pass (`contacts` or `invoices`) in the page's transaction: the pass's
    /// position (next page, newest modification seen) or, after the last page, the new
    /// watermark; the run's progress. Then commits.
    async fn end_page(
        &mut self,
        mut tx: Tx<'_>,
        pass: &'static str,
        page: u32,
        done: bool,
        high: Option<i64>,
        watermark: Option<i64>,
    ) -> Result<(), Stop> {
        self.report.pages += 1;
        let (next_page, pass_high, new_watermark) = if done {
            (0, None, high.or(watermark))
        } else {
            (i64::from(page) + 1, high, watermark)
        };
        sqlx::query(&format!(
            "UPDATE integration_connections SET {pass}_pass_page = $2, {pass}_pass_high = $3, \
               {pass}_watermark = $4 WHERE id = $1"
        ))
        .bind(self.connection.id)
        .bind(next_page)
        .bind(pass_high)
        .bind(new_watermark)
        .execute(&mut *tx)
        .await?;
        self.progress(&mut tx, pass).await?;
        tx.commit().await?;
        self.keep_statistics_fresh().await
    }

    /// Fetches queued full records, within the run's budget.
    async fn details_pass(&mut self) -> Result<(), Stop> {
        let mut budget = self.zoho.settings.detail_calls_per_run;
        while budget > 0 {
            let batch: Vec<String> = sqlx::query_scalar(
                "SELECT external_id FROM sync_contact_details \
                 WHERE org_id = $1 AND provider = $2 AND wanted_at IS NOT NULL \
                 ORDER BY priority DESC, external_id LIMIT $3",
            )
            .bind(self.org_id())
            .bind(PROVIDER)
            .bind(budget.min(50) as i64)
            .fetch_all(self.db.pool())
            .await?;
            if batch.is_empty() {
                break;
            }
            budget = budget.saturating_sub(batch.len());
            let fetched = self.fetch_details(&batch).await;
            let mut records = Vec::new();
            let mut done = Vec::new();
            let mut failure = None;
            for (id, result) in batch.iter().zip(fetched) {
                match result {
                    Ok(detail) => {
                        records.push(detail.to_record(&self.currency));
                        done.push(id.clone());
                    }
                    // Deleted in Books since it was listed.
                    Err(ZohoError::NotFound) => done.push(id.clone()),
                    Err(err) => {
                        failure.get_or_insert(err);
                    }
                }
            }
            let mut tx = self.db.begin().await?;
            if !records.is_empty() {
                let counts =
                    upsert::upsert_customers(&mut tx, self.org_id(), SOURCE, &records).await?;
                Self::add(&mut self.report.customers, counts);
            }
            self.details_fetched(&mut tx, &done).await?;
            self.progress(&mut tx, "details").await?;
            tx.commit().await?;
            if let Some(err) = failure {
                return Err(err.into());
            }
        }
        Ok(())
    }

    /// Full records of `ids`, a few requests at a time (in `ids` order).
    async fn fetch_details(&self, ids: &[String]) -> Vec<Result<ContactDetail, ZohoError>> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.zoho.settings.concurrency.max(1)) {
            let calls: Vec<_> = chunk.iter().map(|id| self.api.contact(id)).collect();
            results.extend(join_all(calls).await);
        }
        results
    }

    async fn details_fetched(&self, tx: &mut Tx<'_>, ids: &[String]) -> Result<(), Stop> {
        let now = now_millis();
        for id in ids {
            sqlx::query(
                "UPDATE sync_contact_details SET wanted_at = NULL, fetched_at = $4 \
                 WHERE org_id = $1 AND provider = $2 AND external_id = $3",
            )
            .bind(self.org_id())
            .bind(PROVIDER)
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Applies one page of invoices. Customers Duecall has not seen (created in Books after
    /// the contacts pass) are fetched first; customers of open invoices stored only from a
    /// list row are queued for their full record.
    async fn apply_invoices(&mut self, tx: &mut Tx<'_>, rows: &[InvoiceRow]) -> Result<(), Stop> {
        let mut records: Vec<InvoiceRecord> = Vec::with_capacity(rows.len());
        for row in rows {
            match row.to_record(&self.currency) {
                Ok(record) => records.push(record),
                Err(err) => {
                    tracing::warn!(error = %err, "skipping an invoice Zoho sent");
                    self.report.skipped.push(err.to_string());
                }
            }
        }
        let customer_ids: BTreeSet<&str> = records
            .iter()
            .map(|r| r.customer_external_id.as_str())
            .collect();
        let ids: Vec<&str> = customer_ids.into_iter().collect();
        let known = self.known_customers(tx, &ids).await?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !known.contains_key(**id))
            .map(|id| (*id).to_owned())
            .collect();
        if !missing.is_empty() {
            let fetched = self.fetch_details(&missing).await;
            let mut customers = Vec::new();
            let mut fetched_ids = Vec::new();
            let mut gone = BTreeSet::new();
            for (id, result) in missing.iter().zip(fetched) {
                match result {
                    Ok(detail) => {
                        customers.push(detail.to_record(&self.currency));
                        fetched_ids.push(id.clone());
                    }
                    Err(ZohoError::NotFound) => {
                        gone.insert(id.clone());
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            let counts = upsert::upsert_customers(tx, self.org_id(), SOURCE, &customers).await?;
            Self::add(&mut self.report.customers, counts);
            self.details_fetched(tx, &fetched_ids).await?;
            records.retain(|r| {
                let keep = !gone.contains(&r.customer_external_id);
                if !keep {
                    self.report.skipped.push(format!(
                        "invoice {}: its customer {} no longer exists in Zoho Books",
                        r.external_id, r.customer_external_id
                    ));
                }
                keep
            });
        }
        // Open invoices of customers stored only from a list row: their contact persons and
        // address matter now.
        let owing: BTreeSet<&str> = records
            .iter()
            .filter(|r| r.status.is_open() && r.balance_minor > 0)
            .map(|r| r.customer_external_id.as_str())
            .filter(|id| known.contains_key(*id))
            .collect();
        if !owing.is_empty() {
            let owing: Vec<&str> = owing.into_iter().collect();
            let mut detailed = BTreeSet::new();
            for chunk in owing.chunks(500) {
                let sql = format!(
                    "SELECT external_id FROM sync_contact_details WHERE org_id = $1 AND provider = $2 \
                     AND (fetched_at IS NOT NULL OR wanted_at IS NOT NULL) AND external_id IN ({})",
                    numbered(3, chunk.len())
                );
                let mut query = sqlx::query_scalar::<_, String>(&sql)
                    .bind(self.org_id())
                    .bind(PROVIDER);
                for id in chunk {
                    query = query.bind(*id);
                }
                detailed.extend(query.fetch_all(&mut **tx).await?);
            }
            let wanted: Vec<(String, i64)> = owing
                .into_iter()
                .filter(|id| !detailed.contains(*id))
                .map(|id| (id.to_owned(), 0))
                .collect();
            self.want_details(tx, &wanted).await?;
        }
        let (counts, settled) =
            upsert::upsert_invoices_tracked(tx, self.org_id(), SOURCE, &records).await?;
        Self::add(&mut self.report.invoices, counts);
        if !settled.is_empty() {
            self.zoho.settled(self.org_id(), settled);
        }
        Ok(())
    }

    async fn invoices_pass(&mut self) -> Result<(), Stop> {
        let watermark = self.connection.invoices_watermark;
        let after = watermark
            .and_then(|w| Utc.timestamp_opt(w - 1, 0).single())
            .map(format_time);
        let mut high = self.connection.invoices_pass_high;
        let resume = self.connection.invoices_pass_page;
        let mut page = u32::try_from((resume - 1).max(1)).unwrap_or(1);
        loop {
            let (rows, context) = self.api.invoices_page(after.as_deref(), page).await?;
            for row in &rows {
                high = high.max(row.modified().map(|t| t.timestamp()));
            }
            let done = !context.has_more_page;
            let mut tx = self.db.begin().await?;
            self.apply_invoices(&mut tx, &rows).await?;
            self.end_page(tx, "invoices", page, done, high, watermark)
                .await?;
            if done {
                return Ok(());
            }
            page += 1;
        }
    }

    /// Finds the invoices open here that Books no longer counts as unpaid, and brings each up
    /// to date: settled ones through the usual upsert, deleted ones removed. Runs when the
    /// last reconciliation is older than `reconcile_every`; an interrupted one starts over.
    async fn reconcile_pass(&mut self) -> Result<(), Stop> {
        let started = now_millis();
        let every = self.zoho.settings.reconcile_every.as_millis() as i64;
        if started - self.connection.reconciled_at < every {
            return Ok(());
        }
        // A first sync has just read every invoice there is: nothing to compare yet, and the
        // unpaid list would cost a call per 200 open invoices of the day's quota.
        if self.connection.invoices_watermark.is_none() {
            return self.reconciled(started).await;
        }
        let mut unpaid = HashSet::new();
        let mut page = 1;
        loop {
            let (rows, context) = self.api.unpaid_invoices_page(page).await?;
            unpaid.extend(rows.into_iter().map(|r| r.invoice_id));
            self.report.pages += 1;
            if !context.has_more_page {
                break;
            }
            page += 1;
        }
        let open: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT i.external_id FROM invoices i WHERE i.org_id = $1 AND i.source = $2 AND {}",
            upsert::OPEN_INVOICE
        ))
        .bind(self.org_id())
        .bind(SOURCE)
        .fetch_all(self.db.pool())
        .await?;
        let stale: Vec<String> = open.into_iter().filter(|id| !unpaid.contains(id)).collect();
        for batch in stale.chunks(50) {
            let mut rows = Vec::new();
            let mut gone = Vec::new();
            for chunk in batch.chunks(self.zoho.settings.concurrency.max(1)) {
                let calls: Vec<_> = chunk.iter().map(|id| self.api.invoice(id)).collect();
                for (id, result) in chunk.iter().zip(join_all(calls).await) {
                    match result {
                        Ok(row) => rows.push(row),
                        Err(ZohoError::NotFound) => gone.push(id.as_str()),
                        Err(err) => return Err(err.into()),
                    }
                }
            }
            let mut tx = self.db.begin().await?;
            self.apply_invoices(&mut tx, &rows).await?;
            let deleted = upsert::delete_invoices(&mut tx, self.org_id(), SOURCE, &gone).await?;
            self.report.invoices_deleted += gone.len() as u64;
            self.progress(&mut tx, "reconcile").await?;
            tx.commit().await?;
            if !deleted.is_empty() {
                self.zoho.settled(self.org_id(), deleted);
            }
        }
        self.reconciled(started).await
    }

    async fn reconciled(&self, at: i64) -> Result<(), Stop> {
        sqlx::query("UPDATE integration_connections SET reconciled_at = $2 WHERE id = $1")
            .bind(self.connection.id)
            .bind(at)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn pending_details(&self) -> Result<i64, Stop> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM sync_contact_details \
             WHERE org_id = $1 AND provider = $2 AND wanted_at IS NOT NULL",
        )
        .bind(self.org_id())
        .bind(PROVIDER)
        .fetch_one(self.db.pool())
        .await?)
    }

    async fn all_passes(&mut self) -> Result<(), Stop> {
        // Invoices before the details: every invoice is in within a few calls, while full
        // customer records take one call each (minutes at Zoho's rate on a first sync).
        self.contacts_pass().await?;
        self.invoices_pass().await?;
        self.reconcile_pass().await?;
        self.details_pass().await?;
        self.report.details_pending = self.pending_details().await?;
        Ok(())
    }
}

fn outstanding_priority(row: &ContactRow) -> i64 {
    row.outstanding_receivable_amount
        .as_ref()
        .and_then(serde_json::Number::as_f64)
        .map_or(0, |v| (v * 100.0).round() as i64)
}

/// The start of the next UTC day (Zoho's daily quota resets daily).
fn next_day(now: i64) -> i64 {
    const DAY: i64 = 24 * 3600 * 1000;
    (now / DAY + 1) * DAY
}

/// Runs one sync of the organization's connection: takes the lease, runs every pass, records
/// the run and the connection's health, gives the lease back.
pub async fn run(zoho: &Zoho, org_id: i64, started_by: StartedBy) -> Result<RunOutcome, AppError> {
    let db = &zoho.db;
    let Some(connection) = store::connection(db, org_id).await? else {
        return Ok(RunOutcome::NotReady);
    };
    let now = now_millis();
    if connection.status != "connected" || connection.paused_until > now {
        return Ok(RunOutcome::NotReady);
    }
    let owner = format!("{}/{}", zoho.settings.instance, uuid_like());
    let lease_until = now + zoho.settings.lease.as_millis() as i64;
    if !store::try_lease_sync(db, connection.id, &owner, lease_until).await? {
        return Ok(RunOutcome::Busy);
    }
    // Runs left `running` by a crashed worker (its lease has lapsed, or we would not hold it).
    sqlx::query(
        "UPDATE sync_runs SET status = 'interrupted', finished_at = heartbeat_at \
         WHERE org_id = $1 AND provider = $2 AND status = 'running'",
    )
    .bind(org_id)
    .bind(PROVIDER)
    .execute(db.pool())
    .await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO sync_runs (org_id, provider, started_by, status, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, 'running', $4, $4) RETURNING id",
    )
    .bind(org_id)
    .bind(PROVIDER)
    .bind(started_by.as_str())
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    tracing::info!(
        org_id,
        run_id,
        started_by = started_by.as_str(),
        "Zoho sync started"
    );

    let currency: String =
        sqlx::query_scalar("SELECT default_currency FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(db.pool())
            .await?;
    let api = zoho.api(&connection);
    let mut run = Run {
        zoho,
        db,
        api,
        currency: Currency::parse(&currency).unwrap_or_else(|_| Currency::unknown()),
        report: RunReport {
            run_id,
            ..RunReport::default()
        },
        lease_owner: owner.clone(),
        connection,
        analyzed_at: 0,
    };
    let result = run.all_passes().await;
    run.report.api_calls = run.api.calls();
    let report = run.report.clone();
    let connection_id = run.connection.id;
    drop(run);

    let finished = now_millis();
    let every = zoho.settings.sync_every.as_millis() as i64;
    let outcome = match result {
        Ok(()) => {
            sqlx::query(
                "UPDATE sync_runs SET status = 'succeeded', finished_at = $2, api_calls = $3, \
                   details_pending = $4, error = $5 WHERE id = $1",
            )
            .bind(run_id)
            .bind(finished)
            .bind(report.api_calls as i64)
            .bind(report.details_pending)
            .bind(skipped_note(&report.skipped))
            .execute(db.pool())
            .await?;
            // Details still owed: come back soon rather than in hours.
            let next = if report.details_pending > 0 {
                finished + 60_000
            } else {
                finished + every
            };
            sqlx::query(
                "UPDATE integration_connections SET last_success_at = $2, last_error = '', \
                   next_sync_at = CASE WHEN next_sync_at = 0 AND updated_at > $4 THEN 0 ELSE $3 END \
                 WHERE id = $1",
            )
            .bind(connection_id)
            .bind(finished)
            .bind(next)
            .bind(now)
            .execute(db.pool())
            .await?;
            let summary = ImportSummary {
                customers: report.customers,
                invoices: report.invoices,
            };
            upsert::refresh_statistics_after(db, &summary).await?;
            tracing::info!(org_id, run_id, ?report, "Zoho sync finished");
            // Paid, voided, deleted and new invoices: the reminders follow at once.
            if let Err(err) =
                app::reminders::generate::generate(db, org_id, chrono::Utc::now()).await
            {
                tracing::warn!(org_id, error = %err, "reminders not regenerated after the sync");
            }
            RunOutcome::Finished(report)
        }
        Err(stop) => {
            let error = match stop {
                Stop::Zoho(err) => err,
                Stop::App(err) => {
                    tracing::error!(org_id, run_id, error = %err, "Zoho sync failed on our side");
                    ZohoError::Unavailable(format!("Duecall could not store the data: {err}"))
                }
            };
            let (status, paused_until, next) = match &error {
                ZohoError::DailyLimit { reset } => {
                    let until = reset
                        .map(|r| finished + r.as_millis() as i64)
                        .unwrap_or_else(|| next_day(finished));
                    ("paused", until, until)
                }
                _ => ("failed", 0, finished + (every / 8).max(60_000)),
            };
            if error == ZohoError::Unauthorized {
                store::mark_needs_reconnect(db, connection_id, &error.to_string()).await?;
            }
            sqlx::query(
                "UPDATE sync_runs SET status = $2, finished_at = $3, api_calls = $4, error = $5 WHERE id = $1",
            )
            .bind(run_id)
            .bind(status)
            .bind(finished)
            .bind(report.api_calls as i64)
            .bind(error.to_string())
            .execute(db.pool())
            .await?;
            sqlx::query(
                "UPDATE integration_connections SET last_error = $2, paused_until = $3, next_sync_at = $4 \
                 WHERE id = $1",
            )
            .bind(connection_id)
            .bind(error.to_string())
            .bind(paused_until)
            .bind(next)
            .execute(db.pool())
            .await?;
            tracing::warn!(org_id, run_id, %error, "Zoho sync stopped");
            RunOutcome::Failed { run_id, error }
        }
    };
    store::release_sync(db, connection_id, &owner).await?;
    Ok(outcome)
}

fn skipped_note(skipped: &[String]) -> String {
    match skipped {
        [] => String::new(),
        [one] => format!("1 record skipped: {one}"),
        [first, rest @ ..] => format!("{} records skipped, e.g. {first}", rest.len() + 1),
    }
}

/// A short random id telling apart the runs of one instance.
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}
