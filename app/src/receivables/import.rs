//! Importing customers and invoices from CSV files: validate everything, then write
//! everything in one transaction, or nothing.

use std::collections::HashSet;

use tracing::instrument;

use super::csv_import::{self, SOURCE};
use super::model::ImportSummary;
use super::upsert;
use crate::accounts::service::Member;
use crate::db::Db;
use crate::error::AppError;

/// The largest file accepted, per file.
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;

fn check_size(file: &'static str, bytes: &[u8]) -> Result<(), AppError> {
    if bytes.len() > MAX_FILE_BYTES {
        Err(AppError::invalid(
            file,
            format!(
                "The file is {:.1} MB; the limit is {} MB. Split it into smaller files.",
                bytes.len() as f64 / 1_048_576.0,
                MAX_FILE_BYTES / 1_048_576
            ),
        ))
    } else {
        Ok(())
    }
}

/// Imports a customers file, an invoices file, or both (customers first, so invoices may
/// name customers from the same upload).
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn import_csv(
    db: &Db,
    member: Member,
    customers: Option<&[u8]>,
    invoices: Option<&[u8]>,
) -> Result<ImportSummary, AppError> {
    member.require_write()?;
    if customers.is_none() && invoices.is_none() {
        return Err(AppError::invalid(
            "customers",
            "Choose a customers file, an invoices file, or both.",
        ));
    }
    for (name, file) in [("customers", customers), ("invoices", invoices)] {
        if let Some(bytes) = file {
            check_size(name, bytes)?;
        }
    }
    let customer_records = match customers {
        // Parsing and validating a large file is CPU work: keep it off the async threads.
        Some(bytes) => {
            let bytes = bytes.to_vec();
            blocking(move || csv_import::parse_customers(&bytes))
                .await?
                .map_err(|errors| AppError::InvalidFile {
                    file: "customers".into(),
                    errors,
                })?
        }
        None => Vec::new(),
    };

    let mut tx = db.begin().await?;
    let invoice_records = match invoices {
        Some(bytes) => {
            let mut known: HashSet<String> = sqlx::query_scalar::<_, String>(
                "SELECT external_id FROM customers WHERE org_id = $1 AND source = $2",
            )
            .bind(member.org_id)
            .bind(SOURCE)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            known.extend(customer_records.iter().map(|c| c.external_id.clone()));
            let bytes = bytes.to_vec();
            blocking(move || csv_import::parse_invoices(&bytes, &known))
                .await?
                .map_err(|errors| AppError::InvalidFile {
                    file: "invoices".into(),
                    errors,
                })?
        }
        None => Vec::new(),
    };
    let summary = upsert::upsert_books(
        &mut tx,
        member.org_id,
        SOURCE,
        &customer_records,
        &invoice_records,
    )
    .await?;
    tx.commit().await?;
    upsert::refresh_statistics_after(db, &summary).await?;
    tracing::info!(?summary, "CSV import finished");
    // The reminders follow the new books at once (the scheduler would within minutes).
    if let Err(err) =
        crate::reminders::generate::generate(db, member.org_id, chrono::Utc::now()).await
    {
        tracing::warn!(error = %err, "reminders not regenerated after the import");
    }
    Ok(summary)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal("import task failed", e))
}
