//! Gives every server-function error response the HTTP status of its [`AppError`].
//!
//! The server-function framework answers every error with 500, including arguments it could
//! not decode. This layer reads the (small, JSON) error body of those responses and sets the
//! status the error deserves: 400 for malformed input, 401, 403, 404, 409, 422, 429 — and 500
//! only for real internal errors. Plain HTML form posts are redirects and pass untouched.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use app::error::AppError;
use leptos::server_fn::error::FromServerFnError;

/// Server-function error bodies are a few hundred bytes; anything larger is left alone.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn server_fn_error_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        return Response::from_parts(parts, Body::empty());
    };
    let error = AppError::de(bytes.clone());
    parts.status = error.http_status();
    error.add_headers(&mut parts.headers);
    Response::from_parts(parts, Body::from(bytes))
}
