//! The receivables pages: dashboard, customers, invoices, their detail views, and CSV import.
//! Every list keeps its search, filters, sort and position in the address, so a view can be
//! bookmarked and works without JavaScript (plain GET forms and links).

mod customers;
mod dashboard;
mod import;
mod invoices;

pub use customers::{CustomerDetailPage, CustomersPage};
pub use dashboard::DashboardPage;
pub use import::IntegrationsPage;
pub use invoices::{InvoiceDetailPage, InvoicesPage};

use leptos::prelude::*;

use super::model::{InvoiceStatus, Money, NumberStyle, PhoneStatus};
use crate::error::AppError;

/// The numeric `:id` of the current route (-1, which matches nothing, when it is not a number).
pub(crate) fn route_id() -> Memo<i64> {
    let params = leptos_router::hooks::use_params_map();
    Memo::new(move |_| {
        params.with(|p| {
            p.get("id")
                .and_then(|id| id.parse::<i64>().ok())
                .unwrap_or(-1)
        })
    })
}

/// Formats money the way the organization writes numbers.
pub(crate) fn fmt_money(money: &Money) -> String {
    let locale = use_context::<crate::accounts::model::SessionView>()
        .map(|s| s.org.locale)
        .unwrap_or_default();
    money.format(NumberStyle::for_locale(&locale))
}

#[component]
pub(crate) fn StatusBadge(status: InvoiceStatus) -> impl IntoView {
    view! { <span class=format!("badge status-{}", status.as_str())>{status.label()}</span> }
}

#[component]
pub(crate) fn OverdueBadge(days: Option<i64>) -> impl IntoView {
    match days {
        Some(days) => {
            let class = match days {
                1..=30 => "late-1",
                31..=60 => "late-2",
                61..=90 => "late-3",
                _ => "late-4",
            };
            view! { <span class=format!("badge {class}")>{format!("{days} d")}</span> }.into_any()
        }
        None => view! { <span class="muted">"—"</span> }.into_any(),
    }
}

#[component]
pub(crate) fn PhoneBadge(status: PhoneStatus, number: String, reason: String) -> impl IntoView {
    let (class, label) = match status {
        PhoneStatus::Valid => ("phone-valid", number),
        PhoneStatus::Invalid => ("phone-invalid", "Invalid number".to_owned()),
        PhoneStatus::Missing => ("phone-missing", "No number".to_owned()),
    };
    view! { <span class=format!("phone {class}") title=reason>{label}</span> }
}

/// Links to the first and the next page of a list (plain links: they work without JavaScript).
#[component]
pub(crate) fn Pager(first: Option<String>, next: Option<String>) -> impl IntoView {
    view! {
        <nav class="pager" aria-label="Pages">
            {first.map(|href| view! { <a class="button" href=href>"← First page"</a> })}
            {next.map(|href| view! { <a class="button" href=href rel="next" data-test="next-page">"Next page →"</a> })}
        </nav>
    }
}

/// What a list or detail view shows when its data could not be loaded. A record of another
/// organization is "not found", with a real 404.
#[component]
pub(crate) fn LoadError(error: AppError) -> impl IntoView {
    match error {
        AppError::NotFound => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::NOT_FOUND);
            }
            view! {
                <div class="card narrow" data-test="not-found">
                    <h1>"Not found"</h1>
                    <p>"There is no such record in this organization. It may have been removed, or the link may belong to another organization."</p>
                </div>
            }
            .into_any()
        }
        other => {
            view! { <div class="alert error" role="alert">{other.to_string()}</div> }.into_any()
        }
    }
}
