//! The reminder pages: the reminders list and a reminder's history and actions, the dry-run
//! calendar, and the calling rules (Settings → Calling).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::api::{
    ActOnReminder, SaveCallingRules, SwitchCalls, fetch_calendar, fetch_calling_rules,
    fetch_reminder, list_reminders,
};
use super::profile::{DAY_FIELDS, ProfileForm};
use super::views::{
    ACTIONS, CALENDAR_DAYS, Calendar, ReminderDetail, ReminderFilter, ReminderPage, STATUSES,
    status_label,
};
use crate::accounts::pages::{FieldMessage, FormError, action_error};
use crate::error::AppError;
use crate::receivables::pages::{LoadError, Pager, route_id};
use crate::receivables::views::encode_component;
use crate::shell::EmptyState;
use crate::shell::layout::use_session;

#[component]
fn ReminderBadge(status: String) -> impl IntoView {
    view! { <span class=format!("badge reminder-{status}")>{status_label(&status)}</span> }
}

/// The banner that says whether calls are on, with the switch for admins.
#[component]
fn CallsSwitch(enabled: bool) -> impl IntoView {
    let admin = use_session().org.role.can_administer();
    let switch = ServerAction::<SwitchCalls>::new();
    let error = action_error(switch);
    // After a switch, reload so every part of the page shows the new state.
    Effect::new(move |_| {
        if matches!(switch.value().get(), Some(Ok(()))) {
            #[cfg(feature = "hydrate")]
            let _ = window().location().reload();
        }
    });
    let (class, text) = if enabled {
        (
            "alert calls-on",
            "Calls are on: Duecall calls the debtors below under your calling rules.",
        )
    } else {
        (
            "alert calls-off",
            "Calls are off. Nothing is dialled until you switch them on — check the dry-run calendar first.",
        )
    };
    view! {
        <div class=class data-test="calls-state" data-enabled=enabled.to_string()>
            <span>{text}</span>
            {admin.then(|| view! {
                <ActionForm action=switch attr:class="inline" attr:data-test="calls-switch">
                    <input type="hidden" name="enabled" value=(!enabled).to_string() />
                    <button type="submit" class=if enabled { "button" } else { "button primary" }>
                        {if enabled { "Switch calls off" } else { "Switch calls on" }}
                    </button>
                </ActionForm>
            })}
            <FormError error />
        </div>
    }
}

