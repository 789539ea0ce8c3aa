//! `POST /api/webhooks/call-status`: the voice agent's reports on each call.
//!
//! Order of work: the signature over the raw bytes ([`super::signature`]); the delivery stored
//! (a repeated delivery gets the first one's answer and changes nothing); the body parsed and
//! validated; the report applied with its follow-up ([`app::calls::apply`]) and the outcome's
//! write-back queued, in the same transaction as the stored delivery.
//!
//! Answers, always with a JSON body: 200 (applied, or known already), 400 (bad body or event),
//! 401 (signature, stale or replayed timestamp), 404 (unknown reminder or attempt), 409 (the
//! report contradicts the call's state), 413 (too large), 500.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use app::calls::apply::{self, Applied, ApplyError, WriteBack};
use app::calls::report::CallStatusBody;
use app::db::Tx;
use app::db::time::to_millis;

use super::Webhooks;
use super::signature::{LEGACY_HEADER, SIGNATURE_HEADER, Scope, Verified};

const SOURCE: &str = "call_status";

/// A JSON answer: `{"ok": true, "result": …, "detail": …}` or `{"ok": false, "error": {…}}`.
pub fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    let body = if status.is_success() {
        json!({ "ok": true, "result": code, "detail": message })
    } else {
        json!({ "ok": false, "error": { "code": code, "message": message } })
    };
    (status, axum::Json(body)).into_response()
}

/// The request's headers as JSON, without anything that authenticates.
pub fn stored_headers(headers: &HeaderMap) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                SIGNATURE_HEADER | LEGACY_HEADER | "authorization" | "cookie"
            )
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    serde_json::Value::Object(kept).to_string()
}

struct Delivery {
    id: i64,
    deliveries: i64,
    status_code: i64,
    result: String,
}

/// The callback URL's query: `?attempt=<id>` when the agent signs with that attempt's key.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub attempt: Option<String>,
}

pub async fn receive(
    State(hooks): State<Webhooks>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let attempt = query
        .ok()
        .and_then(|Query(q)| q.attempt)
        .and_then(|a| a.trim().parse::<i64>().ok());
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("The body is over {} bytes.", hooks.max_body_bytes),
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
    let now = hooks.clock.now();
    let verified = match hooks.keys.verify(&headers, &body, now, attempt) {
        Ok(verified) => verified,
        Err(err) => {
            tracing::warn!(reason = err.code(), "call-status webhook refused");
            return answer(StatusCode::UNAUTHORIZED, err.code(), &err.to_string());
        }
    };
    let (delivery_key, only_attempt) = match &verified {
        Verified::Standard { id, scope, .. } => (
            format!("id:{id}"),
            match scope {
                Scope::Platform => None,
                Scope::Attempt(attempt) => Some(*attempt),
            },
        ),
        Verified::Legacy => (
            format!("sha256:{}", hex::encode(Sha256::digest(&body))),
            None,
        ),
    };
    match handle(&hooks, &headers, &body, &delivery_key, only_attempt, now).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "call-status webhook failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The event could not be stored; send it again.",
            )
        }
    }
}

