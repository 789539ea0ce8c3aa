//! Accounts and tenancy: the plain async functions behind the accounts server functions.
//!
//! Every function that touches organization data takes a [`Member`]: the signed-in user, the
//! organization they are acting in and their role there. Every query on a tenant-owned table
//! filters on `member.org_id`; `server/tests/tenancy.rs` proves it.

use chrono_tz::Tz;
use tracing::instrument;

use super::model::{
    ActiveOrg, CurrentUser, Email, LOCALES, MemberView, OrgSummary, Role, SessionView, parse_name,
    validate_new_password,
};
use super::password;
use crate::db::time::{from_millis, now_millis};
use crate::db::{Db, Tx};
use crate::error::{AppError, FieldErrors};

/// The signed-in user acting in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub user_id: i64,
    pub org_id: i64,
    pub role: Role,
}

impl Member {
    /// Refuses viewers: anything that changes data goes through here.
    pub fn require_write(&self) -> Result<(), AppError> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.role.can_administer() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// What the sign-up form collects.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub display_name: String,
    pub email: String,
    pub password: String,
    pub org_name: String,
}

/// Creates a user and their first organization, with the user as its owner.
#[instrument(skip_all)]
pub async fn sign_up(db: &Db, input: SignUp) -> Result<Member, AppError> {
    let mut errors = FieldErrors::new();
    let display_name = errors.check("display_name", parse_name(&input.display_name, "your name"));
    let email = errors.check("email", Email::parse(&input.email));
    errors.check("password", validate_new_password(&input.password));
    let org_name = errors.check(
        "org_name",
        parse_name(&input.org_name, "your business name"),
    );
    errors.into_result()?;
    let (Some(display_name), Some(email), Some(org_name)) = (display_name, email, org_name) else {
        return Err(AppError::BadRequest);
    };

    let password_hash = password::hash(input.password).await?;
    let mut tx = db.begin().await?;
    let user_id = insert_user(&mut tx, &email, &display_name, &password_hash)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "email",
                "An account with this email already exists. Sign in instead.",
            )
        })?;
    let org_id = insert_org(&mut tx, &org_name, "UTC", "USD", false).await?;
    insert_membership(&mut tx, org_id, user_id, Role::Owner).await?;
    audit(
        &mut tx,
        org_id,
        Some(user_id),
        "organization.created",
        &org_name,
    )
    .await?;
    tx.commit().await?;
    Ok(Member {
        user_id,
        org_id,
        role: Role::Owner,
    })
}

