//! Server functions for signing in and out and for managing organizations and members.
//! Each is thin: load the request's state and member, call the service, map the result.

use leptos::prelude::*;

use super::model::{MemberView, Role, SessionView};
use crate::error::AppError;

#[cfg(feature = "ssr")]
use {
    super::{service, session},
    crate::server::{client_ip, member, request, safe_next},
};

/// Who is signed in and where; `None` for a visitor.
#[server(endpoint = "accounts/session")]
pub async fn current_session() -> Result<Option<SessionView>, AppError> {
    let (state, session) = request().await?;
    match session::current_member(&state.db, &session).await? {
        Some(member) => Ok(Some(service::session_view(&state.db, member).await?)),
        None => Ok(None),
    }
}

#[server(endpoint = "accounts/sign_up")]
pub async fn sign_up(
    display_name: String,
    email: String,
    password: String,
    org_name: String,
) -> Result<(), AppError> {
    let (state, session) = request().await?;
    state.sign_in_limiter.check(&email, client_ip())?;
    let input = service::SignUp {
        display_name,
        email,
        password,
        org_name,
    };
    let member = service::sign_up(&state.db, input).await?;
    session::establish(&session, member).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(endpoint = "accounts/sign_in")]
pub async fn sign_in(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    let (state, session) = request().await?;
    state.sign_in_limiter.check(&email, client_ip())?;
    let user_id = service::authenticate(&state.db, &email, &password).await?;
    let member = service::resolve_member(&state.db, user_id, None).await?.ok_or_else(|| {
            AppError::Conflict("This account no longer belongs to any organization. Ask an admin to add you again.".into())
        })?;
    session::establish(&session, member).await?;
    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

#[server(endpoint = "accounts/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let (_, session) = request().await?;
    session::end(&session).await?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}

#[server(endpoint = "orgs/switch")]
pub async fn switch_org(org_id: i64) -> Result<(), AppError> {
    let (state, session) = request().await?;
    let current = session::require_member(&state.db, &session).await?;
    let member = service::switch_org(&state.db, current.user_id, org_id).await?;
    session::set_active_org(&session, member.org_id).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(endpoint = "orgs/create")]
pub async fn create_org(name: String) -> Result<(), AppError> {
    let (state, session) = request().await?;
    let current = session::require_member(&state.db, &session).await?;
    let member = service::create_org(&state.db, current.user_id, &name).await?;
    session::set_active_org(&session, member.org_id).await?;
    leptos_axum::redirect("/settings");
    Ok(())
}

#[server(endpoint = "orgs/update")]
pub async fn update_org(
    name: String,
    timezone: String,
    locale: Option<String>,
) -> Result<(), AppError> {
    let (state, member) = member().await?;
    service::update_org(&state.db, member, &name, &timezone, locale.as_deref()).await
}

#[server(endpoint = "orgs/members")]
pub async fn list_members() -> Result<Vec<MemberView>, AppError> {
    let (state, member) = member().await?;
    service::list_members(&state.db, member).await
}

#[server(endpoint = "orgs/add_member")]
pub async fn add_member(email: String, role: Role) -> Result<(), AppError> {
    let (state, member) = member().await?;
    service::add_member(&state.db, member, &email, role).await
}

#[server(endpoint = "orgs/change_role")]
pub async fn change_role(user_id: i64, role: Role) -> Result<(), AppError> {
    let (state, member) = member().await?;
    service::change_role(&state.db, member, user_id, role).await
}

#[server(endpoint = "orgs/remove_member")]
pub async fn remove_member(user_id: i64) -> Result<(), AppError> {
    let (state, member) = member().await?;
    service::remove_member(&state.db, member, user_id).await
}