#[component]
pub fn RemindersPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| ReminderFilter {
            status: q.get("status").unwrap_or_default(),
            after: q.get("after"),
        })
    });
    let live = crate::calls::pages::use_live();
    let page = Resource::new(
        move || (filter.get(), live.get()),
        |(f, _)| list_reminders(f),
    );
    view! {
        <Title text="Reminders" />
        <header class="page-header with-actions">
            <div>
                <h1>"Reminders"</h1>
                <p class="subtitle">"Who Duecall will call about which invoice, when — and why not."</p>
            </div>
            <div class="actions">
                <a class="button" href="/reminders/calendar" data-test="open-calendar">"Dry-run calendar"</a>
                <a class="button" href="/settings/calling">"Calling rules"</a>
            </div>
        </header>
        <Transition fallback=|| view! { <p class="loading">"Loading reminders…"</p> }>
            {move || Suspend::new(async move {
                let current = filter.get();
                match page.await {
                    Ok(data) => view! { <ReminderList filter=current data /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ReminderList(filter: ReminderFilter, data: ReminderPage) -> impl IntoView {
    let total: i64 = data.counts.iter().map(|(_, n)| n).sum();
    let count = |status: &str| {
        data.counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    };
    let open: i64 = ["pending", "in_progress", "processing", "failed", "paused"]
        .iter()
        .map(|s| count(s))
        .sum();
    let selected = if filter.status.is_empty() {
        "open".to_owned()
    } else {
        filter.status.clone()
    };
    let mut tabs = vec![
        ("open".to_owned(), "Open".to_owned(), open),
        ("all".to_owned(), "All".to_owned(), total),
    ];
    tabs.extend(
        STATUSES
            .iter()
            .map(|(s, label)| ((*s).to_owned(), (*label).to_owned(), count(s))),
    );
    let base = format!("status={}", encode_component(&selected));
    let next = data
        .next
        .clone()
        .map(|c| format!("/reminders?{base}&after={}", encode_component(&c)));
    let first = filter.after.is_some().then(|| format!("/reminders?{base}"));
    view! {
        <CallsSwitch enabled=data.calls_enabled />
        {if total == 0 {
            view! {
                <EmptyState title="No reminders yet" action=("/reminders/calendar", "Open the dry-run calendar")>
                    "Reminders are made from your unpaid invoices and the reminder sequence in the calling rules. Import invoices or connect your accounting system, then see who would be called in the dry-run calendar."
                </EmptyState>
            }
            .into_any()
        } else {
            view! {
                <nav class="tabs" aria-label="Status" data-test="status-tabs">
                    {tabs
                        .into_iter()
                        .filter(|(s, _, n)| *n > 0 || s == "open" || s == "all" || *s == selected)
                        .map(|(s, label, n)| {
                            let current = s == selected;
                            view! {
                                <a href=format!("/reminders?status={s}") class=if current { "tab current" } else { "tab" } aria-current=current.then_some("page")>
                                    {format!("{label} ({n})")}
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
                {if data.rows.is_empty() {
                    view! { <p class="card muted" data-test="no-matches">"No reminders in this state."</p> }.into_any()
                } else {
                    view! {
                        <div class="card table-card">
                            <div class="table-wrap">
                                <table class="table" data-test="reminders">
                                    <thead>
                                        <tr>
                                            <th>"Customer"</th>
                                            <th>"Invoice"</th>
                                            <th>"Step"</th>
                                            <th>"Status"</th>
                                            <th>"Next attempt (theirs)"</th>
                                            <th>"(yours)"</th>
                                            <th class="num">"Attempts"</th>
                                            <th>"Reason"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {data.rows.into_iter().map(|row| view! {
                                            <tr>
                                                <td><A href=format!("/reminders/{}", row.id) attr:class="strong">{row.customer_name.clone()}</A></td>
                                                <td><A href=format!("/invoices/{}", row.invoice_id)>{row.invoice_number.clone()}</A>" "<span class="muted">{row.amount.clone()}</span></td>
                                                <td>{row.step.clone()}</td>
                                                <td><ReminderBadge status=row.status.clone() /></td>
                                                <td>{if row.next_debtor.is_empty() { "unknown".to_owned() } else { row.next_debtor.clone() }}</td>
                                                <td class="muted">{row.next_org.clone()}</td>
                                                <td class="num">{format!("{}/{}", row.attempts, row.max_attempts)}</td>
                                                <td class="reason">{row.reason.clone()}</td>
                                            </tr>
                                        }).collect_view()}
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
        }}
    }
}

#[component]
pub fn ReminderDetailPage() -> impl IntoView {
    let id = route_id();
    let act = ServerAction::<ActOnReminder>::new();
    let detail = Resource::new(
        move || (id.get(), act.version().get()),
        |(id, _)| fetch_reminder(id),
    );
    let error = action_error(act);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading reminder…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <Title text="Reminder" /> <LoadError error /> }.into_any(),
                    Ok(d) => view! { <ReminderView detail=d act error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ReminderView(
    detail: ReminderDetail,
    act: ServerAction<ActOnReminder>,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let row = detail.row.clone();
    let writer = use_session().org.role.can_write();
    let id = row.id.to_string();
    view! {
        <Title text=format!("Reminder · {}", row.customer_name) />
        <nav class="breadcrumbs"><a href="/reminders">"Reminders"</a>" / "{row.customer_name.clone()}</nav>
        <header class="page-header">
            <h1 data-test="reminder-title">{format!("{} · {}", row.customer_name, row.invoice_number)}</h1>
            <p class="subtitle">
                <ReminderBadge status=row.status.clone() />" "{row.step.clone()}" · "{row.amount.clone()}
                " · "<A href=format!("/invoices/{}", row.invoice_id)>"Invoice"</A>
                " · "<A href=format!("/customers/{}", row.customer_id)>"Customer"</A>
            </p>
        </header>
        <section class="card">
            <dl class="facts">
                <dt>"Next attempt, their time"</dt><dd>{if row.next_debtor.is_empty() { "Unknown time zone".to_owned() } else { row.next_debtor.clone() }}</dd>
                <dt>"Your time"</dt><dd>{row.next_org.clone()}</dd>
                <dt>"Attempts"</dt><dd>{format!("{} of {}", row.attempts, row.max_attempts)}</dd>
                <dt>"Last reason"</dt><dd data-test="reminder-reason">{if row.reason.is_empty() { "—".to_owned() } else { row.reason.clone() }}</dd>
            </dl>
            {writer.then(|| {
                let disputable = detail.actions.iter().any(|a| a == "dispute");
                let buttons: Vec<String> = detail.actions.iter().filter(|a| *a != "dispute").cloned().collect();
                let dispute_id = id.clone();
                view! {
                <div class="reminder-actions" data-test="reminder-actions">
                    {buttons.into_iter().map(|action| {
                        let label = ACTIONS.iter().find(|(a, _)| *a == action).map_or("", |(_, l)| l);
                        let id = id.clone();
                        view! {
                            <ActionForm action=act attr:class="inline">
                                <input type="hidden" name="id" value=id.clone() />
                                <input type="hidden" name="action" value=action.clone() />
                                <button type="submit" class="button" data-action=action.clone()>{label}</button>
                            </ActionForm>
                        }
                    }).collect_view()}
                    {disputable.then(|| view! {
                        <ActionForm action=act attr:class="inline dispute">
                            <input type="hidden" name="id" value=dispute_id />
                            <input type="hidden" name="action" value="dispute" />
                            <input type="text" name="reason" placeholder="Why is it disputed?" maxlength="500" aria-label="Dispute reason" />
                            <button type="submit" class="button" data-action="dispute">"Mark disputed"</button>
                        </ActionForm>
                    })}
                    <p class="hint">"“Call now” makes the reminder due at once; every calling rule still applies."</p>
                </div>
                }
            })}
            <FormError error />
        </section>
        <section class="card">
            <h2>"Calls"</h2>
            {if detail.attempts.is_empty() {
                view! { <p class="muted">"No call placed yet."</p> }.into_any()
            } else {
                view! {
                    <table class="table" data-test="attempts">
                        <thead><tr><th>"#"</th><th>"Dialled"</th><th>"Number"</th><th>"Status"</th><th>"Outcome"</th><th>"By"</th><th></th></tr></thead>
                        <tbody>
                            {detail.attempts.into_iter().map(|a| view! {
                                <tr>
                                    <td>{a.attempt_no}</td>
                                    <td>{a.dialled_at}</td>
                                    <td>{a.phone}</td>
                                    <td>{a.status.replace('_', " ")}</td>
                                    <td>{if a.outcome.is_empty() { a.reason } else { a.outcome.replace('_', " ") }}</td>
                                    <td>{if a.provider == "simulator" { "Simulated call".to_owned() } else { a.provider }}</td>
                                    <td><A href=format!("/calls/{}", a.id)>"Details"</A></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }
                .into_any()
            }}
        </section>
        <section class="card">
            <h2>"History"</h2>
            {if detail.history.is_empty() {
                view! { <p class="muted">"Nothing has happened to this reminder yet."</p> }.into_any()
            } else {
                view! {
                    <ol class="timeline" data-test="history">
                        {detail.history.into_iter().map(|h| view! {
                            <li>
                                <span class="when">{h.at}</span>
                                <span class="what">{format!("{}: {} → {}", h.transition, status_label(&h.from), status_label(&h.to))}</span>
                                <span class="who muted">{h.actor}</span>
                                {(!h.reason.is_empty()).then(|| view! { <span class="why">{h.reason}</span> })}
                            </li>
                        }).collect_view()}
                    </ol>
                }
                .into_any()
            }}
        </section>
        <crate::calls::pages::Deliveries deliveries=detail.deliveries />
    }
}

#[component]
pub fn CalendarPage() -> impl IntoView {
    let query = use_query_map();
    let days = Memo::new(move |_| {
        query.with(|q| {
            q.get("days")
                .and_then(|d| d.parse().ok())
                .unwrap_or(CALENDAR_DAYS)
        })
    });
    let calendar = Resource::new(move || days.get(), fetch_calendar);
    view! {
        <Title text="Dry-run calendar" />
        <nav class="breadcrumbs"><a href="/reminders">"Reminders"</a>" / Dry-run calendar"</nav>
        <header class="page-header with-actions">
            <div>
                <h1>"Dry-run calendar"</h1>
                <p class="subtitle">"Who Duecall would call, and when, under your calling rules and the law's — and who it would not call, and why. Nobody is called from this page."</p>
            </div>
            <div class="actions">
                <Form method="GET" action="/reminders/calendar" attr:class="inline">
                    <label>
                        <span>"Days ahead"</span>
                        <select name="days" data-test="calendar-days">
                            {[7u32, 14, 30, 60].into_iter().map(|d| view! { <option value=d.to_string() selected=move || days.get() == d>{d.to_string()}</option> }).collect_view()}
                        </select>
                    </label>
                    <button type="submit" class="button">"Show"</button>
                </Form>
                <a class="button" href="/settings/calling">"Calling rules"</a>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Working out the calendar…"</p> }>
            {move || Suspend::new(async move {
                match calendar.await {
                    Ok(data) => view! { <CalendarView data /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn CalendarView(data: Calendar) -> impl IntoView {
    let not_called: usize = data.not_called.iter().map(|g| g.total).sum();
    view! {
        <CallsSwitch enabled=data.calls_enabled />
        <section class="kpis">
            <div class="kpi"><span class="kpi-label">"Calls planned"</span><span class="kpi-value" data-test="planned-total">{data.total_calls}</span><span class="kpi-hint">{format!("next {} days", data.days_ahead)}</span></div>
            <div class="kpi"><span class="kpi-label">"Open invoices"</span><span class="kpi-value">{data.open_invoices}</span><span class="kpi-hint">"unpaid, with a balance"</span></div>
            <div class="kpi"><span class="kpi-label">"Not called"</span><span class="kpi-value" data-test="not-called-total">{not_called}</span><span class="kpi-hint">"see the reasons below"</span></div>
        </section>
        <div class="calendar-grid">
            <section class="card" aria-labelledby="planned-heading">
                <h2 id="planned-heading">"Planned calls"</h2>
                <p class="muted">{format!("Times are yours ({}) and the debtor's own.", data.timezone)}</p>
                {data.days.into_iter().map(|day| view! {
                    <details class="calendar-day" open={day.total > 0} data-test="calendar-day">
                        <summary><strong>{day.label.clone()}</strong>" "<span class="muted">{if day.total == 1 { "1 call".to_owned() } else { format!("{} calls", day.total) }}</span></summary>
                        {(!day.calls.is_empty()).then({ let calls = day.calls.clone(); move || view! {
                            <table class="table compact">
                                <thead><tr><th>"Yours"</th><th>"Theirs"</th><th>"Customer"</th><th>"Invoice"</th><th>"Step"</th></tr></thead>
                                <tbody>
                                    {calls.into_iter().map(|c| view! {
                                        <tr>
                                            <td>{c.org_time.clone()}</td>
                                            <td>{c.debtor_time.clone()}</td>
                                            <td><A href=format!("/customers/{}", c.customer_id)>{c.customer_name.clone()}</A></td>
                                            <td><A href=format!("/invoices/{}", c.invoice_id)>{c.invoice_number.clone()}</A>" "<span class="muted">{c.amount.clone()}</span></td>
                                            <td>{c.step.clone()}{(!c.note.is_empty()).then(|| view! { <span class="hint">{c.note.clone()}</span> })}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }})}
                        {(day.total > day.calls.len()).then(|| view! { <p class="muted">{format!("… and {} more", day.total - day.calls.len())}</p> })}
                    </details>
                }).collect_view()}
            </section>
            <section class="card" aria-labelledby="not-called-heading" data-test="not-called">
                <h2 id="not-called-heading">"Not called, and why"</h2>
                {if data.not_called.is_empty() {
                    view! { <p class="muted">"Every open invoice has a call planned."</p> }.into_any()
                } else {
                    data.not_called.into_iter().map(|group| view! {
                        <details class="reason-group" data-kind=group.kind.clone()>
                            <summary><strong>{group.label.clone()}</strong>" "<span class="badge">{group.total}</span></summary>
                            <ul>
                                {group.invoices.clone().into_iter().map(|i| view! {
                                    <li>
                                        <A href=format!("/invoices/{}", i.invoice_id)>{i.invoice_number.clone()}</A>
                                        " · "{i.customer_name.clone()}" · "{i.amount.clone()}
                                        <span class="why">{i.reason.clone()}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                            {(group.total > group.invoices.len()).then(|| view! { <p class="muted">{format!("… and {} more", group.total - group.invoices.len())}</p> })}
                        </details>
                    }).collect_view().into_any()
                }}
            </section>
        </div>
    }
}

#[component]
pub fn CallingRulesPage() -> impl IntoView {
    let save = ServerAction::<SaveCallingRules>::new();
    let rules = Resource::new_blocking(|| (), |_| fetch_calling_rules());
    let error = action_error(save);
    let admin = use_session().org.role.can_administer();
    view! {
        <Title text="Calling rules" />
        <nav class="breadcrumbs"><a href="/settings">"Settings"</a>" / Calling rules"</nav>
        <header class="page-header with-actions">
            <div>
                <h1>"Calling rules"</h1>
                <p class="subtitle">"Who calls, what is said, when, and how often. The law's limits always apply on top: calls only 08:00–21:00 in the debtor's time (08:00–19:00 in India), at most 7 attempts in 7 days per invoice, and a week's pause after a conversation."</p>
            </div>
            <div class="actions"><a class="button" href="/reminders/calendar">"Dry-run calendar"</a></div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let profile = match rules.await {
                    Ok(profile) => profile,
                    Err(error) => return view! { <LoadError error /> }.into_any(),
                };
                let form = ProfileForm::from_profile(&profile);
                let text = move |name: &'static str, label: &'static str, value: String, hint: &'static str| view! {
                    <label>
                        {label}
                        <input type="text" name=format!("form[{name}]") value=value disabled=!admin />
                        {(!hint.is_empty()).then(|| view! { <span class="hint">{hint}</span> })}
                        <FieldMessage error field=name />
                    </label>
                };
                view! {
                    <CallsSwitch enabled=profile.calls_enabled />
                    <ActionForm action=save attr:class="form" attr:data-test="calling-rules">
                        <FormError error=Signal::derive(move || error.get().filter(|e| !matches!(e, AppError::Validation(_)))) />
                        <section class="card">
                            <h2>"Who is calling"</h2>
                            <div class="grid-2">
                                {text("business_name", "Business name", form.business_name.clone(), "")}
                                {text("caller_identity", "Caller identity, as spoken", form.caller_identity.clone(), "How the agent names you on the phone.")}
                                {text("language", "Language", form.language.clone(), "e.g. en, en-GB, hi")}
                                {text("timezone", "Your time zone", form.timezone.clone(), "Your calendar and daily budget follow it.")}
                                {text("payment_link", "Payment link", form.payment_link.clone(), "Optional: https://…")}
                            </div>
                            <label>
                                "Call script"
                                <textarea name="form[script]" rows="4" disabled=!admin>{form.script.clone()}</textarea>
                                <span class="hint">"Placeholders: {customer} {invoice_number} {amount} {due_date} {business_name} {payment_link}. Every call first says who is calling, that it is an AI, that it is recorded and how to opt out."</span>
                                <FieldMessage error field="script" />
                            </label>
                            <p class="muted opening" data-test="opening">{profile.opening()}</p>
                        </section>
                        <section class="card">
                            <h2>"When"</h2>
                            <div class="grid-2">
                                {text("call_start", "Calls from", form.call_start.clone(), "HH:MM in the debtor's time")}
                                {text("call_end", "Calls until", form.call_end.clone(), "HH:MM, narrowed to the law's hours")}
                            </div>
                            <fieldset class="days">
                                <legend>"Calling days"</legend>
                                {DAY_FIELDS.iter().enumerate().map(|(i, (name, label))| view! {
                                    <label class="check">
                                        <input type="checkbox" name=format!("form[{name}]") checked=profile.call_days[i] disabled=!admin />
                                        {*label}
                                    </label>
                                }).collect_view()}
                                <FieldMessage error field="call_days" />
                            </fieldset>
                            <label>
                                "Holidays"
                                <textarea name="form[holidays]" rows="2" disabled=!admin placeholder="2026-12-25, 2026-12-26">{form.holidays.clone()}</textarea>
                                <span class="hint">"Dates when nobody is called (the debtor's local date)."</span>
                                <FieldMessage error field="holidays" />
                            </label>
                        </section>
                        <section class="card">
                            <h2>"How often"</h2>
                            <div class="grid-2">
                                {text("sequence", "Reminder sequence", form.sequence.clone(), "Days from the due date: -3 is three days before, 0 the due date, 7 a week after.")}
                                {text("min_balance", "Minimum balance worth a call", form.min_balance.clone(), "In the invoice's currency.")}
                                {text("max_attempts", "Attempts per reminder", form.max_attempts.clone(), "1 to 20")}
                                {text("retry_no_answer_minutes", "Retry after no answer (minutes)", form.retry_no_answer_minutes.clone(), "")}
                                {text("retry_busy_minutes", "Retry after busy (minutes)", form.retry_busy_minutes.clone(), "")}
                                {text("retry_failed_minutes", "Retry after a failed call (minutes)", form.retry_failed_minutes.clone(), "")}
                                {text("agent_timeout_minutes", "Agent timeout (minutes)", form.agent_timeout_minutes.clone(), "A call nobody reports on within this time has failed.")}
                                {text("max_concurrent_calls", "Calls at once", form.max_concurrent_calls.clone(), "")}
                                {text("daily_call_limit", "Calls per day", form.daily_call_limit.clone(), "Your daily call budget.")}
                            </div>
                        </section>
                        {admin.then(|| view! {
                            <div class="form-actions">
                                <button type="submit" class="button primary" data-test="save-rules">"Save calling rules"</button>
                                {move || matches!(save.value().get(), Some(Ok(()))).then(|| view! { <span class="saved" data-test="saved">"Saved — reminders updated"</span> })}
                            </div>
                        })}
                    </ActionForm>
                    {(!admin).then(|| view! { <p class="muted">"Only owners and admins can change the calling rules."</p> })}
                }
                .into_any()
            })}
        </Suspense>
    }
}
