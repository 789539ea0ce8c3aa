//! Pages that belong to no single feature yet: the dashboard, the not-found page, and the
//! empty states of sections whose features arrive later.

use leptos::prelude::*;
use leptos_meta::Title;

pub use crate::accounts::pages::SettingsPage;
use crate::shell::layout::use_session;
use crate::shell::{EmptyState, PageHeader};

/// Sections of the app that show an empty state until their feature lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Customers,
    Invoices,
    Reminders,
    Calls,
    Analytics,
    Assistant,
    Integrations,
}

impl Page {
    fn copy(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Customers => (
                "Customers",
                "No customers yet",
                "Customers appear here once you connect your accounting system or import a CSV file: who owes what, how late, and the best number to reach them.",
            ),
            Self::Invoices => (
                "Invoices",
                "No invoices yet",
                "Invoices synced from your accounting system or imported from a CSV file appear here, with their balance, due date and how overdue they are.",
            ),
            Self::Reminders => (
                "Reminders",
                "No reminders scheduled",
                "Duecall plans reminder calls for overdue invoices under your rules and the law's calling hours. Scheduled and past reminders appear here.",
            ),
            Self::Calls => (
                "Calls",
                "No calls yet",
                "Every call Duecall places appears here with its status, duration and outcome: promise to pay, dispute, or already paid.",
            ),
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
            Self::Integrations => (
                "Integrations",
                "No accounting system connected",
                "Connect Zoho Books to sync customers and invoices automatically, or import them from CSV files.",
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
pub fn Dashboard() -> impl IntoView {
    let session = use_session();
    let first_name = session
        .user
        .display_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let kpis = [
        ("Total receivable", "All open invoices"),
        ("Overdue", "Past their due date"),
        ("Overdue invoices", "Count"),
        ("Calls this week", "Placed by Duecall"),
        ("Promises to pay", "Open promises"),
    ];
    view! {
        <Title text="Dashboard" />
        <header class="page-header">
            <h1>{format!("Welcome, {first_name}")}</h1>
            <p class="subtitle">{format!("Receivables for {}", session.org.name)}</p>
        </header>
        <section class="kpis" aria-label="Key figures">
            {kpis
                .into_iter()
                .map(|(label, hint)| {
                    view! {
                        <div class="kpi">
                            <span class="kpi-label">{label}</span>
                            <span class="kpi-value">"—"</span>
                            <span class="kpi-hint">{hint}</span>
                        </div>
                    }
                })
                .collect_view()}
        </section>
        <EmptyState title="Your receivables will show up here" action=("/integrations", "Connect your books")>
            "Connect Zoho Books or import customers and invoices from CSV files. Duecall then shows who owes what and how late, and calls the customers who are overdue."
        </EmptyState>
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
