//! Webhooks Duecall receives: the voice agent's call-status reports and LiveKit's room events.
//! Each reads the raw body, checks its signature first, and only then parses it.

pub mod call_status;
pub mod livekit;
pub mod sender;
pub mod signature;
pub mod test_event;
pub mod writer;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

use app::calls::live::Hub;
use app::db::Db;
use app::state::AppState;

use crate::reminders::Clock;
use signature::Keys;

/// What the webhook handlers share.
#[derive(Clone)]
pub struct Webhooks {
    pub db: Db,
    pub keys: Arc<Keys>,
    pub clock: Arc<dyn Clock>,
    pub live: Hub,
    /// Applies call-status reports in groups (see [`writer`]).
    pub writer: writer::Writer,
    pub max_body_bytes: usize,
    /// Verifies LiveKit's webhooks (when LiveKit is configured).
    pub livekit: Option<livekit_api::webhooks::WebhookReceiver>,
}

pub const CALL_STATUS_PATH: &str = "/api/webhooks/call-status";

pub fn routes(hooks: Webhooks) -> Router<AppState> {
    let limit = hooks.max_body_bytes;
    Router::new()
        .route(CALL_STATUS_PATH, post(call_status::receive))
        .route(livekit::LIVEKIT_PATH, post(livekit::receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(hooks)
}
