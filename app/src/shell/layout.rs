//! The signed-in layout: sidebar navigation, organization switcher, user menu, and the page.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::{A, Outlet, Redirect};
use leptos_router::hooks::use_location;

use super::theme::ThemeSwitcher;
use crate::accounts::api::{SignOut, SwitchOrg, current_session};
use crate::accounts::model::SessionView;

/// Navigation entries: path and label.
pub const NAV: [(&str, &str); 9] = [
    ("/", "Dashboard"),
    ("/customers", "Customers"),
    ("/invoices", "Invoices"),
    ("/reminders", "Reminders"),
    ("/calls", "Calls"),
    ("/analytics", "Analytics"),
    ("/assistant", "Assistant"),
    ("/integrations", "Integrations"),
    ("/settings", "Settings"),
];

/// The session of the signed-in user, provided to every page inside the layout.
pub fn use_session() -> SessionView {
    expect_context::<SessionView>()
}

#[component]
pub fn AppLayout() -> impl IntoView {
    let session = Resource::new_blocking(|| (), |_| current_session());
    let location = use_location();
    view! {
        <Suspense fallback=|| view! { <div class="loading">"Loading…"</div> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(Some(view)) => {
                        provide_context(view.clone());
                        view! { <Shell session=view /> }.into_any()
                    }
                    Ok(None) | Err(crate::error::AppError::Unauthorized) => {
                        let next = location.pathname.get_untracked();
                        let path = if next == "/" {
                            "/sign-in".to_owned()
                        } else {
                            format!("/sign-in?next={}", urlencode(&next))
                        };
                        view! { <Redirect path=path /> }.into_any()
                    }
                    Err(err) => view! {
                        <main class="page error-page" role="alert">
                            <h1>"Duecall is having trouble"</h1>
                            <p>{err.to_string()}</p>
                            <a class="button" href="/">"Try again"</a>
                        </main>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

fn urlencode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
fn Shell(session: SessionView) -> impl IntoView {
    let initials: String = session
        .user
        .display_name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase();
    // On small screens the sidebar is a drawer behind a checkbox (so it works without
    // JavaScript); with JavaScript, moving to another page closes it.
    let drawer = NodeRef::<leptos::html::Input>::new();
    let close_drawer = move |_| {
        if let Some(toggle) = drawer.get() {
            toggle.set_checked(false);
        }
    };
    view! {
        <div class="app">
            <input type="checkbox" id="nav-toggle" class="nav-toggle" aria-label="Show navigation" node_ref=drawer />
            <label for="nav-toggle" class="nav-backdrop" aria-hidden="true"></label>
            <aside class="sidebar">
                <div class="brand">
                    <span class="logo" aria-hidden="true">"D"</span>
                    <span class="brand-name">"Duecall"</span>
                </div>
                <OrgSwitcher session=session.clone() />
                <nav class="nav" aria-label="Main" on:click=close_drawer>
                    {NAV
                        .into_iter()
                        .map(|(href, label)| {
                            view! {
                                <A href=href exact=true attr:class="nav-link" attr:data-nav=label>
                                    {label}
                                </A>
                            }
                        })
                        .collect_view()}
                </nav>
            </aside>
            <div class="main">
                <header class="topbar">
                    <label for="nav-toggle" class="nav-button" aria-label="Menu">
                        <span></span>
                    </label>
                    <div class="topbar-title">
                        {session.org.name.clone()}
                        {session.org.is_demo.then(|| view! { <span class="badge">"Demo"</span> })}
                    </div>
                    <ThemeSwitcher />
                    <details class="user-menu">
                        <summary aria-label="Account">
                            <span class="avatar" aria-hidden="true">{initials}</span>
                            <span class="user-name">{session.user.display_name.clone()}</span>
                        </summary>
                        <div class="menu">
                            <div class="menu-header">
                                <strong>{session.user.display_name.clone()}</strong>
                                <span class="muted">{session.user.email.clone()}</span>
                                <span class="muted">
                                    {format!("{} of {}", session.org.role.label(), session.org.name)}
                                </span>
                            </div>
                            <a href="/settings">"Organization settings"</a>
                            <form method="post" action={<SignOut as ServerFn>::PATH}>
                                <button type="submit" class="link-button" data-test="sign-out">
                                    "Sign out"
                                </button>
                            </form>
                        </div>
                    </details>
                </header>
                <main class="page">
                    <Outlet />
                </main>
            </div>
        </div>
    }
}

/// Switches the active organization with a plain form post: the whole page reloads with the
/// other organization's data, with or without JavaScript.
#[component]
fn OrgSwitcher(session: SessionView) -> impl IntoView {
    let active = session.org.id;
    let form = NodeRef::<leptos::html::Form>::new();
    // With JavaScript, choosing an organization is enough; the button is for everyone else.
    let submit = move |_| {
        if let Some(form) = form.get() {
            let _ = form.request_submit();
        }
    };
    view! {
        <form class="org-switcher" method="post" action={<SwitchOrg as ServerFn>::PATH} node_ref=form>
            <label for="org-select" class="muted">"Organization"</label>
            <div class="org-row">
                <select id="org-select" name="org_id" on:change=submit>
                    {session
                        .orgs
                        .into_iter()
                        .map(|org| {
                            view! {
                                <option value=org.id.to_string() selected=org.id == active>
                                    {org.name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <button type="submit" class="small">"Switch"</button>
            </div>
        </form>
    }
}
