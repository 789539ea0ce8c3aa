//! Sign-in, sign-up and organization settings pages. Every form is an `ActionForm`: with
//! JavaScript it submits in place and shows errors inline; without it, it is a plain form post
//! and the error comes back on the redirected page.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use super::api::{
    AddMember, ChangeRole, CreateOrg, RemoveMember, SignIn, SignUp, UpdateOrg, current_session,
    list_members,
};
use super::model::{LOCALES, MemberView, Role, SessionView};
use crate::error::AppError;
use crate::shell::PageHeader;
use crate::shell::layout::use_session;
use crate::shell::theme::ThemeSwitcher;

/// The error a finished action returned, if any.
pub(crate) fn action_error<S>(action: ServerAction<S>) -> Signal<Option<AppError>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}

/// A form-level error banner (field errors are shown next to their fields).
#[component]
pub(crate) fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|err| {
            view! { <div class="alert error" role="alert">{err.to_string()}</div> }
        })
    }
}

/// The message for one field, shown under it.
#[component]
pub(crate) fn FieldMessage(error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        error
            .get()
            .and_then(|err| err.field(field))
            .map(|message| view! { <span class="field-error" data-field=field>{message}</span> })
    }
}

/// Sends a signed-in visitor on to the dashboard.
#[component]
fn RedirectIfSignedIn() -> impl IntoView {
    let session = Resource::new_blocking(|| (), |_| current_session());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                matches!(session.await, Ok(Some(_))).then(|| view! { <Redirect path="/" /> })
            })}
        </Suspense>
    }
}

#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <main class="auth">
            <div class="auth-top">
                <a class="brand" href="/">
                    <span class="logo" aria-hidden="true">"D"</span>
                    <span class="brand-name">"Duecall"</span>
                </a>
                <ThemeSwitcher />
            </div>
            <div class="card auth-card">
                <h1>{title}</h1>
                {children()}
            </div>
            <p class="auth-tagline muted">"Overdue invoices, called for you."</p>
        </main>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = action_error(action);
    let next = use_query_map()
        .get_untracked()
        .get("next")
        .unwrap_or_default();
    view! {
        <Title text="Sign in" />
        <RedirectIfSignedIn />
        <AuthCard title="Sign in">
            <ActionForm action=action attr:class="form" attr:data-test="sign-in-form">
                <FormError error />
                <input type="hidden" name="next" value=next />
                <label>
                    "Email"
                    <input type="email" name="email" autocomplete="username" required maxlength="254" />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required maxlength="128" />
                </label>
                <button type="submit" class="button primary wide" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
            <p class="muted center">"New to Duecall? " <a href="/sign-up">"Create an account"</a></p>
        </AuthCard>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let error = action_error(action);
    let banner = Signal::derive(move || {
        error
            .get()
            .filter(|e| !matches!(e, AppError::Validation(_)))
    });
    view! {
        <Title text="Create your account" />
        <RedirectIfSignedIn />
        <AuthCard title="Create your account">
            <ActionForm action=action attr:class="form" attr:data-test="sign-up-form">
                <FormError error=banner />
                <label>
                    "Your name"
                    <input type="text" name="display_name" autocomplete="name" required maxlength="80" />
                    <FieldMessage error field="display_name" />
                </label>
                <label>
                    "Business name"
                    <input type="text" name="org_name" autocomplete="organization" required maxlength="80" />
                    <FieldMessage error field="org_name" />
                </label>
                <label>
                    "Work email"
                    <input type="email" name="email" autocomplete="email" required maxlength="254" />
                    <FieldMessage error field="email" />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="new-password" required minlength="10" maxlength="128" />
                    <span class="hint">"At least 10 characters."</span>
                    <FieldMessage error field="password" />
                </label>
                <button type="submit" class="button primary wide" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Creating…" } else { "Create account" }}
                </button>
            </ActionForm>
            <p class="muted center">"Already have an account? " <a href="/sign-in">"Sign in"</a></p>
        </AuthCard>
    }
}

/// Common zones offered as suggestions; any IANA zone is accepted.
const TIMEZONES: [&str; 16] = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Asia/Singapore",
    "Australia/Sydney",
    "Africa/Johannesburg",
];

