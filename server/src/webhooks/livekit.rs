//! `POST /api/webhooks/livekit`: LiveKit's own room events, used for one thing — noticing early
//! that an agent is gone. When the room of an attempt still under way finishes, or the agent
//! leaves it, the agent can no longer report: the attempt's deadline is brought forward to a
//! short grace period (a report already on its way still wins), after which the monitor fails
//! it with "Call timeout - no agent response" instead of waiting the whole agent timeout.
//!
//! The `Authorization` header is a JWT signed with the LiveKit API secret whose `sha256` claim
//! is the body's hash; both are checked before the body is read. Events are deduplicated on
//! their id (LiveKit may send one twice) and every delivery is stored. LiveKit's delivery is
//! best effort: the timeout stays the backstop.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Duration;
use sha2::{Digest, Sha256};

use app::db::time::to_millis;

use super::Webhooks;
use super::call_status::{answer, stored_headers};
use crate::reminders::livekit::room_name;

/// How long a report already on its way may still arrive after the agent is gone.
pub const GRACE: Duration = Duration::seconds(20);
pub const LIVEKIT_PATH: &str = "/api/webhooks/livekit";

const ROOM_PREFIX: &str = "duecall-attempt-";
/// `ParticipantInfo.Kind::Agent`.
const AGENT_KIND: i32 = 4;

/// The attempt a room belongs to, if it is one of Duecall's.
fn attempt_of(room: &str) -> Option<i64> {
    let id: i64 = room.strip_prefix(ROOM_PREFIX)?.parse().ok()?;
    (room_name(id) == room).then_some(id)
}

pub async fn receive(
    State(hooks): State<Webhooks>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(receiver) = &hooks.livekit else {
        return answer(
            StatusCode::NOT_FOUND,
            "not_configured",
            "LiveKit is not configured on this server.",
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "The body is too large.",
            );
        }
        Err(rejection) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                &rejection.body_text(),
            );
        }
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_start_matches("Bearer ").trim())
        .unwrap_or_default();
    let Ok(text) = std::str::from_utf8(&body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "The body is not UTF-8.",
        );
    };
    let event = match receiver.receive(text, token) {
        Ok(event) => event,
        Err(livekit_api::webhooks::WebhookError::InvalidData(err)) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "invalid_event",
                &format!("The body is not a LiveKit webhook event: {err}"),
            );
        }
        Err(err) => {
            tracing::warn!(error = %err, "LiveKit webhook refused");
            return answer(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "The LiveKit token or the body's hash does not match.",
            );
        }
    };
    let key = if event.id.is_empty() {
        format!("sha256:{}", hex::encode(Sha256::digest(&body)))
    } else {
        format!("id:{}", event.id)
    };
    match apply(&hooks, &headers, text, &key, &event).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "LiveKit webhook failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The event could not be stored; send it again.",
            )
        }
    }
}

async fn apply(
    hooks: &Webhooks,
    headers: &HeaderMap,
    body: &str,
    key: &str,
    event: &livekit_protocol::WebhookEvent,
) -> Result<Response, sqlx::Error> {
    let now = hooks.clock.now();
    let mut tx = hooks.db.begin().await?;
    let (id, deliveries): (i64, i64) = sqlx::query_as(
        "INSERT INTO webhook_events (source, delivery_key, event_type, status_code, headers, body, received_at) \
         VALUES ('livekit', $1, $2, 200, $3, $4, $5) \
         ON CONFLICT (source, delivery_key) DO UPDATE SET deliveries = webhook_events.deliveries + 1 \
         RETURNING id, deliveries",
    )
    .bind(key)
    .bind(&event.event)
    .bind(stored_headers(headers))
    .bind(body)
    .bind(to_millis(now))
    .fetch_one(&mut *tx)
    .await?;
    if deliveries > 1 {
        tx.commit().await?;
        return Ok(answer(
            StatusCode::OK,
            "duplicate",
            "Event already received.",
        ));
    }
    let room = event
        .room
        .as_ref()
        .map(|r| r.name.as_str())
        .unwrap_or_default();
    let agent_gone = match event.event.as_str() {
        "room_finished" => true,
        "participant_left" | "participant_connection_aborted" => event
            .participant
            .as_ref()
            .is_some_and(|p| p.kind == AGENT_KIND),
        _ => false,
    };
    let attempt = attempt_of(room);
    let mut result = "Nothing to do.".to_owned();
    if let (true, Some(attempt_id)) = (agent_gone, attempt) {
        let found: Option<(i64, i64, String)> =
            sqlx::query_as("SELECT org_id, reminder_id, status FROM call_attempts WHERE id = $1")
                .bind(attempt_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((org_id, reminder_id, status)) = found {
            if matches!(status.as_str(), "dialling" | "answered") {
                let deadline = to_millis(now + GRACE);
                let moved = sqlx::query(
                    "UPDATE reminders SET lease_until = CASE WHEN lease_until > $1 THEN $1 ELSE lease_until END \
                     WHERE id = $2 AND org_id = $3 AND status IN ('in_progress', 'processing') AND dialled = 1",
                )
                .bind(deadline)
                .bind(reminder_id)
                .bind(org_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                result = if moved > 0 {
                    format!(
                        "The agent is gone ({}): the call fails in {} s unless it reports first.",
                        event.event,
                        GRACE.num_seconds()
                    )
                } else {
                    "The call was no longer under way.".to_owned()
                };
            } else {
                result = format!("The call had already ended ({status}).");
            }
            sqlx::query(
                "UPDATE webhook_events SET org_id = $1, reminder_id = $2, attempt_id = $3, result = $4 WHERE id = $5",
            )
            .bind(org_id)
            .bind(reminder_id)
            .bind(attempt_id)
            .bind(&result)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            hooks.live.notify(org_id);
            return Ok(answer(StatusCode::OK, "applied", &result));
        }
    }
    sqlx::query("UPDATE webhook_events SET result = $1 WHERE id = $2")
        .bind(&result)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(answer(StatusCode::OK, "ignored", &result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_duecalls_rooms_name_an_attempt() {
        assert_eq!(attempt_of("duecall-attempt-42"), Some(42));
        assert_eq!(attempt_of("duecall-attempt-042"), None);
        assert_eq!(attempt_of("duecall-attempt-"), None);
        assert_eq!(attempt_of("someone-else-42"), None);
    }
}
