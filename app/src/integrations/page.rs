//! The Zoho Books card of the Integrations page: connect, choose the Books organization,
//! health badge, live progress of a running sync, recent runs, "Sync now", disconnect.
//! Actions are plain form posts to the server's `/integrations/zoho/*` routes (they work
//! without JavaScript); once hydrated, the card refreshes itself while a sync runs.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{ConnectionView, Health, RunView, ZohoView, zoho_status};

/// The message for a `?zoho=` outcome of a form post.
fn notice(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "choose" => (
            "success",
            "Zoho Books is connected. Choose the organization to sync.",
        ),
        "syncing" => (
            "success",
            "Syncing started. Customers and invoices appear as pages arrive.",
        ),
        "reconnected" => ("success", "Zoho Books is reconnected; syncing resumes."),
        "disconnected" => (
            "success",
            "Zoho Books is disconnected and its access revoked. Synced customers and invoices stay.",
        ),
        "disconnected_unrevoked" => (
            "error",
            "Disconnected here, but Zoho could not be reached to revoke the access. Remove Duecall under Connected Apps in your Zoho account.",
        ),
        "denied" => (
            "error",
            "Zoho Books was not connected: consent was declined.",
        ),
        "expired" => (
            "error",
            "That connection attempt expired or came from another session. Please start again.",
        ),
        "unknown_dc" => (
            "error",
            "Zoho sent you back from an unknown data centre; nothing was connected.",
        ),
        "exchange_failed" => (
            "error",
            "Zoho did not accept the authorization. Please try connecting again.",
        ),
        "organizations_failed" => (
            "error",
            "Connected, but Zoho did not list your organizations. Please try again.",
        ),
        "unknown_organization" => (
            "error",
            "That organization is not one this Zoho account can see.",
        ),
        "not_connected" => ("error", "Zoho Books is not connected."),
        "forbidden" => ("error", "Only owners and admins can change integrations."),
        "not_configured" => ("error", "Zoho Books is not enabled on this Duecall server."),
        "error" => ("error", "Something went wrong. Please try again."),
        _ => return None,
    })
}

