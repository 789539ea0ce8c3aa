//! `POST /api/webhooks/call-status`: the voice agent's reports on each call.
//!
//! Order of work: the signature over the raw bytes ([`super::signature`]); the body parsed and
//! validated; then, in one transaction of the [`super::writer`] (with whatever other reports
//! queued meanwhile): the delivery stored (a repeated delivery gets the first one's answer and
//! changes nothing), the report applied with its follow-up ([`app::calls::apply`]) and the
//! outcome's write-back queued. The answer is sent after the commit.
//!
//! Answers, always with a JSON body: 200 (applied, or known already), 400 (bad body or event),
//! 401 (signature, stale or replayed timestamp), 404 (unknown reminder or attempt), 409 (the
//! report contradicts the call's state), 413 (too large), 500, 503 (too many reports waiting
//! to be stored; with `Retry-After`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use app::calls::report::CallStatusBody;

use super::Webhooks;
use super::signature::{LEGACY_HEADER, SIGNATURE_HEADER, Scope, Verified};
use super::writer::{Answer, Delivery};

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
    let report = CallStatusBody::parse(&body)
        .and_then(|parsed| parsed.validate(now))
        .map_err(|invalid| invalid.0);
    let delivery = Delivery {
        key: delivery_key,
        headers: stored_headers(&headers),
        body: String::from_utf8_lossy(&body).into_owned(),
        report,
        only_attempt,
        now,
    };
    let Answer {
        status,
        code,
        message,
    } = hooks.writer.submit(delivery).await;
    let mut response = answer(status, code, &message);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}