async fn handle(
    hooks: &Webhooks,
    headers: &HeaderMap,
    body: &[u8],
    delivery_key: &str,
    only_attempt: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Response> {
    let raw = String::from_utf8_lossy(body).into_owned();
    let header_json = stored_headers(headers);
    let mut tx = hooks.db.begin().await?;
    let delivery = store_delivery(&mut tx, delivery_key, &header_json, &raw, now).await?;
    if delivery.deliveries > 1 {
        tx.commit().await?;
        let status = StatusCode::from_u16(u16::try_from(delivery.status_code).unwrap_or(500))
            .unwrap_or(StatusCode::OK);
        let detail = format!(
            "Delivery already received (event {}): {}",
            delivery.id, delivery.result
        );
        return Ok(answer(status, "duplicate", &detail));
    }
    let report = match CallStatusBody::parse(body).and_then(|b| b.validate(now)) {
        Ok(report) => report,
        Err(invalid) => {
            finish(&mut tx, delivery.id, 400, &invalid.0, None, "").await?;
            tx.commit().await?;
            return Ok(answer(StatusCode::BAD_REQUEST, "invalid_event", &invalid.0));
        }
    };
    let event_type = report.event.event_type().as_str();
    match apply::apply(&mut tx, &report, only_attempt, now).await {
        Ok(applied) => {
            let key = applied
                .changed
                .then(|| apply::event_key(applied.attempt_id, &report));
            finish(
                &mut tx,
                delivery.id,
                200,
                &applied.summary,
                Some((&applied, key.as_deref())),
                event_type,
            )
            .await?;
            if let Some(write_back) = &applied.write_back {
                queue_write_back(&mut tx, applied.org_id, write_back).await?;
            }
            tx.commit().await?;
            if applied.changed {
                hooks.live.notify(applied.org_id);
            }
            let result = if applied.changed {
                "applied"
            } else {
                "unchanged"
            };
            Ok(answer(StatusCode::OK, result, &applied.summary))
        }
        Err(ApplyError::Db(err)) => Err(err.into()),
        Err(ApplyError::Internal(err)) => Err(anyhow::anyhow!(err)),
        Err(refused) => {
            // Nothing of the refused report stays; the delivery is stored on its own.
            tx.rollback().await?;
            let (status, code) = match &refused {
                ApplyError::NotFound(_) => (StatusCode::NOT_FOUND, "unknown_reminder"),
                _ => (StatusCode::CONFLICT, "illegal_transition"),
            };
            let message = refused.to_string();
            let mut tx = hooks.db.begin().await?;
            let delivery = store_delivery(&mut tx, delivery_key, &header_json, &raw, now).await?;
            // Shown on the reminder's page only when the sender may speak about it.
            let owner: Option<i64> = match only_attempt {
                None => {
                    sqlx::query_scalar("SELECT org_id FROM reminders WHERE id = $1")
                        .bind(report.reminder_id)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                Some(attempt) => {
                    sqlx::query_scalar(
                        "SELECT org_id FROM call_attempts WHERE id = $1 AND reminder_id = $2",
                    )
                    .bind(attempt)
                    .bind(report.reminder_id)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            sqlx::query(
                "UPDATE webhook_events SET status_code = $1, result = $2, event_type = $3, \
                   org_id = $4, reminder_id = $5 WHERE id = $6",
            )
            .bind(i64::from(status.as_u16()))
            .bind(&message)
            .bind(event_type)
            .bind(owner)
            .bind(owner.map(|_| report.reminder_id))
            .bind(delivery.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(answer(status, code, &message))
        }
    }
}

/// Stores a delivery (or counts a repeat of one) and returns it.
async fn store_delivery(
    tx: &mut Tx<'_>,
    delivery_key: &str,
    headers: &str,
    body: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Delivery, sqlx::Error> {
    let (id, deliveries, status_code, result): (i64, i64, i64, String) = sqlx::query_as(
        "INSERT INTO webhook_events (source, delivery_key, status_code, headers, body, received_at) \
         VALUES ($1, $2, 0, $3, $4, $5) \
         ON CONFLICT (source, delivery_key) DO UPDATE SET deliveries = webhook_events.deliveries + 1 \
         RETURNING id, deliveries, status_code, result",
    )
    .bind(SOURCE)
    .bind(delivery_key)
    .bind(headers)
    .bind(body)
    .bind(to_millis(now))
    .fetch_one(&mut **tx)
    .await?;
    Ok(Delivery {
        id,
        deliveries,
        status_code,
        result,
    })
}

async fn finish(
    tx: &mut Tx<'_>,
    id: i64,
    status: i64,
    result: &str,
    applied: Option<(&Applied, Option<&str>)>,
    event_type: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_events SET status_code = $1, result = $2, event_type = $3, \
           org_id = $4, reminder_id = $5, attempt_id = $6, event_key = $7 WHERE id = $8",
    )
    .bind(status)
    .bind(result)
    .bind(event_type)
    .bind(applied.map(|(a, _)| a.org_id))
    .bind(applied.map(|(a, _)| a.reminder_id))
    .bind(applied.map(|(a, _)| a.attempt_id))
    .bind(applied.and_then(|(_, key)| key))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues the outcome's note for the invoice in Zoho Books, if it came from there and the
/// organization is connected; the write-back engine delivers it with retries.
async fn queue_write_back(
    tx: &mut Tx<'_>,
    org_id: i64,
    write_back: &WriteBack,
) -> anyhow::Result<()> {
    use crate::integrations::store::{PROVIDER, SOURCE as ZOHO_SOURCE};
    let connected: Option<i64> = sqlx::query_scalar(
        "SELECT i.id FROM invoices i JOIN integration_connections c \
           ON c.org_id = i.org_id AND c.provider = $1 AND c.status <> 'choosing' \
         WHERE i.id = $2 AND i.org_id = $3 AND i.source = $4",
    )
    .bind(PROVIDER)
    .bind(write_back.invoice_id)
    .bind(org_id)
    .bind(ZOHO_SOURCE)
    .fetch_optional(&mut **tx)
    .await?;
    if connected.is_none() {
        return Ok(());
    }
    // A failure here fails the whole report (the agent sends it again): no outcome is
    // applied without its write-back.
    crate::integrations::writeback::enqueue(
        tx,
        org_id,
        write_back.invoice_id,
        &write_back.description,
        write_back.payment_expected_date,
    )
    .await
    .map_err(|err| anyhow::anyhow!("queueing the write-back: {err}"))?;
    Ok(())
}
