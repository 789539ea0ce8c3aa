//! Server functions of the reminder pages. Thin: the signed-in member, then a service.

use leptos::prelude::*;

use super::profile::{BusinessProfile, ProfileForm};
use super::views::{Calendar, ReminderDetail, ReminderFilter, ReminderPage};
use crate::error::AppError;

#[cfg(feature = "ssr")]
use {super::calendar, super::generate, super::queries, super::service, crate::server::member};

/// The organization's calling rules.
#[server(endpoint = "reminders/rules")]
pub async fn fetch_calling_rules() -> Result<BusinessProfile, AppError> {
    let (state, member) = member().await?;
    service::profile(&state.db, member).await
}

/// Saves the calling rules (admins), then brings the reminders in line with them.
#[server(endpoint = "reminders/save_rules")]
pub async fn save_calling_rules(form: ProfileForm) -> Result<(), AppError> {
    let (state, member) = member().await?;
    member.require_admin()?;
    let current = service::profile(&state.db, member).await?;
    let profile = form.apply(&current).map_err(AppError::Validation)?;
    service::save_profile(&state.db, member, &profile).await?;
    generate::generate(&state.db, member.org_id, chrono::Utc::now()).await?;
    Ok(())
}

/// Switches calls on or off (admins).
#[server(endpoint = "reminders/switch")]
pub async fn switch_calls(enabled: bool) -> Result<(), AppError> {
    let (state, member) = member().await?;
    let mut profile = service::profile(&state.db, member).await?;
    profile.calls_enabled = enabled;
    service::save_profile(&state.db, member, &profile).await?;
    Ok(())
}

/// The dry-run calendar for the next `days` days.
#[server(endpoint = "reminders/calendar")]
pub async fn fetch_calendar(days: u32) -> Result<Calendar, AppError> {
    let (state, member) = member().await?;
    calendar::calendar(&state.db, member, days, chrono::Utc::now()).await
}

#[server(endpoint = "reminders/list")]
pub async fn list_reminders(filter: ReminderFilter) -> Result<ReminderPage, AppError> {
    let (state, member) = member().await?;
    queries::list_reminders(&state.db, member, &filter).await
}

#[server(endpoint = "reminders/get")]
pub async fn fetch_reminder(id: i64) -> Result<ReminderDetail, AppError> {
    let (state, member) = member().await?;
    queries::reminder_detail(&state.db, member, id).await
}

/// A person's action on a reminder (see [`queries::act`]).
#[server(endpoint = "reminders/act")]
pub async fn act_on_reminder(
    id: i64,
    action: String,
    reason: Option<String>,
) -> Result<(), AppError> {
    let (state, member) = member().await?;
    queries::act(
        &state.db,
        member,
        id,
        &action,
        reason.as_deref().unwrap_or_default(),
        chrono::Utc::now(),
    )
    .await
}
