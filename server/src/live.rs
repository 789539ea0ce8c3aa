//! `GET /api/live`: the live feed of the signed-in member's organization, as server-sent events.
//! Each `change` event carries the reminder and call changes since the last one (JSON array of
//! [`LiveChange`]). The feed wakes when this process commits a change for the organization and
//! also looks every [`POLL`], so changes made by another instance arrive too; it reads only the
//! member's organization's rows, so nothing crosses organizations.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use app::accounts::session;
use app::calls::live::POLL;
use app::calls::queries::{latest_change, live_changes};
use app::calls::views::LiveChange;
use app::db::Db;
use app::state::AppState;

pub const LIVE_PATH: &str = "/api/live";

pub fn routes() -> Router<AppState> {
    Router::new().route(LIVE_PATH, get(feed))
}

async fn feed(State(state): State<AppState>, session: Session) -> Response {
    let member = match session::require_member(&state.db, &session).await {
        Ok(member) => member,
        Err(err) => return err.into_response(),
    };
    let start = match latest_change(&state.db, member.org_id).await {
        Ok(id) => id,
        Err(err) => return err.into_response(),
    };
    let events = changes(
        state.db.clone(),
        state.live.subscribe(),
        member.org_id,
        start,
    );
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies must not buffer the stream.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

struct Feed {
    db: Db,
    wake: tokio::sync::broadcast::Receiver<i64>,
    org_id: i64,
    last: i64,
}

/// The organization's changes after history event `last`, as they happen.
fn changes(
    db: Db,
    wake: tokio::sync::broadcast::Receiver<i64>,
    org_id: i64,
    last: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let feed = Feed {
        db,
        wake,
        org_id,
        last,
    };
    stream::unfold(feed, |mut feed| async move {
        loop {
            let woken = tokio::time::timeout(POLL, async {
                loop {
                    match feed.wake.recv().await {
                        Ok(org) if org == feed.org_id => return true,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return true,
                        Err(RecvError::Closed) => return false,
                    }
                }
            })
            .await;
            if woken == Ok(false) {
                return None;
            }
            let found: Vec<LiveChange> = match live_changes(&feed.db, feed.org_id, feed.last).await
            {
                Ok(found) => found,
                Err(err) => {
                    tracing::warn!(error = %err, "live feed could not read changes");
                    continue;
                }
            };
            if let Some(newest) = found.last() {
                feed.last = newest.id;
                let event = Event::default()
                    .event("change")
                    .json_data(&found)
                    .unwrap_or_else(|_| Event::default().event("change").data("[]"));
                return Some((Ok(event), feed));
            }
        }
    })
}
