//! The calls pages: the calls list (live), a call's detail and timeline, the "needs a human"
//! queue, and the dashboard's call figures. Open pages follow the live feed (`/api/live`,
//! server-sent events): a call's change shows within a second, without reloading.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::api::{ResolveReview, fetch_call, fetch_call_kpis, fetch_review_queue, list_calls};
use super::views::{
    CallDetail, CallFilter, CallKpis, CallPage, CallRow, OUTCOMES, REVIEW_ACTIONS, ReviewItem,
    call_status_label, outcome_label,
};
use crate::accounts::pages::{FormError, action_error};
use crate::receivables::pages::{LoadError, Pager, route_id};
use crate::receivables::views::encode_component;
use crate::shell::EmptyState;
use crate::shell::layout::use_session;

/// A counter that goes up whenever the organization's calls or reminders change (in the
/// browser; it stays 0 while rendering on the server). Resources that read it refetch.
pub fn use_live() -> ReadSignal<u64> {
    let (version, set_version) = signal(0_u64);
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        if let Ok(source) = web_sys::EventSource::new("/api/live") {
            let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
                set_version.update(|v| *v += 1);
            });
            let _ = source
                .add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
            let handles = StoredValue::new_local((source, on_change));
            on_cleanup(move || handles.with_value(|(source, _)| source.close()));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_version;
    version
}

#[component]
fn CallBadge(row: CallRow) -> impl IntoView {
    let live = row.is_live();
    let class = if live {
        format!("badge call-live call-{}", row.status)
    } else {
        format!("badge call-{}", row.status)
    };
    view! { <span class=class data-test="call-status">{call_status_label(&row.status)}</span> }
}

#[component]
fn Outcome(row: CallRow) -> impl IntoView {
    if row.is_live() {
        return view! { <span class="muted">"—"</span> }.into_any();
    }
    let label = outcome_label(&row.outcome);
    let extra = (!row.promised_date.is_empty()).then(|| format!(" by {}", row.promised_date));
    view! {
        <span class=format!("outcome outcome-{}", row.outcome) data-test="call-outcome" data-outcome=row.outcome.clone()>
            {label}{extra}
        </span>
    }
    .into_any()
}

#[component]
fn Simulated(simulated: bool) -> impl IntoView {
    simulated.then(|| view! { <span class="tag simulated" title="Placed by the call simulator: nobody was dialled">"Simulated"</span> })
}