/// Inserts a user unless the email is taken; `None` when it is.
pub async fn insert_user(
    tx: &mut Tx<'_>,
    email: &Email,
    display_name: &str,
    password_hash: &str,
) -> Result<Option<i64>, AppError> {
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (email, display_name, password_hash, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(email.as_str())
    .bind(display_name)
    .bind(password_hash)
    .bind(now_millis())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn insert_org(
    tx: &mut Tx<'_>,
    name: &str,
    timezone: &str,
    currency: &str,
    is_demo: bool,
) -> Result<i64, AppError> {
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO organizations (name, timezone, default_currency, is_demo, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(timezone)
    .bind(currency)
    .bind(i64::from(is_demo))
    .bind(now_millis())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn insert_membership(
    tx: &mut Tx<'_>,
    org_id: i64,
    user_id: i64,
    role: Role,
) -> Result<bool, AppError> {
    let inserted = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now_millis())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Records who did what in an organization (in the caller's transaction).
pub async fn audit(
    tx: &mut Tx<'_>,
    org_id: i64,
    actor: Option<i64>,
    action: &str,
    detail: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO audit_events (org_id, actor_user_id, action, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Checks an email and password; the same error for an unknown email and a wrong password.
#[instrument(skip_all)]
pub async fn authenticate(db: &Db, email: &str, password: &str) -> Result<i64, AppError> {
    // Malformed input cannot match an account, but still costs a hash so timing says nothing.
    let email = Email::parse(email).ok();
    let password = password
        .chars()
        .take(super::model::PASSWORD_MAX_CHARS + 1)
        .collect::<String>();
    let row = match &email {
        Some(email) => {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT id, password_hash FROM users WHERE email = $1",
            )
            .bind(email.as_str())
            .fetch_optional(db.pool())
            .await?
        }
        None => None,
    };
    let (user_id, stored) = match row {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    if password::verify(password, stored).await? {
        user_id.ok_or(AppError::BadCredentials)
    } else {
        Err(AppError::BadCredentials)
    }
}

/// The user's membership in `preferred` if they still have it, else in their oldest organization.
#[instrument(skip_all, fields(user_id))]
pub async fn resolve_member(
    db: &Db,
    user_id: i64,
    preferred: Option<i64>,
) -> Result<Option<Member>, AppError> {
    let row = sqlx::query_as::<_, (i64, String)>(
        "SELECT org_id, role FROM memberships WHERE user_id = $1 \
         ORDER BY CASE WHEN org_id = $2 THEN 0 ELSE 1 END, created_at, org_id LIMIT 1",
    )
    .bind(user_id)
    .bind(preferred.unwrap_or(-1))
    .fetch_optional(db.pool())
    .await?;
    row.map(|(org_id, role)| {
        Ok(Member {
            user_id,
            org_id,
            role: parse_role(&role)?,
        })
    })
    .transpose()
}

fn parse_role(stored: &str) -> Result<Role, AppError> {
    Role::parse(stored).map_err(|_| AppError::internal("unknown role in the database", stored))
}

/// The user, the active organization and every organization they can switch to.
#[instrument(skip_all)]
pub async fn session_view(db: &Db, member: Member) -> Result<SessionView, AppError> {
    let (email, display_name) = sqlx::query_as::<_, (String, String)>(
        "SELECT email, display_name FROM users WHERE id = $1",
    )
    .bind(member.user_id)
    .fetch_one(db.pool())
    .await?;
    let (name, timezone, default_currency, locale, is_demo) = sqlx::query_as::<
        _,
        (String, String, String, String, i64),
    >(
        "SELECT name, timezone, default_currency, locale, is_demo FROM organizations WHERE id = $1",
    )
    .bind(member.org_id)
    .fetch_one(db.pool())
    .await?;
    let orgs = sqlx::query_as::<_, (i64, String, String)>(
        "SELECT o.id, o.name, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id \
         WHERE m.user_id = $1 ORDER BY lower(o.name), o.id",
    )
    .bind(member.user_id)
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(|(id, name, role)| {
        Ok(OrgSummary {
            id,
            name,
            role: parse_role(&role)?,
        })
    })
    .collect::<Result<Vec<_>, AppError>>()?;
    Ok(SessionView {
        user: CurrentUser {
            id: member.user_id,
            email,
            display_name,
        },
        org: ActiveOrg {
            id: member.org_id,
            name,
            timezone,
            default_currency,
            locale,
            is_demo: is_demo != 0,
            role: member.role,
        },
        orgs,
    })
}

/// The membership to act under after switching to `org_id`; `NotFound` if the user is not a
/// member there (whether or not the organization exists).
#[instrument(skip_all, fields(org_id))]
pub async fn switch_org(db: &Db, user_id: i64, org_id: i64) -> Result<Member, AppError> {
    let role = sqlx::query_scalar::<_, String>(
        "SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2",
    )
    .bind(user_id)
    .bind(org_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(Member {
        user_id,
        org_id,
        role: parse_role(&role)?,
    })
}

/// A new organization owned by the user.
#[instrument(skip_all)]
pub async fn create_org(db: &Db, user_id: i64, name: &str) -> Result<Member, AppError> {
    let name =
        parse_name(name, "the organization's name").map_err(|m| AppError::invalid("name", m))?;
    let mut tx = db.begin().await?;
    let org_id = insert_org(&mut tx, &name, "UTC", "USD", false).await?;
    insert_membership(&mut tx, org_id, user_id, Role::Owner).await?;
    audit(
        &mut tx,
        org_id,
        Some(user_id),
        "organization.created",
        &name,
    )
    .await?;
    tx.commit().await?;
    Ok(Member {
        user_id,
        org_id,
        role: Role::Owner,
    })
}

/// Renames the organization and sets its time zone and, when given, how it writes numbers
/// (admins and owners).
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn update_org(
    db: &Db,
    member: Member,
    name: &str,
    timezone: &str,
    locale: Option<&str>,
) -> Result<(), AppError> {
    member.require_admin()?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", parse_name(name, "the organization's name"));
    let timezone = errors.check(
        "timezone",
        timezone
            .trim()
            .parse::<Tz>()
            .map_err(|_| "Choose a time zone from the list, like Europe/London."),
    );
    let locale = match locale {
        Some(locale) => errors.check(
            "locale",
            LOCALES
                .iter()
                .find(|(code, _)| *code == locale)
                .map(|(code, _)| Some(*code))
                .ok_or("Choose a number format from the list."),
        ),
        None => Some(None),
    };
    errors.into_result()?;
    let (Some(name), Some(timezone), Some(locale)) = (name, timezone, locale) else {
        return Err(AppError::BadRequest);
    };
    let mut tx = db.begin().await?;
    let updated = sqlx::query(
        "UPDATE organizations SET name = $1, timezone = $2, locale = COALESCE($3, locale) WHERE id = $4",
    )
    .bind(&name)
    .bind(timezone.name())
    .bind(locale)
    .bind(member.org_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated != 1 {
        return Err(AppError::NotFound);
    }
    audit(
        &mut tx,
        member.org_id,
        Some(member.user_id),
        "organization.updated",
        &name,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Members of the active organization, owners first.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn list_members(db: &Db, member: Member) -> Result<Vec<MemberView>, AppError> {
    let timezone = org_timezone(db, member.org_id).await?;
    let rows = sqlx::query_as::<_, (i64, String, String, String, i64)>(
        "SELECT u.id, u.display_name, u.email, m.role, m.created_at \
         FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 ORDER BY lower(u.display_name), u.id",
    )
    .bind(member.org_id)
    .fetch_all(db.pool())
    .await?;
    let mut members = rows
        .into_iter()
        .map(|(user_id, display_name, email, role, joined)| {
            Ok(MemberView {
                user_id,
                display_name,
                email,
                role: parse_role(&role)?,
                joined_on: from_millis(joined)
                    .with_timezone(&timezone)
                    .format("%Y-%m-%d")
                    .to_string(),
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    members.sort_by_key(|m| std::cmp::Reverse(m.role));
    Ok(members)
}

async fn org_timezone(db: &Db, org_id: i64) -> Result<Tz, AppError> {
    let name = sqlx::query_scalar::<_, String>("SELECT timezone FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    Ok(name.parse().unwrap_or(Tz::UTC))
}

/// Adds an existing Duecall user to the organization.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn add_member(db: &Db, member: Member, email: &str, role: Role) -> Result<(), AppError> {
    member.require_admin()?;
    require_may_grant(member, role)?;
    let email = Email::parse(email).map_err(|m| AppError::invalid("email", m))?;
    let mut tx = db.begin().await?;
    let user_id = sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "email",
                "No Duecall account uses this email. Ask them to sign up first, then add them.",
            )
        })?;
    if !insert_membership(&mut tx, member.org_id, user_id, role).await? {
        return Err(AppError::Conflict(
            "They are already a member of this organization.".into(),
        ));
    }
    audit(
        &mut tx,
        member.org_id,
        Some(member.user_id),
        "member.added",
        &format!("user {user_id} as {role}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Only owners hand out or take away ownership.
fn require_may_grant(member: Member, role: Role) -> Result<(), AppError> {
    if role == Role::Owner && member.role != Role::Owner {
        Err(AppError::Forbidden)
    } else {
        Ok(())
    }
}

/// The role of `user_id` in the member's organization, locked for the rest of the transaction.
async fn role_in_org(tx: &mut Tx<'_>, org_id: i64, user_id: i64) -> Result<Role, AppError> {
    let role = sqlx::query_scalar::<_, String>(
        "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AppError::NotFound)?;
    parse_role(&role)
}

async fn owner_count(tx: &mut Tx<'_>, org_id: i64) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'",
    )
    .bind(org_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Changes a member's role; the organization always keeps an owner.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn change_role(
    db: &Db,
    member: Member,
    user_id: i64,
    role: Role,
) -> Result<(), AppError> {
    member.require_admin()?;
    require_may_grant(member, role)?;
    let mut tx = db.begin().await?;
    let current = role_in_org(&mut tx, member.org_id, user_id).await?;
    require_may_grant(member, current)?;
    if current == Role::Owner
        && role != Role::Owner
        && owner_count(&mut tx, member.org_id).await? <= 1
    {
        return Err(AppError::Conflict(
            "An organization needs at least one owner. Make someone else an owner first.".into(),
        ));
    }
    sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(member.org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        member.org_id,
        Some(member.user_id),
        "member.role_changed",
        &format!("user {user_id}: {current} -> {role}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes someone from the organization; the last owner cannot be removed.
#[instrument(skip_all, fields(org_id = member.org_id))]
pub async fn remove_member(db: &Db, member: Member, user_id: i64) -> Result<(), AppError> {
    member.require_admin()?;
    let mut tx = db.begin().await?;
    let current = role_in_org(&mut tx, member.org_id, user_id).await?;
    require_may_grant(member, current)?;
    if current == Role::Owner && owner_count(&mut tx, member.org_id).await? <= 1 {
        return Err(AppError::Conflict(
            "An organization needs at least one owner. Make someone else an owner first.".into(),
        ));
    }
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(member.org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        member.org_id,
        Some(member.user_id),
        "member.removed",
        &format!("user {user_id}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
