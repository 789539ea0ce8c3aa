//! Write-back: call outcomes go to the invoice in Zoho Books as a comment, with the date the
//! customer promised to pay. Every write-back is first stored in `writeback_jobs` (in the
//! caller's transaction if it has one), then delivered; failures are retried with growing
//! delays, so an outage at Zoho loses nothing.

use std::time::Duration;

use app::db::time::now_millis;
use app::db::{Conn, Db};
use app::error::AppError;
use chrono::NaiveDate;

use super::Zoho;
use super::store::{self, PROVIDER, SOURCE};
use super::zoho::api::ZohoError;

/// Attempts before a job is given up as failed (spread over about a day).
const MAX_ATTEMPTS: i64 = 12;
/// Longest Zoho comment Duecall writes.
const MAX_DESCRIPTION: usize = 2_000;
/// A delivery claims a job for this long (another instance skips it meanwhile).
const CLAIM_MS: i64 = 5 * 60 * 1000;

/// Queues a comment (and optionally a promised payment date) for a synced invoice. Returns
/// the job id. Invoices that did not come from Zoho Books are refused.
pub async fn enqueue(
    tx: &mut Conn,
    org_id: i64,
    invoice_id: i64,
    description: &str,
    payment_expected_date: Option<NaiveDate>,
) -> Result<i64, AppError> {
    let description = description.trim();
    if description.is_empty() {
        return Err(AppError::invalid("description", "the comment is empty"));
    }
    let description: String = description.chars().take(MAX_DESCRIPTION).collect();
    let external: Option<(String, String)> =
        sqlx::query_as("SELECT source, external_id FROM invoices WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(invoice_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((source, external_id)) = external else {
        return Err(AppError::NotFound);
    };
    if source != SOURCE {
        return Err(AppError::invalid(
            "invoice",
            "this invoice does not come from Zoho Books",
        ));
    }
    let now = now_millis();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO writeback_jobs (org_id, provider, invoice_id, external_invoice_id, description, \
           payment_expected_date, status, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) RETURNING id",
    )
    .bind(org_id)
    .bind(PROVIDER)
    .bind(invoice_id)
    .bind(&external_id)
    .bind(&description)
    .bind(
        payment_expected_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    )
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    Ok(id)
}

/// [`enqueue`] in its own transaction.
pub async fn enqueue_now(
    db: &Db,
    org_id: i64,
    invoice_id: i64,
    description: &str,
    payment_expected_date: Option<NaiveDate>,
) -> Result<i64, AppError> {
    let mut tx = db.begin().await?;
    let id = enqueue(
        &mut tx,
        org_id,
        invoice_id,
        description,
        payment_expected_date,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct Job {
    id: i64,
    org_id: i64,
    external_invoice_id: String,
    description: String,
    payment_expected_date: String,
    attempts: i64,
    next_attempt_at: i64,
}

/// The delay before attempt `n + 1`: 30 s doubling, at most 4 hours.
fn retry_delay(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 10)).unwrap_or(10);
    Duration::from_secs((30_u64 << exponent).min(4 * 3600))
}

async fn finish(
    db: &Db,
    id: i64,
    status: &str,
    attempts: i64,
    next: i64,
    error: &str,
) -> Result<(), AppError> {
    let finished = (status != "pending").then(now_millis);
    sqlx::query(
        "UPDATE writeback_jobs SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5, \
           finished_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(attempts)
    .bind(next)
    .bind(error)
    .bind(finished)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Delivers the write-backs that are due. Returns how many were delivered.
pub async fn deliver_due(zoho: &Zoho) -> Result<usize, AppError> {
    let db = &zoho.db;
    let now = now_millis();
    let jobs = sqlx::query_as::<_, Job>(
        "SELECT id, org_id, external_invoice_id, description, payment_expected_date, attempts, \
           next_attempt_at FROM writeback_jobs \
         WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 20",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    let mut delivered = 0;
    for job in jobs {
        // Claim it: only the caller whose update lands delivers.
        let claimed = sqlx::query(
            "UPDATE writeback_jobs SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 \
             AND status = 'pending'",
        )
        .bind(job.id)
        .bind(job.next_attempt_at)
        .bind(now + CLAIM_MS)
        .execute(db.pool())
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            continue;
        }
        let attempts = job.attempts + 1;
        let connection = store::connection(db, job.org_id)
            .await?
            .filter(|c| c.status == "connected");
        let Some(connection) = connection else {
            // Not connected right now (e.g. waiting for a reconnect): try again later.
            let next = now + retry_delay(job.attempts).as_millis() as i64;
            finish(
                db,
                job.id,
                "pending",
                job.attempts,
                next,
                "Zoho Books is not connected",
            )
            .await?;
            continue;
        };
        if connection.paused_until > now {
            finish(
                db,
                job.id,
                "pending",
                job.attempts,
                connection.paused_until,
                "Zoho's daily limit is reached",
            )
            .await?;
            continue;
        }
        let api = zoho.api(&connection);
        let date =
            (!job.payment_expected_date.is_empty()).then_some(job.payment_expected_date.as_str());
        match api
            .add_invoice_comment(&job.external_invoice_id, &job.description, date)
            .await
        {
            Ok(()) => {
                finish(db, job.id, "done", attempts, now, "").await?;
                delivered += 1;
            }
            Err(err @ (ZohoError::NotFound | ZohoError::Api { .. } | ZohoError::Decode(_))) => {
                // Zoho refuses this write for good (deleted invoice, invalid value).
                tracing::warn!(job = job.id, error = %err, "write-back refused by Zoho");
                finish(db, job.id, "failed", attempts, now, &err.to_string()).await?;
            }
            Err(ZohoError::DailyLimit { reset }) => {
                let next = now + reset.unwrap_or(Duration::from_secs(3600)).as_millis() as i64;
                finish(
                    db,
                    job.id,
                    "pending",
                    job.attempts,
                    next,
                    "Zoho's daily limit is reached",
                )
                .await?;
            }
            Err(err) => {
                let status = if attempts >= MAX_ATTEMPTS {
                    "failed"
                } else {
                    "pending"
                };
                let next = now + retry_delay(attempts).as_millis() as i64;
                tracing::info!(job = job.id, attempts, error = %err, "write-back will be retried");
                finish(db, job.id, status, attempts, next, &err.to_string()).await?;
            }
        }
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::retry_delay;
    use std::time::Duration;

    #[test]
    fn retries_back_off_to_four_hours() {
        assert_eq!(retry_delay(0), Duration::from_secs(30));
        assert_eq!(retry_delay(1), Duration::from_secs(60));
        assert_eq!(retry_delay(20), Duration::from_secs(4 * 3600));
    }
}
