//! The app shell: the HTML document, the signed-in layout with navigation, organization
//! switcher and user menu, the theme, and the shared empty state.

pub mod layout;
pub mod theme;

use leptos::prelude::*;

/// What a page that has no data yet shows instead of an error or a blank space.
#[component]
pub fn EmptyState(
    title: &'static str,
    children: Children,
    #[prop(optional)] action: Option<(&'static str, &'static str)>,
) -> impl IntoView {
    view! {
        <section class="empty-state">
            <div class="empty-icon" aria-hidden="true"></div>
            <h2>{title}</h2>
            <p>{children()}</p>
            {action.map(|(href, label)| view! { <a class="button primary" href=href>{label}</a> })}
        </section>
    }
}

/// The page heading row.
#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(optional)] subtitle: Option<&'static str>,
) -> impl IntoView {
    view! {
        <header class="page-header">
            <h1>{title}</h1>
            {subtitle.map(|s| view! { <p class="subtitle">{s}</p> })}
        </header>
    }
}
