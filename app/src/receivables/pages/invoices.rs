//! The invoices list and an invoice's detail view.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::{LoadError, OverdueBadge, Pager, StatusBadge, fmt_money, route_id};
use crate::receivables::api::{fetch_invoice, list_invoices};
use crate::receivables::model::{AgingBucket, InvoiceStatus};
use crate::receivables::views::{InvoiceFilter, InvoicePage, InvoiceSort, encode_component};
use crate::shell::EmptyState;

#[component]
pub fn InvoicesPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| query.with(|q| InvoiceFilter::from_query(|k| q.get(k))));
    let page = Resource::new(move || filter.get(), list_invoices);
    view! {
        <Title text="Invoices" />
        <header class="page-header with-actions">
            <div>
                <h1>"Invoices"</h1>
                <p class="subtitle">"Every invoice, its balance and how late it is."</p>
            </div>
            <div class="actions">
                <a class="button" href=move || format!("/export/invoices.csv?{}", filter.get().to_query()) data-test="export-invoices" rel="external" download>
                    "Export CSV"
                </a>
                <a class="button" href="/integrations">"Import"</a>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading invoices…"</p> }>
            {move || Suspend::new(async move {
                let current = filter.get();
                match page.await {
                    Ok(data) => view! { <InvoiceList filter=current data /> }.into_any(),
                    Err(error) => view! {
                        <InvoiceFilters filter=current currencies=Vec::new() />
                        <LoadError error />
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn InvoiceFilters(filter: InvoiceFilter, currencies: Vec<String>) -> impl IntoView {
    view! {
        <Form method="GET" action="/invoices" attr:class="filters" attr:data-test="invoice-filters">
            {filter.customer_id.map(|id| view! { <input type="hidden" name="customer" value=id.to_string() /> })}
            <label class="grow">
                <span>"Search"</span>
                <input type="search" name="q" value=filter.q.clone() placeholder="Invoice number or customer" />
            </label>
            <label>
                <span>"Status"</span>
                <select name="status">
                    <option value="">"Any"</option>
                    {InvoiceStatus::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str() selected=filter.status == Some(s)>{s.label()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                <span>"Overdue"</span>
                <select name="bucket" data-test="bucket">
                    <option value="">"Any"</option>
                    {AgingBucket::ALL
                        .into_iter()
                        .map(|b| view! { <option value=b.as_str() selected=filter.bucket == Some(b)>{b.label()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                <span>"Due from"</span>
                <input type="date" name="due_from" value=filter.due_from.clone() />
            </label>
            <label>
                <span>"Due to"</span>
                <input type="date" name="due_to" value=filter.due_to.clone() />
            </label>
            <label>
                <span>"Currency"</span>
                <select name="currency">
                    <option value="">"All"</option>
                    {currencies
                        .into_iter()
                        .map(|c| {
                            let selected = c == filter.currency;
                            view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="narrow">
                <span>"Balance from"</span>
                <input type="text" inputmode="decimal" name="min_balance" value=filter.min_balance.clone() placeholder="0.00" />
            </label>
            <label class="narrow">
                <span>"to"</span>
                <input type="text" inputmode="decimal" name="max_balance" value=filter.max_balance.clone() placeholder="any" />
            </label>
            <label>
                <span>"Sort"</span>
                <select name="sort">
                    {InvoiceSort::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str() selected=s == filter.sort>{s.label()}</option> })
                        .collect_view()}
                </select>
            </label>
            <button type="submit" class="button primary">"Apply"</button>
            <a class="button" href="/invoices">"Reset"</a>
        </Form>
    }
}

#[component]
fn InvoiceList(filter: InvoiceFilter, data: InvoicePage) -> impl IntoView {
    let filtered = filter != InvoiceFilter::default();
    if data.rows.is_empty() && !filtered {
        return view! {
            <EmptyState title="No invoices yet" action=("/integrations", "Import invoices")>
                "Invoices synced from your accounting system or imported from a CSV file appear here, with their balance, due date and how overdue they are."
            </EmptyState>
        }
        .into_any();
    }
    let base = filter.to_query();
    let next = data
        .next
        .clone()
        .map(|cursor| format!("/invoices?{base}&after={}", encode_component(&cursor)));
    let first = filter.after.is_some().then(|| format!("/invoices?{base}"));
    view! {
        <InvoiceFilters filter=filter.clone() currencies=data.currencies.clone() />
        <div class="totals" data-test="invoice-totals">
            <span class="muted">"Matching: "</span>
            {if data.totals.is_empty() {
                view! { <span>"nothing"</span> }.into_any()
            } else {
                data.totals
                    .iter()
                    .map(|t| {
                        let noun = if t.count == 1 { "invoice" } else { "invoices" };
                        view! { <span class="total">{format!("{} {noun} · {}", t.count, fmt_money(&t.balance))}</span> }
                    })
                    .collect_view()
                    .into_any()
            }}
        </div>
        {if data.rows.is_empty() {
            view! { <p class="card muted" data-test="no-matches">"No invoices match these filters."</p> }.into_any()
        } else {
            view! {
                <div class="card table-card">
                    <div class="table-wrap">
                        <table class="table" data-test="invoices">
                            <thead>
                                <tr>
                                    <th>"Invoice"</th>
                                    <th>"Customer"</th>
                                    <th>"Status"</th>
                                    <th>"Issued"</th>
                                    <th>"Due"</th>
                                    <th>"Overdue"</th>
                                    <th class="num">"Total"</th>
                                    <th class="num">"Balance"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {data
                                    .rows
                                    .into_iter()
                                    .map(|row| {
                                        view! {
                                            <tr>
                                                <td><A href=format!("/invoices/{}", row.id) attr:class="strong">{row.number.clone()}</A></td>
                                                <td><A href=format!("/customers/{}", row.customer_id)>{row.customer_name.clone()}</A></td>
                                                <td><StatusBadge status=row.status /></td>
                                                <td>{row.issue_date.clone()}</td>
                                                <td>{row.due_date.clone()}</td>
                                                <td><OverdueBadge days=row.days_overdue /></td>
                                                <td class="num">{fmt_money(&row.total)}</td>
                                                <td class="num">{fmt_money(&row.balance)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                </div>
            }
            .into_any()
        }}
        <Pager first next />
    }
    .into_any()
}

#[component]
pub fn InvoiceDetailPage() -> impl IntoView {
    let id = route_id();
    let detail = Resource::new(move || id.get(), fetch_invoice);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading invoice…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <Title text="Invoice" /> <LoadError error /> }.into_any(),
                    Ok(d) => {
                        let row = d.row.clone();
                        view! {
                            <Title text=format!("Invoice {}", row.number) />
                            <nav class="breadcrumbs"><a href="/invoices">"Invoices"</a>" / "{row.number.clone()}</nav>
                            <header class="page-header">
                                <h1 data-test="invoice-number">{format!("Invoice {}", row.number)}</h1>
                                <p class="subtitle">
                                    <A href=format!("/customers/{}", row.customer_id)>{row.customer_name.clone()}</A>
                                    " · "
                                    <StatusBadge status=row.status />
                                </p>
                            </header>
                            <section class="kpis">
                                <div class="kpi"><span class="kpi-label">"Balance"</span><span class="kpi-value">{fmt_money(&row.balance)}</span><span class="kpi-hint">{format!("of {} total", fmt_money(&row.total))}</span></div>
                                <div class="kpi"><span class="kpi-label">"Paid"</span><span class="kpi-value">{fmt_money(&d.paid)}</span><span class="kpi-hint">"So far"</span></div>
                                <div class="kpi"><span class="kpi-label">"Overdue"</span><span class="kpi-value">{row.days_overdue.map_or("—".to_owned(), |days| format!("{days} days"))}</span><span class="kpi-hint">{format!("Due {}", row.due_date)}</span></div>
                            </section>
                            <section class="card">
                                <dl class="facts">
                                    <dt>"Issued"</dt><dd>{row.issue_date.clone()}</dd>
                                    <dt>"Due"</dt><dd>{row.due_date.clone()}</dd>
                                    <dt>"Payment expected"</dt><dd>{if row.payment_expected_date.is_empty() { "—".to_owned() } else { row.payment_expected_date.clone() }}</dd>
                                    <dt>"Currency"</dt><dd>{row.total.currency.code().to_owned()}</dd>
                                    <dt>"Customer's number"</dt><dd>{if d.customer_phone.is_empty() { d.customer_phone_reason.clone() } else { format!("{} ({})", d.customer_phone, d.customer_phone_reason) }}</dd>
                                    <dt>"Source"</dt><dd>{format!("{} · {}", d.source, d.external_id)}</dd>
                                </dl>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
