//! Request body limits: small everywhere, large only where files are uploaded.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;

use app::receivables::import::MAX_FILE_BYTES;

/// Paths that accept file uploads, and their limit: two files plus form overhead.
const UPLOAD_PATHS: [&str; 1] = ["/api/receivables/import"];
pub const UPLOAD_LIMIT: usize = 2 * MAX_FILE_BYTES + 1024 * 1024;

/// Refuses bodies over the limit: with 413 when the declared length says so, and by cutting the
/// stream (the handler then fails to read it) when the length was not declared.
pub async fn limit_body(default_limit: usize, request: Request, next: Next) -> Response {
    let limit = if UPLOAD_PATHS.contains(&request.uri().path()) {
        UPLOAD_LIMIT
    } else {
        default_limit
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        if request.uri().path().starts_with("/api/webhooks/") {
            // Machine callers get the webhooks' JSON error shape.
            return crate::webhooks::call_status::answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("The body is over {limit} bytes."),
            );
        }
        return (StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.").into_response();
    }
    let (parts, body) = request.into_parts();
    next.run(Request::from_parts(
        parts,
        Body::new(Limited::new(body, limit)),
    ))
    .await
}