#[component]
pub fn SettingsPage() -> impl IntoView {
    let session = use_session();
    let update = ServerAction::<UpdateOrg>::new();
    let add = ServerAction::<AddMember>::new();
    let change = ServerAction::<ChangeRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let create = ServerAction::<CreateOrg>::new();
    let members = Resource::new_blocking(
        move || {
            (
                add.version().get(),
                change.version().get(),
                remove.version().get(),
            )
        },
        |_| list_members(),
    );
    let admin = session.org.role.can_administer();
    let update_error = action_error(update);
    let add_error = action_error(add);
    let create_error = action_error(create);
    let member_error = Signal::derive(move || {
        change
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| remove.value().get().and_then(Result::err))
    });
    let SessionView { org, .. } = session.clone();
    view! {
        <Title text="Settings" />
        <PageHeader title="Settings" subtitle="Your organization, its members and their roles." />

        <section class="card" aria-labelledby="org-heading">
            <h2 id="org-heading">"Organization"</h2>
            <ActionForm action=update attr:class="form grid-2" attr:data-test="org-form">
                <FormError error=Signal::derive(move || update_error.get().filter(|e| !matches!(e, AppError::Validation(_)))) />
                <label>
                    "Name"
                    <input type="text" name="name" value=org.name.clone() required maxlength="80" disabled=!admin />
                    <FieldMessage error=update_error field="name" />
                </label>
                <label>
                    "Time zone"
                    <input type="text" name="timezone" value=org.timezone.clone() list="timezones" required disabled=!admin />
                    <span class="hint">"Dates and calling hours follow this zone."</span>
                    <FieldMessage error=update_error field="timezone" />
                </label>
                <label>
                    "Number format"
                    <select name="locale" disabled=!admin>
                        {LOCALES
                            .into_iter()
                            .map(|(code, label)| view! { <option value=code selected=code == org.locale>{label}</option> })
                            .collect_view()}
                    </select>
                    <FieldMessage error=update_error field="locale" />
                </label>
                <datalist id="timezones">
                    {TIMEZONES.into_iter().map(|tz| view! { <option value=tz></option> }).collect_view()}
                </datalist>
                {admin.then(|| view! {
                    <div class="form-actions">
                        <button type="submit" class="button primary">"Save"</button>
                        {move || matches!(update.value().get(), Some(Ok(()))).then(|| view! { <span class="saved">"Saved"</span> })}
                    </div>
                })}
            </ActionForm>
            {(!admin).then(|| view! { <p class="muted">"Only owners and admins can change these settings."</p> })}
        </section>

        <section class="card" aria-labelledby="calling-heading">
            <h2 id="calling-heading">"Calling rules"</h2>
            <p class="muted">"Who calls on your behalf and in which words, calling hours and days, holidays, how often, and the reminder sequence. Calls stay off until you switch them on."</p>
            <a class="button" href="/settings/calling" data-test="calling-rules-link">"Open the calling rules"</a>
        </section>

        <section class="card" aria-labelledby="members-heading">
            <h2 id="members-heading">"Members"</h2>
            <FormError error=member_error />
            <Suspense fallback=|| view! { <p class="muted">"Loading members…"</p> }>
                {move || Suspend::new(async move {
                    match members.await {
                        Ok(list) => view! { <MemberTable members=list admin change remove /> }.into_any(),
                        Err(err) => view! { <div class="alert error">{err.to_string()}</div> }.into_any(),
                    }
                })}
            </Suspense>
            {admin.then(|| view! {
                <h3>"Add a member"</h3>
                <ActionForm action=add attr:class="form inline" attr:data-test="add-member-form">
                    <label>
                        "Email of their Duecall account"
                        <input type="email" name="email" required maxlength="254" />
                        <FieldMessage error=add_error field="email" />
                    </label>
                    <label>
                        "Role"
                        <RoleSelect name="role" selected=Role::Member />
                    </label>
                    <button type="submit" class="button">"Add"</button>
                </ActionForm>
                <FormError error=Signal::derive(move || add_error.get().filter(|e| !matches!(e, AppError::Validation(_)))) />
            })}
            <details class="roles-help">
                <summary>"What can each role do?"</summary>
                <ul>
                    <li><strong>"Owner"</strong>" — everything, including managing other owners."</li>
                    <li><strong>"Admin"</strong>" — settings and members, plus everything a member does."</li>
                    <li><strong>"Member"</strong>" — works the receivables: imports, reminders and calls."</li>
                    <li><strong>"Viewer"</strong>" — sees everything, changes nothing."</li>
                </ul>
            </details>
        </section>

        <section class="card" aria-labelledby="new-org-heading">
            <h2 id="new-org-heading">"Another organization"</h2>
            <p class="muted">"Run collections for another business? Create a separate organization and switch between them from the sidebar."</p>
            <ActionForm action=create attr:class="form inline" attr:data-test="create-org-form">
                <label>
                    "Name"
                    <input type="text" name="name" required maxlength="80" />
                    <FieldMessage error=create_error field="name" />
                </label>
                <button type="submit" class="button">"Create organization"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn RoleSelect(name: &'static str, selected: Role) -> impl IntoView {
    view! {
        <select name=name>
            {Role::ALL
                .into_iter()
                .map(|role| view! { <option value=role.as_str() selected=role == selected>{role.label()}</option> })
                .collect_view()}
        </select>
    }
}

#[component]
fn MemberTable(
    members: Vec<MemberView>,
    admin: bool,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let me = use_session().user.id;
    view! {
        <div class="table-wrap">
            <table class="table" data-test="members">
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Email"</th>
                        <th>"Role"</th>
                        <th>"Joined"</th>
                        {admin.then(|| view! { <th><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>
                    {members
                        .into_iter()
                        .map(|m| {
                            let user_id = m.user_id.to_string();
                            let user_id_again = user_id.clone();
                            view! {
                                <tr>
                                    <td>
                                        {m.display_name.clone()}
                                        {(m.user_id == me).then(|| view! { <span class="badge">"You"</span> })}
                                    </td>
                                    <td>{m.email.clone()}</td>
                                    <td>
                                        {if admin {
                                            view! {
                                                <ActionForm action=change attr:class="inline-form">
                                                    <input type="hidden" name="user_id" value=user_id.clone() />
                                                    <RoleSelect name="role" selected=m.role />
                                                    <button type="submit" class="small">"Change"</button>
                                                </ActionForm>
                                            }
                                            .into_any()
                                        } else {
                                            m.role.label().into_any()
                                        }}
                                    </td>
                                    <td>{m.joined_on.clone()}</td>
                                    {admin.then(|| view! {
                                        <td>
                                            <ActionForm action=remove attr:class="inline-form">
                                                <input type="hidden" name="user_id" value=user_id_again.clone() />
                                                <button type="submit" class="small danger">"Remove"</button>
                                            </ActionForm>
                                        </td>
                                    })}
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
