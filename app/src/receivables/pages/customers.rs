//! The customers list and a customer's detail view.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::{LoadError, OverdueBadge, Pager, PhoneBadge, StatusBadge, fmt_money, route_id};
use crate::receivables::api::{fetch_customer, list_customers};
use crate::receivables::model::PhoneStatus;
use crate::receivables::views::{CustomerFilter, CustomerPage, CustomerSort, encode_component};
use crate::shell::EmptyState;

#[component]
pub fn CustomersPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| query.with(|q| CustomerFilter::from_query(|k| q.get(k))));
    let page = Resource::new(move || filter.get(), list_customers);
    view! {
        <Title text="Customers" />
        <header class="page-header with-actions">
            <div>
                <h1>"Customers"</h1>
                <p class="subtitle">"Who owes what, how late, and the best number to reach them."</p>
            </div>
            <div class="actions">
                <a class="button" href=move || format!("/export/customers.csv?{}", filter.get().to_query()) data-test="export-customers" rel="external" download>
                    "Export CSV"
                </a>
                <a class="button" href="/integrations">"Import"</a>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading customers…"</p> }>
            {move || Suspend::new(async move {
                let current = filter.get();
                match page.await {
                    Ok(data) => view! { <CustomerList filter=current data /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn CustomerFilters(filter: CustomerFilter, countries: Vec<String>) -> impl IntoView {
    let phone = filter.phone;
    view! {
        <Form method="GET" action="/customers" attr:class="filters" attr:data-test="customer-filters">
            <label class="grow">
                <span>"Search"</span>
                <input type="search" name="q" value=filter.q.clone() placeholder="Name, company, email or phone" />
            </label>
            <label>
                <span>"Country"</span>
                <select name="country">
                    <option value="">"All"</option>
                    {countries
                        .into_iter()
                        .map(|c| {
                            let selected = c == filter.country;
                            view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                <span>"Phone"</span>
                <select name="phone">
                    <option value="">"Any"</option>
                    {[(PhoneStatus::Valid, "Valid number"), (PhoneStatus::Invalid, "Invalid number"), (PhoneStatus::Missing, "No number")]
                        .into_iter()
                        .map(|(status, label)| view! { <option value=status.as_str() selected=phone == Some(status)>{label}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                <span>"Sort"</span>
                <select name="sort">
                    {CustomerSort::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str() selected=s == filter.sort>{s.label()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="check">
                <input type="checkbox" name="overdue" value="1" checked=filter.overdue_only />
                <span>"Has overdue"</span>
            </label>
            <button type="submit" class="button primary">"Apply"</button>
            <a class="button" href="/customers">"Reset"</a>
        </Form>
    }
}

#[component]
fn CustomerList(filter: CustomerFilter, data: CustomerPage) -> impl IntoView {
    let filtered = filter != CustomerFilter::default();
    if data.rows.is_empty() && !filtered {
        return view! {
            <EmptyState title="No customers yet" action=("/integrations", "Import customers")>
                "Customers appear here once you connect your accounting system or import a CSV file: who owes what, how late, and the best number to reach them."
            </EmptyState>
        }
        .into_any();
    }
    let base = filter.to_query();
    let next = data
        .next
        .clone()
        .map(|cursor| format!("/customers?{base}&after={}", encode_component(&cursor)));
    let first = filter.after.is_some().then(|| format!("/customers?{base}"));
    view! {
        <CustomerFilters filter=filter.clone() countries=data.countries.clone() />
        {if data.rows.is_empty() {
            view! { <p class="card muted" data-test="no-matches">"No customers match these filters."</p> }.into_any()
        } else {
            view! {
                <div class="card table-card">
                    <div class="table-wrap">
                        <table class="table" data-test="customers">
                            <thead>
                                <tr>
                                    <th>"Customer"</th>
                                    <th>"Country"</th>
                                    <th class="num">"Outstanding"</th>
                                    <th>"Oldest overdue"</th>
                                    <th>"Phone"</th>
                                    <th class="num">"Open invoices"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {data
                                    .rows
                                    .into_iter()
                                    .map(|row| {
                                        view! {
                                            <tr>
                                                <td>
                                                    <A href=format!("/customers/{}", row.id) attr:class="strong">{row.display_name.clone()}</A>
                                                    {row.opted_out.then(|| view! { <span class="badge">"Do not call"</span> })}
                                                    <div class="muted small">{row.email.clone()}</div>
                                                </td>
                                                <td>{row.country.clone()}</td>
                                                <td class="num">{fmt_money(&row.outstanding)}</td>
                                                <td><OverdueBadge days=row.oldest_overdue_days /></td>
                                                <td><PhoneBadge status=row.phone_status number=row.best_phone.clone() reason=row.best_phone_reason.clone() /></td>
                                                <td class="num">{row.open_invoices}</td>
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
pub fn CustomerDetailPage() -> impl IntoView {
    let id = route_id();
    let detail = Resource::new(move || id.get(), fetch_customer);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading customer…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <Title text="Customer" /> <LoadError error /> }.into_any(),
                    Ok(c) => {
                        let row = c.row.clone();
                        view! {
                            <Title text=row.display_name.clone() />
                            <nav class="breadcrumbs"><a href="/customers">"Customers"</a>" / "{row.display_name.clone()}</nav>
                            <header class="page-header">
                                <h1 data-test="customer-name">{row.display_name.clone()}</h1>
                                <p class="subtitle">
                                    {row.company_name.clone()}
                                    {(!c.active).then(|| view! { <span class="badge">"Inactive"</span> })}
                                    {row.opted_out.then(|| view! { <span class="badge">"Do not call"</span> })}
                                </p>
                            </header>
                            <section class="kpis">
                                <div class="kpi"><span class="kpi-label">"Outstanding"</span><span class="kpi-value">{fmt_money(&row.outstanding)}</span><span class="kpi-hint">{format!("{} open invoices", row.open_invoices)}</span></div>
                                <div class="kpi"><span class="kpi-label">"Oldest overdue"</span><span class="kpi-value">{row.oldest_overdue_days.map_or("—".to_owned(), |d| format!("{d} days"))}</span><span class="kpi-hint">"Past its due date"</span></div>
                                <div class="kpi"><span class="kpi-label">"Number to call"</span><span class="kpi-value small-value">{if row.best_phone.is_empty() { "None".to_owned() } else { row.best_phone.clone() }}</span><span class="kpi-hint" data-test="phone-reason">{row.best_phone_reason.clone()}</span></div>
                            </section>
                            <div class="grid-2">
                                <section class="card">
                                    <h2>"Contact persons"</h2>
                                    {if c.contacts.is_empty() {
                                        view! { <p class="muted">"No contact persons on file."</p> }.into_any()
                                    } else {
                                        view! {
                                            <ul class="contacts">
                                                {c.contacts.into_iter().map(|p| view! {
                                                    <li>
                                                        <strong>{if p.name.is_empty() { "Unnamed contact".to_owned() } else { p.name.clone() }}</strong>
                                                        {p.is_primary.then(|| view! { <span class="badge">"Primary"</span> })}
                                                        <div class="muted small">{p.email.clone()}</div>
                                                        <NumberLine label="Mobile" raw=p.mobile_raw e164=p.mobile_e164 error=p.mobile_error />
                                                        <NumberLine label="Phone" raw=p.phone_raw e164=p.phone_e164 error=p.phone_error />
                                                    </li>
                                                }).collect_view()}
                                            </ul>
                                        }.into_any()
                                    }}
                                </section>
                                <section class="card">
                                    <h2>"Billing"</h2>
                                    <address>{c.address.into_iter().map(|line| view! { <div>{line}</div> }).collect_view()}</address>
                                    <dl class="facts">
                                        <dt>"Time zone"</dt><dd>{if c.timezone.is_empty() { "Not known (the organization's zone is used)".to_owned() } else { c.timezone.clone() }}</dd>
                                        <dt>"Currency"</dt><dd>{row.outstanding.currency.code().to_owned()}</dd>
                                        <dt>"Source"</dt><dd>{format!("{} · {}", c.source, c.external_id)}</dd>
                                    </dl>
                                    {(!c.notes.is_empty()).then(|| view! { <p class="notes">{c.notes.clone()}</p> })}
                                </section>
                            </div>
                            <section class="card table-card">
                                <h2>"Unpaid invoices"</h2>
                                {if c.open_invoices.is_empty() {
                                    view! { <p class="muted">"Nothing is owed right now."</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap">
                                            <table class="table" data-test="customer-invoices">
                                                <thead><tr><th>"Invoice"</th><th>"Status"</th><th>"Due"</th><th>"Overdue"</th><th class="num">"Balance"</th></tr></thead>
                                                <tbody>
                                                    {c.open_invoices.into_iter().map(|i| view! {
                                                        <tr>
                                                            <td><A href=format!("/invoices/{}", i.id)>{i.number.clone()}</A></td>
                                                            <td><StatusBadge status=i.status /></td>
                                                            <td>{i.due_date.clone()}</td>
                                                            <td><OverdueBadge days=i.days_overdue /></td>
                                                            <td class="num">{fmt_money(&i.balance)}</td>
                                                        </tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        </div>
                                    }.into_any()
                                }}
                                <p><a href=format!("/invoices?customer={}", row.id)>"All invoices of this customer →"</a></p>
                            </section>
                            <section class="card muted">
                                <h2>"Reminders and calls"</h2>
                                <p>"Scheduled reminders and the history of calls to this customer will appear here."</p>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn NumberLine(label: &'static str, raw: String, e164: String, error: String) -> impl IntoView {
    (!raw.is_empty()).then(|| {
        view! {
            <div class="number-line">
                <span class="muted">{label}": "</span>
                {if e164.is_empty() {
                    view! { <span class="phone phone-invalid" title=error.clone()>{raw.clone()}</span><span class="small field-error">{format!(" {error}")}</span> }.into_any()
                } else {
                    view! { <span class="phone phone-valid">{e164.clone()}</span>{(raw != e164).then(|| view! { <span class="muted small">{format!(" (written {raw})")}</span> })} }.into_any()
                }}
            </div>
        }
    })
}
