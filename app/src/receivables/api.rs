//! Server functions of the receivables pages. Thin: the signed-in member, then a query or the
//! import service.

use leptos::prelude::*;
use server_fn::codec::{MultipartData, MultipartFormData};

use super::model::ImportSummary;
use super::views::{
    CustomerDetail, CustomerFilter, CustomerPage, DashboardData, InvoiceDetail, InvoiceFilter,
    InvoicePage,
};
use crate::error::AppError;

#[cfg(feature = "ssr")]
use {super::import, super::queries, crate::server::member};

#[server(endpoint = "receivables/customers")]
pub async fn list_customers(filter: CustomerFilter) -> Result<CustomerPage, AppError> {
    let (state, member) = member().await?;
    queries::list_customers(&state.db, member, &filter).await
}

#[server(endpoint = "receivables/customer")]
pub async fn fetch_customer(id: i64) -> Result<CustomerDetail, AppError> {
    let (state, member) = member().await?;
    queries::customer_detail(&state.db, member, id).await
}

#[server(endpoint = "receivables/invoices")]
pub async fn list_invoices(filter: InvoiceFilter) -> Result<InvoicePage, AppError> {
    let (state, member) = member().await?;
    queries::list_invoices(&state.db, member, &filter).await
}

#[server(endpoint = "receivables/invoice")]
pub async fn fetch_invoice(id: i64) -> Result<InvoiceDetail, AppError> {
    let (state, member) = member().await?;
    queries::invoice_detail(&state.db, member, id).await
}

#[server(endpoint = "receivables/dashboard")]
pub async fn fetch_dashboard() -> Result<DashboardData, AppError> {
    let (state, member) = member().await?;
    queries::dashboard(&state.db, member).await
}

/// Imports the `customers` and/or `invoices` files of a multipart form, then returns to the
/// integrations page with the counts in its address (so the result shows with or without
/// JavaScript).
#[server(endpoint = "receivables/import", input = MultipartFormData)]
pub async fn import_csv(data: MultipartData) -> Result<ImportSummary, AppError> {
    let (state, member) = member().await?;
    let mut form = data.into_inner().ok_or(AppError::BadRequest)?;
    let (mut customers, mut invoices) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|_| AppError::BadRequest)? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|_| AppError::BadRequest)?;
        match name.as_str() {
            "customers" if !bytes.is_empty() => customers = Some(bytes),
            "invoices" if !bytes.is_empty() => invoices = Some(bytes),
            _ => {}
        }
    }
    let summary =
        import::import_csv(&state.db, member, customers.as_deref(), invoices.as_deref()).await?;
    leptos_axum::redirect(&format!("/integrations?{}", summary_query(&summary)));
    Ok(summary)
}

/// The import counts as query parameters of the integrations page.
pub fn summary_query(summary: &ImportSummary) -> String {
    let (c, i) = (summary.customers, summary.invoices);
    format!(
        "imported=1&cn={}&cu={}&cs={}&in={}&iu={}&is={}",
        c.new, c.updated, c.unchanged, i.new, i.updated, i.unchanged
    )
}
