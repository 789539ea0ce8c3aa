//! Server functions of the calls pages. Thin: the signed-in member, then a query.

use leptos::prelude::*;

use super::views::{CallDetail, CallFilter, CallKpis, CallPage, ReviewItem};
use crate::error::AppError;

#[cfg(feature = "ssr")]
use {super::queries, crate::server::member};

#[server(endpoint = "calls/list")]
pub async fn list_calls(filter: CallFilter) -> Result<CallPage, AppError> {
    let (state, member) = member().await?;
    queries::list_calls(&state.db, member, &filter).await
}

#[server(endpoint = "calls/get")]
pub async fn fetch_call(id: i64) -> Result<CallDetail, AppError> {
    let (state, member) = member().await?;
    queries::call_detail(&state.db, member, id).await
}

/// The "needs a human" queue.
#[server(endpoint = "calls/review")]
pub async fn fetch_review_queue() -> Result<Vec<ReviewItem>, AppError> {
    let (state, member) = member().await?;
    queries::review_queue(&state.db, member).await
}

/// Settles an item of the queue (see [`super::views::REVIEW_ACTIONS`]).
#[server(endpoint = "calls/resolve")]
pub async fn resolve_review(invoice_id: i64, action: String) -> Result<(), AppError> {
    let (state, member) = member().await?;
    queries::resolve_review(&state.db, member, invoice_id, &action, chrono::Utc::now()).await?;
    state.live.notify(member.org_id);
    Ok(())
}

/// The dashboard's call figures.
#[server(endpoint = "calls/kpis")]
pub async fn fetch_call_kpis() -> Result<CallKpis, AppError> {
    let (state, member) = member().await?;
    queries::kpis(&state.db, member, chrono::Utc::now()).await
}
