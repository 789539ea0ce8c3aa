//! Liveness and readiness probes for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;

use app::state::AppState;

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers, so requests can be served.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.db.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}
