//! Security headers, the per-request CSP nonce, and a same-origin check for state-changing
//! requests.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;

/// The nonce the page's inline hydration scripts carry; the CSP allows only scripts with it.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// Options for [`security_headers`].
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    /// Add `Strict-Transport-Security` (served over https).
    pub hsts: bool,
    /// Allow the live-reload websocket of `cargo leptos watch`.
    pub dev_mode: bool,
    /// Origins besides our own that a form post may end up at through redirects (Zoho's
    /// accounts servers: "Connect Zoho Books" posts here and is redirected there),
    /// space-separated.
    pub form_targets: std::sync::Arc<str>,
}

pub fn content_security_policy(nonce: &str, dev_mode: bool, form_targets: &str) -> String {
    // 'wasm-unsafe-eval' lets the page compile its own WebAssembly; nothing else is evaluated.
    let connect = if dev_mode { "'self' ws:" } else { "'self'" };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src {connect}; \
         object-src 'none'; base-uri 'none'; form-action 'self'{extra}; frame-ancestors 'none'",
        extra = if form_targets.is_empty() {
            String::new()
        } else {
            format!(" {form_targets}")
        }
    )
}

/// Generates the request's nonce and sets the security headers on its response.
pub async fn security_headers(
    options: SecurityOptions,
    mut request: Request,
    next: Next,
) -> Response {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    request.extensions_mut().insert(CspNonce(nonce.clone()));

    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(
        &nonce,
        options.dev_mode,
        &options.form_targets,
    )) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin requests keep the full referrer: no-JavaScript forms return to it.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if options.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Refuses state-changing requests that a browser sent from another site (defence in depth
/// on top of `SameSite=Lax` session cookies). Requests without browser headers (webhooks,
/// scripts) pass: they carry no session cookie by accident.
pub async fn same_origin_writes(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let foreign_origin = match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host,
    ) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .map(|(_, authority)| authority)
            .is_none_or(|authority| authority != host),
        _ => false,
    };
    if cross_site || foreign_origin {
        return (
            StatusCode::FORBIDDEN,
            Body::from("Cross-site requests are not accepted."),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::content_security_policy;

    #[test]
    fn csp_allows_only_own_scripts_and_the_nonce() {
        let csp = content_security_policy("abc123", false, "");
        assert!(csp.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(!csp.contains("ws:"));
        assert!(content_security_policy("n", true, "").contains("connect-src 'self' ws:"));
    }
}
