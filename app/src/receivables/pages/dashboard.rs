//! The dashboard: what is owed, how late, and by whom.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::{LoadError, fmt_money};
use crate::calls::pages::CallKpisSection;
use crate::receivables::api::fetch_dashboard;
use crate::receivables::views::{CurrencySummary, DashboardData};
use crate::shell::EmptyState;
use crate::shell::layout::use_session;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let session = use_session();
    let first_name = session
        .user
        .display_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let data = Resource::new(|| (), |_| fetch_dashboard());
    view! {
        <Title text="Dashboard" />
        <header class="page-header">
            <h1>{format!("Welcome, {first_name}")}</h1>
            <p class="subtitle">{format!("Receivables for {}", session.org.name)}</p>
        </header>
        // Created here, outside the figures' Suspense: a resource made inside an async child
        // can be missing from the page's serialized resources when the browser hydrates.
        <CallKpisSection />
        <Suspense fallback=|| view! { <p class="loading">"Loading figures…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) if data.customers == 0 => view! {
                        <EmptyState title="Your receivables will show up here" action=("/integrations", "Connect your books")>
                            "Connect Zoho Books or import customers and invoices from CSV files. Duecall then shows who owes what and how late, and calls the customers who are overdue."
                        </EmptyState>
                    }
                    .into_any(),
                    Ok(data) => view! { <Figures data /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Figures(data: DashboardData) -> impl IntoView {
    let main = data.currencies.first().cloned();
    let others: Vec<CurrencySummary> = data.currencies.iter().skip(1).cloned().collect();
    view! {
        <section class="kpis" aria-label="Key figures" data-test="kpis">
            {main.clone().map(|m| view! {
                <div class="kpi"><span class="kpi-label">"Total receivable"</span><span class="kpi-value">{fmt_money(&m.receivable)}</span><span class="kpi-hint">"All unpaid invoices"</span></div>
                <div class="kpi"><span class="kpi-label">"Overdue"</span><span class="kpi-value danger">{fmt_money(&m.overdue)}</span><span class="kpi-hint">"Past their due date"</span></div>
            })}
            <div class="kpi"><span class="kpi-label">"Overdue invoices"</span><span class="kpi-value">{data.overdue_invoices}</span><span class="kpi-hint"><a href="/invoices?sort=days_overdue">"Most overdue first"</a></span></div>
            <div class="kpi"><span class="kpi-label">"Customers"</span><span class="kpi-value">{data.customers}</span><span class="kpi-hint">{format!("As of {}", data.today)}</span></div>
        </section>
        {(!others.is_empty()).then(|| view! {
            <section class="card other-currencies">
                <h2>"Other currencies"</h2>
                <table class="table">
                    <thead><tr><th>"Currency"</th><th class="num">"Receivable"</th><th class="num">"Overdue"</th><th class="num">"Overdue invoices"</th></tr></thead>
                    <tbody>
                        {others.into_iter().map(|c| view! {
                            <tr><td>{c.receivable.currency.code().to_owned()}</td><td class="num">{fmt_money(&c.receivable)}</td><td class="num">{fmt_money(&c.overdue)}</td><td class="num">{c.overdue_count}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        })}
        <div class="grid-2">
            {main.map(|m| {
                // Bars are <meter>s: no inline styles, which the content security policy forbids.
                let largest = m.aging.iter().map(|a| a.amount.minor).max().unwrap_or(0).max(1);
                view! {
                    <section class="card" data-test="aging">
                        <h2>{format!("Aging ({})", m.receivable.currency.code())}</h2>
                        <ul class="aging">
                            {m.aging.into_iter().map(|a| {
                                view! {
                                    <li>
                                        <a class="aging-label" href=format!("/invoices?bucket={}&currency={}", a.bucket.as_str(), a.amount.currency.code())>{a.bucket.label()}</a>
                                        <meter class=format!("aging-bar bucket-{}", a.bucket.as_str().replace('+', "plus")) min="0" max=largest.to_string() value=a.amount.minor.to_string()></meter>
                                        <span class="aging-amount">{fmt_money(&a.amount)}</span>
                                        <span class="muted small">{format!("{} inv.", a.count)}</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    </section>
                }
            })}
            <section class="card" data-test="top-overdue">
                <h2>"Most overdue customers"</h2>
                {if data.top_overdue.is_empty() {
                    view! { <p class="muted">"Nobody is overdue."</p> }.into_any()
                } else {
                    view! {
                        <table class="table">
                            <thead><tr><th>"Customer"</th><th class="num">"Overdue"</th><th class="num">"Oldest"</th></tr></thead>
                            <tbody>
                                {data.top_overdue.into_iter().map(|c| view! {
                                    <tr>
                                        <td><A href=format!("/customers/{}", c.id)>{c.name.clone()}</A></td>
                                        <td class="num">{fmt_money(&c.overdue)}</td>
                                        <td class="num">{format!("{} d", c.oldest_days)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        </div>
    }
}
