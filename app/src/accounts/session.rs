//! Server-side sessions: a tower-sessions store on Duecall's own database, so sessions survive
//! restarts and are shared by every instance, plus the helpers that read and write the
//! signed-in identity.

use std::collections::HashMap;

use async_trait::async_trait;
use tower_sessions::Session;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::service::{self, Member};
use crate::db::Db;
use crate::error::AppError;

const USER_KEY: &str = "uid";
const ORG_KEY: &str = "org";

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "duecall_session";

/// The `sessions` table as a tower-sessions store.
#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; a collision is astronomically unlikely but handled anyway.
        loop {
            let data = serde_json::to_string(&record.data)
                .map_err(|e| session_store::Error::Encode(e.to_string()))?;
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(data)
            .bind(record.expiry_date.unix_timestamp())
            .execute(self.db.pool())
            .await
            .map_err(backend)?
            .rows_affected();
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(record.id.to_string())
        .bind(data)
        .bind(record.expiry_date.unix_timestamp())
        .execute(self.db.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row = sqlx::query_as::<_, (String, i64)>(
            "SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(id.to_string())
        .bind(time::OffsetDateTime::now_utc().unix_timestamp())
        .fetch_optional(self.db.pool())
        .await
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data: HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(self.db.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(time::OffsetDateTime::now_utc().unix_timestamp())
            .execute(self.db.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Starts an authenticated session for `member`, with a fresh id so a session id planted
/// before sign-in is worthless afterwards.
pub async fn establish(session: &Session, member: Member) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_KEY, member.user_id).await?;
    session.insert(ORG_KEY, member.org_id).await?;
    Ok(())
}

/// Makes `org_id` the organization the session acts in.
pub async fn set_active_org(session: &Session, org_id: i64) -> Result<(), AppError> {
    session.insert(ORG_KEY, org_id).await?;
    Ok(())
}

/// Ends the session and deletes it from the store.
pub async fn end(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

/// The signed-in user acting in their active organization, if any. Memberships are read from
/// the database on every request, so a removed member loses access at once.
pub async fn current_member(db: &Db, session: &Session) -> Result<Option<Member>, AppError> {
    let Some(user_id) = session.get::<i64>(USER_KEY).await? else {
        return Ok(None);
    };
    let preferred = session.get::<i64>(ORG_KEY).await?;
    let member = service::resolve_member(db, user_id, preferred).await?;
    match member {
        Some(member) if Some(member.org_id) != preferred => {
            set_active_org(session, member.org_id).await?;
        }
        None => end(session).await?,
        Some(_) => {}
    }
    Ok(member)
}

/// Like [`current_member`], but signing in is required.
pub async fn require_member(db: &Db, session: &Session) -> Result<Member, AppError> {
    current_member(db, session)
        .await?
        .ok_or(AppError::Unauthorized)
}
