//! Duecall's application crate: the types that cross the wire, the Leptos components, and the
//! server functions. Compiled twice: with `ssr` into the server, with `hydrate` into the
//! browser's WASM. Server-only modules (database, services, sessions) are behind `ssr`.

pub mod accounts;
pub mod calls;
pub mod error;
pub mod integrations;
pub mod pages;
pub mod receivables;
pub mod reminders;
pub mod shell;

#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use accounts::pages::{SignInPage, SignUpPage};
use pages::{NotFound, Placeholder, SettingsPage};
use receivables::pages::{
    CustomerDetailPage, CustomersPage, DashboardPage, IntegrationsPage, InvoiceDetailPage,
    InvoicesPage,
};
use reminders::pages::{CalendarPage, CallingRulesPage, ReminderDetailPage, RemindersPage};
use shell::layout::AppLayout;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let theme = shell::theme::current_theme();
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=theme.as_str()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: mark the page as live (end-to-end tests wait for it).
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    // Every page renders completely before it is sent, so it reads the same without JavaScript
    // and redirects (signed out) and status codes (not found) are real HTTP responses.
    view! {
        <Stylesheet id="leptos" href="/pkg/duecall.css" />
        <Title formatter=|page: String| {
            if page.is_empty() { "Duecall".to_owned() } else { format!("{page} · Duecall") }
        } />
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async />
                <Route path=path!("/sign-up") view=SignUpPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=AppLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("customers") view=CustomersPage ssr=SsrMode::Async />
                    <Route path=path!("customers/:id") view=CustomerDetailPage ssr=SsrMode::Async />
                    <Route path=path!("invoices") view=InvoicesPage ssr=SsrMode::Async />
                    <Route path=path!("invoices/:id") view=InvoiceDetailPage ssr=SsrMode::Async />
                    <Route path=path!("reminders") view=RemindersPage ssr=SsrMode::Async />
                    <Route path=path!("reminders/calendar") view=CalendarPage ssr=SsrMode::Async />
                    <Route path=path!("reminders/:id") view=ReminderDetailPage ssr=SsrMode::Async />
                    <Route path=path!("calls") view=calls::pages::CallsPage ssr=SsrMode::Async />
                    <Route path=path!("calls/review") view=calls::pages::ReviewQueuePage ssr=SsrMode::Async />
                    <Route path=path!("calls/:id") view=calls::pages::CallDetailPage ssr=SsrMode::Async />
                    <Route path=path!("analytics") view=|| view! { <Placeholder page=pages::Page::Analytics /> } ssr=SsrMode::Async />
                    <Route path=path!("assistant") view=|| view! { <Placeholder page=pages::Page::Assistant /> } ssr=SsrMode::Async />
                    <Route path=path!("integrations") view=IntegrationsPage ssr=SsrMode::Async />
                    <Route path=path!("settings") view=SettingsPage ssr=SsrMode::Async />
                    <Route path=path!("settings/calling") view=CallingRulesPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