#[component]
pub fn ZohoCard() -> impl IntoView {
    let tick = RwSignal::new(0_u32);
    let status = Resource::new(move || tick.get(), |_| zoho_status());
    // While a sync runs, look again every two seconds (in the browser only).
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || {
                let running = status
                    .get_untracked()
                    .and_then(Result::ok)
                    .and_then(|v| v.connection)
                    .is_some_and(|c| c.health == Health::Syncing);
                if running {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    let query = use_query_map();
    let message = move || {
        query.with(|q| q.get("zoho")).and_then(|code| {
            notice(&code).map(|(tone, text)| {
                view! { <div class=format!("alert {tone}") role="status" data-test="zoho-notice">{text}</div> }
            })
        })
    };
    view! {
        <section class="card" aria-labelledby="zoho-heading" data-test="zoho-card">
            <h2 id="zoho-heading">"Zoho Books"</h2>
            {message}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || status.get().map(|result| match result {
                    Ok(view) => view! { <ZohoBody view /> }.into_any(),
                    Err(err) => view! { <div class="alert error" role="alert">{err.to_string()}</div> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ZohoBody(view: ZohoView) -> impl IntoView {
    if !view.enabled {
        return view! {
            <p class="muted">
                "Connect Zoho Books to keep customers and invoices in sync and write call outcomes back. "
                "This server has no Zoho client configured: set DUECALL_ZOHO_CLIENT_ID, DUECALL_ZOHO_CLIENT_SECRET and DUECALL_ENCRYPTION_KEY (see the README), or DUECALL_ZOHO_LOCAL=true to try it with the built-in local Zoho."
            </p>
        }
        .into_any();
    }
    let local = view.local.then(|| view! {
        <p class="hint" data-test="zoho-local">"This server uses the built-in local Zoho Books with demo books; nothing leaves this machine."</p>
    });
    match view.connection.clone() {
        None => view! {
            <p class="muted">
                {format!("Connect Zoho Books to bring customers and invoices in and keep them fresh (every {} hours, and on demand). Call outcomes are written back to the invoices as comments.", view.sync_every_hours)}
            </p>
            {local}
            {if view.can_administer {
                view! {
                    <form method="post" action="/integrations/zoho/connect">
                        <button type="submit" class="button primary" data-test="zoho-connect">"Connect Zoho Books"</button>
                    </form>
                }.into_any()
            } else {
                view! { <p class="muted">"Ask an owner or admin to connect Zoho Books."</p> }.into_any()
            }}
        }
        .into_any(),
        Some(connection) => view! {
            {local}
            <ConnectionDetails connection view />
        }
        .into_any(),
    }
}

#[component]
fn HealthBadge(health: Health) -> impl IntoView {
    view! {
        <span class=format!("badge health-{}", health.tone()) data-test="zoho-health" data-health=format!("{health:?}")>
            {health.label()}
        </span>
    }
}

#[component]
fn ConnectionDetails(connection: ConnectionView, view: ZohoView) -> impl IntoView {
    let health = connection.health;
    let admin = view.can_administer;
    let header = view! {
        <p class="connection-line">
            <strong>{if connection.organization.is_empty() { "Zoho Books".to_owned() } else { connection.organization.clone() }}</strong>
            <HealthBadge health />
            <span class="muted">{format!(" · data centre {}", connection.location.to_uppercase())}</span>
        </p>
    };
    let body = match health {
        Health::Choosing => {
            let choices = connection.choices.clone();
            if choices.is_empty() {
                view! { <p class="muted">"This Zoho account has no Books organization. Create one in Zoho Books, then reconnect."</p> }.into_any()
            } else if admin {
                view! {
                    <form method="post" action="/integrations/zoho/organization" class="form">
                        <label>
                            "Books organization to sync"
                            <select name="organization_id" data-test="zoho-org">
                                {choices.into_iter().map(|c| {
                                    let label = format!("{} ({}){}", c.name, c.currency, if c.is_default { " — default" } else { "" });
                                    view! { <option value=c.id selected=c.is_default>{label}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                        <div class="form-actions">
                            <button type="submit" class="button primary" data-test="zoho-choose">"Start syncing"</button>
                        </div>
                    </form>
                }.into_any()
            } else {
                view! { <p class="muted">"An owner or admin still has to choose the Books organization."</p> }.into_any()
            }
        }
        Health::NeedsReconnect => view! {
            <div class="alert error" role="alert">
                "Zoho no longer accepts Duecall's access (it was revoked or expired). Nothing is synced until someone reconnects."
                {(!connection.last_error.is_empty()).then(|| view! { <div class="muted"><small>{connection.last_error.clone()}</small></div> })}
            </div>
            {admin.then(|| view! {
                <form method="post" action="/integrations/zoho/connect">
                    <button type="submit" class="button primary" data-test="zoho-reconnect">"Reconnect Zoho Books"</button>
                </form>
            })}
        }
        .into_any(),
        _ => {
            let running = connection.runs.first().filter(|r| r.status == "running").cloned();
            let last_sync = connection
                .last_success_label
                .as_ref()
                .map(|at| format!("Last successful sync {at}"))
                .unwrap_or_else(|| "Not synced yet".to_owned());
            view! {
                <p class="muted" data-test="zoho-last-sync">{last_sync}</p>
                {connection.paused_until_label.clone().map(|until| view! {
                    <div class="alert error" role="status">{format!("Zoho's daily API limit is used up. Syncing resumes at {until}.")}</div>
                })}
                {(health == Health::Failing && !connection.last_error.is_empty()).then(|| view! {
                    <div class="alert error" role="alert">{format!("The last sync failed: {}. It is retried automatically.", connection.last_error)}</div>
                })}
                {running.map(|run| view! { <Progress run /> })}
                <div class="form-actions">
                    {view.can_write.then(|| view! {
                        <form method="post" action="/integrations/zoho/sync">
                            <button type="submit" class="button" data-test="zoho-sync-now" disabled=health == Health::Syncing>"Sync now"</button>
                        </form>
                    })}
                    {admin.then(|| view! {
                        <form method="post" action="/integrations/zoho/disconnect">
                            <button type="submit" class="button danger" data-test="zoho-disconnect">"Disconnect"</button>
                        </form>
                    })}
                </div>
                <RunsTable runs=connection.runs.clone() />
                {connection.push_url.clone().map(|url| view! {
                    <details class="push-help">
                        <summary>"Instant updates from Zoho Books (optional)"</summary>
                        <p class="muted">"In Zoho Books, add a workflow rule with a webhook (POST) to this address, with the header below. Each call makes Duecall sync at once; the scheduled sync still runs."</p>
                        <p><code>{url}</code></p>
                        {connection.push_secret.clone().map(|secret| view! { <p><code>{format!("X-Duecall-Secret: {secret}")}</code></p> })}
                    </details>
                })}
            }
            .into_any()
        }
    };
    view! { {header} {body} }
}

#[component]
fn Progress(run: RunView) -> impl IntoView {
    let phase = match run.phase.as_str() {
        "contacts" => "reading customers",
        "details" => "reading customer details",
        "invoices" => "reading invoices",
        "reconcile" => "checking for invoices deleted in Zoho Books",
        _ => "starting",
    };
    view! {
        <div class="progress" role="status" data-test="zoho-progress">
            <span class="spinner" aria-hidden="true"></span>
            {format!(
                "Syncing: {phase} — {} {}, {} customers and {} invoices new or updated so far",
                run.pages,
                if run.pages == 1 { "page" } else { "pages" },
                run.customers_new + run.customers_updated,
                run.invoices_new + run.invoices_updated
            )}
        </div>
    }
}

#[component]
fn RunsTable(runs: Vec<RunView>) -> impl IntoView {
    if runs.is_empty() {
        return ().into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table compact" data-test="zoho-runs">
                <caption class="muted">"Recent syncs"</caption>
                <thead><tr><th>"Started"</th><th>"Result"</th><th>"New / updated"</th><th class="num">"API calls"</th></tr></thead>
                <tbody>
                    {runs.into_iter().map(|run| {
                        let result = match run.status.as_str() {
                            "succeeded" if run.details_pending > 0 => format!("done ({} details to go)", run.details_pending),
                            "succeeded" => "done".to_owned(),
                            "running" => "running".to_owned(),
                            "paused" => "paused (daily limit)".to_owned(),
                            "interrupted" => "interrupted".to_owned(),
                            _ => "failed".to_owned(),
                        };
                        view! {
                            <tr title=run.error.clone()>
                                <td>{run.started_label.clone()}<div class="muted"><small>{run.started_by.clone()}</small></div></td>
                                <td>{result}</td>
                                <td>
                                    <div>{format!("{} / {} customers", run.customers_new, run.customers_updated)}</div>
                                    <div>{format!("{} / {} invoices", run.invoices_new, run.invoices_updated)}</div>
                                </td>
                                <td class="num">{run.api_calls}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