#[component]
pub fn CallsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| CallFilter {
            outcome: q.get("outcome").unwrap_or_default(),
            from: q.get("from").unwrap_or_default(),
            to: q.get("to").unwrap_or_default(),
            customer: q.get("customer").unwrap_or_default(),
            after: q.get("after"),
        })
    });
    let live = use_live();
    let page = Resource::new(move || (filter.get(), live.get()), |(f, _)| list_calls(f));
    view! {
        <Title text="Calls" />
        <header class="page-header with-actions">
            <div>
                <h1>"Calls"</h1>
                <p class="subtitle">"Every call Duecall placed, as it happens, and what the customer said."</p>
            </div>
            <div class="actions">
                <a class="button" href="/calls/review" data-test="open-review">"Needs a human"</a>
                <a class="button" href="/reminders">"Reminders"</a>
            </div>
        </header>
        <Filters filter=filter.get_untracked() />
        <Transition fallback=|| view! { <p class="loading">"Loading calls…"</p> }>
            {move || Suspend::new(async move {
                let current = filter.get();
                match page.await {
                    Ok(data) => view! { <CallList filter=current data /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Filters(filter: CallFilter) -> impl IntoView {
    let outcome = filter.outcome.clone();
    view! {
        <Form method="GET" action="/calls" attr:class="filters" attr:data-test="call-filters">
            {(!filter.customer.is_empty()).then(|| view! { <input type="hidden" name="customer" value=filter.customer.clone() /> })}
            <label>
                <span>"Outcome"</span>
                <select name="outcome" data-test="filter-outcome">
                    <option value="" selected=outcome.is_empty()>"Any"</option>
                    {OUTCOMES.iter().map(|(value, label)| view! {
                        <option value=*value selected=outcome == *value>{*label}</option>
                    }).collect_view()}
                </select>
            </label>
            <label><span>"From"</span><input type="date" name="from" value=filter.from.clone() /></label>
            <label><span>"To"</span><input type="date" name="to" value=filter.to.clone() /></label>
            <button type="submit" class="button">"Filter"</button>
            <a class="button subtle" href="/calls">"Clear"</a>
        </Form>
    }
}

#[component]
fn CallList(filter: CallFilter, data: CallPage) -> impl IntoView {
    let mut base = vec![];
    for (key, value) in [
        ("outcome", &filter.outcome),
        ("from", &filter.from),
        ("to", &filter.to),
        ("customer", &filter.customer),
    ] {
        if !value.is_empty() {
            base.push(format!("{key}={}", encode_component(value)));
        }
    }
    let base = base.join("&");
    let next = data
        .next
        .clone()
        .map(|c| format!("/calls?{base}&after={}", encode_component(&c)));
    let first = filter.after.is_some().then(|| format!("/calls?{base}"));
    let filtered = !base.is_empty();
    let dot = if data.live > 0 {
        "live-dot on"
    } else {
        "live-dot"
    };
    view! {
        <p class="live-line" data-test="live-count">
            <span class=dot aria-hidden="true"></span>
            {match data.live {
                0 => "No call under way.".to_owned(),
                1 => "1 call under way.".to_owned(),
                n => format!("{n} calls under way."),
            }}
            {data.customer_name.clone().map(|name| format!(" Showing calls to {name}."))}
        </p>
        {if data.rows.is_empty() && !filtered && filter.after.is_none() {
            view! {
                <EmptyState title="No calls yet" action=("/reminders", "See the reminders")>
                    "Calls appear here as soon as Duecall places them: switch calls on in the calling rules once the dry-run calendar looks right."
                </EmptyState>
            }
            .into_any()
        } else if data.rows.is_empty() {
            view! { <p class="card muted" data-test="no-matches">"No calls match."</p> }.into_any()
        } else {
            view! {
                <div class="card table-card">
                    <div class="table-wrap">
                        <table class="table" data-test="calls">
                            <thead>
                                <tr>
                                    <th>"Placed"</th>
                                    <th>"Customer"</th>
                                    <th>"Invoice"</th>
                                    <th>"Status"</th>
                                    <th>"Outcome"</th>
                                    <th class="num">"Duration"</th>
                                    <th></th>
                                </tr>
                            </thead>
                            <tbody>
                                {data.rows.into_iter().map(|row| view! { <CallLine row /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                </div>
            }
            .into_any()
        }}
        <Pager first next />
    }
}

#[component]
fn CallLine(row: CallRow) -> impl IntoView {
    let (placed, customer, invoice, amount, duration) = (
        row.placed.clone(),
        row.customer_name.clone(),
        row.invoice_number.clone(),
        row.amount.clone(),
        row.duration.clone(),
    );
    view! {
        <tr data-call=row.id.to_string() class:live=row.is_live()>
            <td><A href=format!("/calls/{}", row.id)>{placed}</A></td>
            <td><A href=format!("/calls?customer={}", row.customer_id) attr:class="strong">{customer}</A></td>
            <td><A href=format!("/invoices/{}", row.invoice_id)>{invoice}</A>" "<span class="muted">{amount}</span></td>
            <td><CallBadge row=row.clone() /></td>
            <td><Outcome row=row.clone() /></td>
            <td class="num">{duration}</td>
            <td><Simulated simulated=row.simulated /></td>
        </tr>
    }
}

#[component]
pub fn CallDetailPage() -> impl IntoView {
    let id = route_id();
    let live = use_live();
    let detail = Resource::new(move || (id.get(), live.get()), |(id, _)| fetch_call(id));
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading call…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <Title text="Call" /> <LoadError error /> }.into_any(),
                    Ok(d) => view! { <CallView detail=d /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn CallView(detail: CallDetail) -> impl IntoView {
    let row = detail.row.clone();
    view! {
        <Title text=format!("Call · {}", row.customer_name) />
        <nav class="breadcrumbs"><a href="/calls">"Calls"</a>" / "{row.customer_name.clone()}</nav>
        <header class="page-header">
            <h1 data-test="call-title">{format!("{} · {}", row.customer_name, row.invoice_number)}</h1>
            <p class="subtitle">
                <CallBadge row=row.clone() />" "<Outcome row=row.clone() />" "<Simulated simulated=row.simulated />
                " · "{row.placed.clone()}
                " · "<A href=format!("/reminders/{}", row.reminder_id)>{format!("Reminder, attempt {}", row.attempt_no)}</A>
                " · "<A href=format!("/invoices/{}", row.invoice_id)>"Invoice"</A>
            </p>
        </header>
        <div class="grid-2">
            <section class="card">
                <h2>"The call"</h2>
                <dl class="facts">
                    <dt>"Number"</dt><dd>{detail.phone.clone()}</dd>
                    <dt>"Amount discussed"</dt><dd>{row.amount.clone()}</dd>
                    <dt>"Duration"</dt><dd data-test="call-duration">{if row.duration.is_empty() { "—".to_owned() } else { row.duration.clone() }}</dd>
                    <dt>"Outcome"</dt><dd><Outcome row=row.clone() /></dd>
                    {(!detail.callback_at.is_empty()).then(|| view! { <dt>"Call back"</dt><dd>{detail.callback_at.clone()}</dd> })}
                    {(!detail.reason.is_empty()).then(|| view! { <dt>"Reason"</dt><dd>{detail.reason.clone()}</dd> })}
                    <dt>"Notes"</dt><dd data-test="call-notes">{if detail.notes.is_empty() { "—".to_owned() } else { detail.notes.clone() }}</dd>
                    <dt>"Placed by"</dt><dd>{if row.simulated { "The call simulator (nobody was dialled)".to_owned() } else { format!("{} {}", detail.provider, detail.provider_ref) }}</dd>
                </dl>
            </section>
            <section class="card">
                <h2>"Timeline"</h2>
                <ol class="timeline" data-test="call-timeline">
                    {detail.timeline.into_iter().map(|e| view! {
                        <li>
                            <span class="when">{e.at}</span>
                            <span class="what">{e.title}</span>
                            {(!e.detail.is_empty()).then(|| view! { <span class="why">{e.detail}</span> })}
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        </div>
        <section class="card">
            <h2>"What the agent was given"</h2>
            <p class="muted">{format!("Language: {}", detail.language)}</p>
            <h3>"Opening"</h3>
            <p class="script" data-test="call-opening">{detail.opening.clone()}</p>
            <h3>"Script"</h3>
            <p class="script" data-test="call-script">{detail.script.clone()}</p>
        </section>
        <Deliveries deliveries=detail.deliveries />
    }
}

/// The webhook deliveries received about a call or reminder.
#[component]
pub fn Deliveries(deliveries: Vec<super::views::DeliveryView>) -> impl IntoView {
    view! {
        <section class="card" data-test="deliveries">
            <h2>"Reports received"</h2>
            {if deliveries.is_empty() {
                view! { <p class="muted">"No report received yet."</p> }.into_any()
            } else {
                deliveries.into_iter().map(|d| view! {
                    <details class="delivery">
                        <summary>
                            <span class="when">{d.received.clone()}</span>" "
                            <strong>{d.event_type.clone()}</strong>" "
                            <span class=if d.status_code == 200 { "badge ok" } else { "badge warn" }>{d.status_code}</span>" "
                            <span class="muted">{d.result.clone()}</span>
                            {(d.deliveries > 1).then(|| view! { <span class="muted">{format!(" (delivered {} times)", d.deliveries)}</span> })}
                        </summary>
                        <h4>"Headers (signatures removed)"</h4>
                        <pre>{d.headers.clone()}</pre>
                        <h4>"Body"</h4>
                        <pre>{d.body.clone()}</pre>
                    </details>
                }).collect_view().into_any()
            }}
        </section>
    }
}

#[component]
pub fn ReviewQueuePage() -> impl IntoView {
    let resolve = ServerAction::<ResolveReview>::new();
    let live = use_live();
    let items = Resource::new(
        move || (resolve.version().get(), live.get()),
        |_| fetch_review_queue(),
    );
    let error = action_error(resolve);
    view! {
        <Title text="Needs a human" />
        <nav class="breadcrumbs"><a href="/calls">"Calls"</a>" / Needs a human"</nav>
        <header class="page-header">
            <h1>"Needs a human"</h1>
            <p class="subtitle">"Disputes and customers who say they have paid: Duecall does not call about these invoices until someone here decides."</p>
        </header>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match items.await {
                    Ok(items) if items.is_empty() => view! {
                        <p class="card muted" data-test="review-empty">"Nothing is waiting for you."</p>
                    }.into_any(),
                    Ok(items) => view! { <ReviewList items resolve /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ReviewList(items: Vec<ReviewItem>, resolve: ServerAction<ResolveReview>) -> impl IntoView {
    let writer = use_session().org.role.can_write();
    view! {
        <div class="card table-card">
            <table class="table" data-test="review-queue">
                <thead><tr><th>"Customer"</th><th>"Invoice"</th><th>"Why"</th><th>"Since"</th><th></th></tr></thead>
                <tbody>
                    {items.into_iter().map(|item| {
                        let kind_label = if item.kind == "dispute" { "Dispute" } else { "Says it is paid" };
                        let id = item.invoice_id.to_string();
                        view! {
                            <tr data-review=item.kind.clone()>
                                <td><A href=format!("/customers/{}", item.customer_id) attr:class="strong">{item.customer_name.clone()}</A></td>
                                <td><A href=format!("/invoices/{}", item.invoice_id)>{item.invoice_number.clone()}</A>" "<span class="muted">{item.amount.clone()}</span></td>
                                <td>
                                    <span class=format!("badge review-{}", item.kind)>{kind_label}</span>" "{item.note.clone()}
                                    {item.call_id.map(|c| view! { " "<A href=format!("/calls/{c}")>"The call"</A> })}
                                </td>
                                <td class="muted">{item.since.clone()}</td>
                                <td class="actions">
                                    {writer.then(|| REVIEW_ACTIONS.iter().filter(|(k, _, _)| *k == item.kind).map(|(_, action, label)| {
                                        let id = id.clone();
                                        view! {
                                            <ActionForm action=resolve attr:class="inline">
                                                <input type="hidden" name="invoice_id" value=id />
                                                <input type="hidden" name="action" value=*action />
                                                <button type="submit" class="button" data-action=*action>{*label}</button>
                                            </ActionForm>
                                        }
                                    }).collect_view())}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The dashboard's call figures, following the live feed.
#[component]
pub fn CallKpisSection() -> impl IntoView {
    let live = use_live();
    let kpis = Resource::new(move || live.get(), |_| fetch_call_kpis());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                kpis.await.ok().map(|k| view! { <KpiCards k /> })
            })}
        </Transition>
    }
}

#[component]
fn KpiCards(k: CallKpis) -> impl IntoView {
    view! {
        <section class="kpis" aria-label="Calls" data-test="call-kpis">
            <div class="kpi"><span class="kpi-label">"Calls today"</span><span class="kpi-value" data-test="kpi-calls-today">{k.calls_today}</span><span class="kpi-hint"><a href="/calls">{if k.live > 0 { format!("{} under way", k.live) } else { "See all calls".to_owned() }}</a></span></div>
            <div class="kpi"><span class="kpi-label">"Connection rate"</span><span class="kpi-value">{k.connection_rate.map_or("—".to_owned(), |r| format!("{r}%"))}</span><span class="kpi-hint">"Calls answered, last 30 days"</span></div>
            <div class="kpi"><span class="kpi-label">"Promises made"</span><span class="kpi-value" data-test="kpi-promises">{k.promises}</span><span class="kpi-hint">{format!("{} promised, last 30 days", k.promised_amount)}</span></div>
            <div class="kpi"><span class="kpi-label">"Paid after a call"</span><span class="kpi-value">{k.paid_after_calls.clone()}</span><span class="kpi-hint">"Within 7 days of a conversation"</span></div>
            <div class="kpi"><span class="kpi-label">"Needs a human"</span><span class="kpi-value">{k.needs_human}</span><span class="kpi-hint"><a href="/calls/review">{if k.broken_promises > 0 { format!("{} broken promises", k.broken_promises) } else { "Disputes and payment claims".to_owned() }}</a></span></div>
        </section>
    }
}
