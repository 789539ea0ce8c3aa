//! Reading and saving the organization's business profile.

use tracing::instrument;

use super::profile::BusinessProfile;
use crate::accounts::service::{Member, audit};
use crate::db::Db;
use crate::db::time::now_millis;
use crate::error::AppError;

/// The organization's profile: as saved, or the starting profile (named after the
/// organization, in its time zone, calls off) when none has been saved.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn profile(db: &Db, member: Member) -> Result<BusinessProfile, AppError> {
    profile_of(db, member.org_id).await
}

/// The profile of organization `org_id` (for the engines, which act for no member).
pub async fn profile_of(db: &Db, org_id: i64) -> Result<BusinessProfile, AppError> {
    let mut conn = db.pool().acquire().await?;
    profile_in(&mut conn, org_id).await
}

/// [`profile_of`] on a given connection: inside a transaction, so a writer never waits for a
/// second connection of the pool while it holds the write lock.
pub async fn profile_in(
    conn: &mut sqlx::AnyConnection,
    org_id: i64,
) -> Result<BusinessProfile, AppError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT profile FROM business_profiles WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(json) = stored {
        return serde_json::from_str(&json)
            .map_err(|e| AppError::internal("reading the business profile", e));
    }
    let (name, timezone): (String, String) =
        sqlx::query_as("SELECT name, timezone FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(BusinessProfile::new(&name, &timezone))
}

/// Saves `profile` after validating it (admins and owners: it decides who gets called).
/// Switching calls on or off is recorded in the audit log.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn save_profile(
    db: &Db,
    member: Member,
    profile: &BusinessProfile,
) -> Result<BusinessProfile, AppError> {
    member.require_admin()?;
    profile.validate().map_err(AppError::Validation)?;
    let before = self::profile(db, member).await?;
    let json = serde_json::to_string(profile)
        .map_err(|e| AppError::internal("writing the business profile", e))?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO business_profiles (org_id, profile, calls_enabled, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (org_id) DO UPDATE SET profile = excluded.profile, \
           calls_enabled = excluded.calls_enabled, updated_at = excluded.updated_at, \
           updated_by = excluded.updated_by",
    )
    .bind(member.org_id)
    .bind(&json)
    .bind(i64::from(profile.calls_enabled))
    .bind(now_millis())
    .bind(member.user_id)
    .execute(&mut *tx)
    .await?;
    let action = match (before.calls_enabled, profile.calls_enabled) {
        (false, true) => "calls.enabled",
        (true, false) => "calls.disabled",
        _ => "profile.updated",
    };
    audit(&mut tx, member.org_id, Some(member.user_id), action, "").await?;
    tx.commit().await?;
    Ok(profile.clone())
}
