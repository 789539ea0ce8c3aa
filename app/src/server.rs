//! Glue shared by every server function: the request's state, session and member, and the
//! mapping of an [`AppError`] to the HTTP status of the server function's response.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use tower_sessions::Session;

use crate::accounts::service::Member;
use crate::accounts::session;
use crate::error::AppError;
use crate::state::AppState;

/// The state and session of the current request.
pub async fn request() -> Result<(AppState, Session), AppError> {
    let state = AppState::from_context()?;
    let session = leptos_axum::extract::<Session>()
        .await
        .map_err(|err| AppError::internal("session layer missing", err))?;
    Ok((state, session))
}

/// The state and the signed-in member; `Unauthorized` when nobody is signed in.
pub async fn member() -> Result<(AppState, Member), AppError> {
    let (state, session) = request().await?;
    let member = session::require_member(&state.db, &session).await?;
    Ok((state, member))
}

/// The client's address: from the trusted proxy's header when one is configured, otherwise
/// the TCP peer (when the server was started with connection info).
pub fn client_ip() -> Option<IpAddr> {
    let parts = leptos::prelude::use_context::<http::request::Parts>()?;
    let state = leptos::prelude::use_context::<AppState>()?;
    match &state.client_ip_header {
        Some(header) => ip_from_header(parts.headers.get(header)?.to_str().ok()?),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip()),
    }
}

/// The right-most address of a proxy header: the one the nearest (trusted) proxy added.
fn ip_from_header(value: &str) -> Option<IpAddr> {
    value.rsplit(',').next()?.trim().parse().ok()
}

/// A same-site path to return to after signing in; anything else becomes the dashboard.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{ip_from_header, safe_next};

    #[test]
    fn proxy_headers_yield_the_nearest_client_address() {
        assert_eq!(ip_from_header("203.0.113.9"), "203.0.113.9".parse().ok());
        assert_eq!(
            ip_from_header("198.51.100.1, 203.0.113.9"),
            "203.0.113.9".parse().ok()
        );
        assert_eq!(ip_from_header(" 2001:db8::1 "), "2001:db8::1".parse().ok());
        assert_eq!(ip_from_header("unknown"), None);
    }

    #[test]
    fn next_only_stays_on_site() {
        assert_eq!(
            safe_next(Some("/invoices?status=overdue")),
            "/invoices?status=overdue"
        );
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
