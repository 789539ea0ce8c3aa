//! Pages that belong to no single feature: the not-found page, and the empty states of
//! sections whose features arrive later.

use leptos::prelude::*;
use leptos_meta::Title;

pub use crate::accounts::pages::SettingsPage;
use crate::shell::{EmptyState, PageHeader};

/// Sections of the app that show an empty state until their feature lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Analytics,
    Assistant,
}

impl Page {
    fn copy(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Analytics => (
                "Analytics",
                "Nothing to chart yet",
                "Collections trends, call outcomes and days-sales-outstanding charts appear here once invoices and calls start flowing.",
            ),
            Self::Assistant => (
                "Assistant",
                "The assistant needs data first",
                "Ask questions about your receivables in plain language, such as who owes the most or which promises are due this week, once your books are in Duecall.",
            ),
        }
    }
}

#[component]
pub fn Placeholder(page: Page) -> impl IntoView {
    let (title, empty_title, body) = page.copy();
    view! {
        <Title text=title />
        <PageHeader title=title />
        <EmptyState title=empty_title>{body}</EmptyState>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <main class="centered">
            <div class="card narrow">
                <h1>"Page not found"</h1>
                <p>"There is no page at this address. It may have moved, or the link may be mistyped."</p>
                <a class="button primary" href="/">"Go to the dashboard"</a>
            </div>
        </main>
    }
}
