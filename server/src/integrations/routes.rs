//! The Zoho Books routes: connect (to Zoho's consent page), the OAuth callback, choosing the
//! Books organization, "Sync now", disconnect, and the push endpoint for Books workflow
//! webhooks. Browser actions are plain form posts that redirect back to the Integrations
//! page, so they work without JavaScript.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use app::accounts::service::{self, Member};
use app::accounts::session;
use app::db::time::now_millis;
use app::error::AppError;
use app::state::AppState;

use super::Zoho;
use super::store::{self, PUSH_SECRET};
use super::zoho::api;

/// Where the browser goes back to.
const PAGE: &str = "/integrations";
/// The session key of an authorization in progress.
const PENDING: &str = "zoho.pending";
/// A consent left open longer than this is refused.
const PENDING_MS: i64 = 15 * 60 * 1000;

pub fn routes(zoho: Option<Zoho>) -> Router<AppState> {
    let router = Router::new()
        .route("/integrations/zoho/connect", post(connect))
        .route("/integrations/zoho/callback", get(callback))
        .route("/integrations/zoho/organization", post(choose))
        .route("/integrations/zoho/sync", post(sync_now))
        .route("/integrations/zoho/disconnect", post(disconnect))
        .route("/webhooks/zoho/{org_id}", post(push));
    match zoho {
        Some(zoho) => router.layer(Extension(Some(zoho))),
        None => router.layer(Extension(None::<Zoho>)),
    }
}

/// An authorization in progress, bound to the session that started it.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    org_id: i64,
    user_id: i64,
    started_at: i64,
}

/// A Books organization the user may choose, as kept with the connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AvailableOrg {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub is_default: bool,
}

fn back(query: &str) -> Response {
    Redirect::to(&format!("{PAGE}?{query}")).into_response()
}

fn not_configured() -> Response {
    back("zoho=not_configured")
}

/// The member behind a browser action who may change integrations (admins and owners).
async fn admin(state: &AppState, session: &Session) -> Result<Member, Response> {
    match session::require_member(&state.db, session).await {
        Ok(member) if member.require_admin().is_ok() => Ok(member),
        Ok(_) => Err(back("zoho=forbidden")),
        Err(AppError::Unauthorized) => Err(Redirect::to("/sign-in").into_response()),
        Err(err) => Err(err.into_response()),
    }
}

async fn connect(
    State(state): State<AppState>,
    Extension(zoho): Extension<Option<Zoho>>,
    session: Session,
) -> Response {
    let Some(zoho) = zoho else {
        return not_configured();
    };
    let member = match admin(&state, &session).await {
        Ok(member) => member,
        Err(response) => return response,
    };
    let (url, csrf) = match zoho.accounts.authorize_url() {
        Ok(pair) => pair,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the Zoho consent URL");
            return back("zoho=error");
        }
    };
    let pending = Pending {
        state: csrf,
        org_id: member.org_id,
        user_id: member.user_id,
        started_at: now_millis(),
    };
    if let Err(err) = session.insert(PENDING, pending).await {
        return AppError::from(err).into_response();
    }
    Redirect::to(&url).into_response()
}

async fn callback(
    State(state): State<AppState>,
    Extension(zoho): Extension<Option<Zoho>>,
    session: Session,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(zoho) = zoho else {
        return not_configured();
    };
    // Single use: whatever happens next, this authorization attempt is over.
    let pending: Option<Pending> = session.remove(PENDING).await.ok().flatten();
    let Some(pending) = pending else {
        return back("zoho=expired");
    };
    let given = params.get("state").map(String::as_str).unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(pending.state.as_bytes()))
        || now_millis() - pending.started_at > PENDING_MS
    {
        return back("zoho=expired");
    }
    let member = match admin(&state, &session).await {
        Ok(member) => member,
        Err(response) => return response,
    };
    if member.org_id != pending.org_id || member.user_id != pending.user_id {
        return back("zoho=expired");
    }
    if params.contains_key("error") {
        return back("zoho=denied");
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return back("zoho=denied");
    };
    let server = params
        .get("accounts-server")
        .cloned()
        .unwrap_or_else(|| zoho.accounts.config().accounts_start.clone());
    let Some(dc) = zoho.accounts.data_centre(&server).cloned() else {
        tracing::warn!(accounts_server = %server, "Zoho callback names an unknown accounts server");
        return back("zoho=unknown_dc");
    };
    let tokens = match zoho.accounts.exchange(&dc, code).await {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::warn!(error = %err, "Zoho code exchange failed");
            return back("zoho=exchange_failed");
        }
    };
    let orgs = match api::organizations(
        zoho.http(),
        &dc.api_domain,
        &tokens.access_token,
        zoho.settings.retry.timeout,
    )
    .await
    {
        Ok(orgs) => orgs,
        Err(err) => {
            tracing::warn!(error = %err, "listing Zoho organizations failed");
            return back("zoho=organizations_failed");
        }
    };
    let available: Vec<AvailableOrg> = orgs
        .into_iter()
        .map(|o| AvailableOrg {
            id: o.organization_id,
            name: o.name,
            currency: o.currency_code,
            is_default: o.is_default_org,
        })
        .collect();
    if let Err(err) = store::save_authorization(
        &state.db,
        &zoho.keyring,
        member.org_id,
        member.user_id,
        &dc,
        &tokens,
    )
    .await
    {
        return err.into_response();
    }
    let json = serde_json::to_string(&available).unwrap_or_else(|_| "[]".into());
    let saved = sqlx::query(
        "UPDATE integration_connections SET available_orgs = $3 WHERE org_id = $1 AND provider = $2",
    )
    .bind(member.org_id)
    .bind(store::PROVIDER)
    .bind(json)
    .execute(state.db.pool())
    .await;
    if let Err(err) = saved {
        return AppError::from(err).into_response();
    }
    let _ = audit(
        &state,
        member,
        "integration.connected",
        &format!("Zoho Books ({})", dc.location),
    )
    .await;
    // A reconnect to the organization already chosen resumes syncing at once.
    if let Ok(Some(connection)) = store::connection(&state.db, member.org_id).await
        && connection.status == "connected"
    {
        zoho.wake.notify_one();
        return back("zoho=reconnected");
    }
    back("zoho=choose")
}

async fn audit(
    state: &AppState,
    member: Member,
    action: &str,
    detail: &str,
) -> Result<(), AppError> {
    let mut tx = state.db.begin().await?;
    service::audit(&mut tx, member.org_id, Some(member.user_id), action, detail).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Deserialize)]
struct Choice {
    organization_id: String,
}

async fn choose(
    State(state): State<AppState>,
    Extension(zoho): Extension<Option<Zoho>>,
    session: Session,
    Form(choice): Form<Choice>,
) -> Response {
    let Some(zoho) = zoho else {
        return not_configured();
    };
    let member = match admin(&state, &session).await {
        Ok(member) => member,
        Err(response) => return response,
    };
    let available: Option<String> = sqlx::query_scalar(
        "SELECT available_orgs FROM integration_connections WHERE org_id = $1 AND provider = $2",
    )
    .bind(member.org_id)
    .bind(store::PROVIDER)
    .fetch_optional(state.db.pool())
    .await
    .ok()
    .flatten();
    let available: Vec<AvailableOrg> = available
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let Some(org) = available.iter().find(|o| o.id == choice.organization_id) else {
        return back("zoho=unknown_organization");
    };
    match store::choose_organization(&state.db, member.org_id, &org.id, &org.name).await {
        Ok(()) => {
            let _ = audit(&state, member, "integration.organization_chosen", &org.name).await;
            zoho.wake.notify_one();
            back("zoho=syncing")
        }
        Err(AppError::NotFound) => back("zoho=expired"),
        Err(err) => err.into_response(),
    }
}

async fn sync_now(
    State(state): State<AppState>,
    Extension(zoho): Extension<Option<Zoho>>,
    session: Session,
) -> Response {
    let Some(zoho) = zoho else {
        return not_configured();
    };
    let member = match session::require_member(&state.db, &session).await {
        Ok(member) if member.require_write().is_ok() => member,
        Ok(_) => return back("zoho=forbidden"),
        Err(AppError::Unauthorized) => return Redirect::to("/sign-in").into_response(),
        Err(err) => return err.into_response(),
    };
    match store::request_sync(&state.db, member.org_id, "manual").await {
        Ok(true) => {
            zoho.wake.notify_one();
            back("zoho=syncing")
        }
        Ok(false) => back("zoho=not_connected"),
        Err(err) => err.into_response(),
    }
}

async fn disconnect(
    State(state): State<AppState>,
    Extension(zoho): Extension<Option<Zoho>>,
    session: Session,
) -> Response {
    let Some(zoho) = zoho else {
        return not_configured();
    };
    let member = match admin(&state, &session).await {
        Ok(member) => member,
        Err(response) => return response,
    };
    let connection = match store::connection(&state.db, member.org_id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return back("zoho=not_connected"),
        Err(err) => return err.into_response(),
    };
    // Revoke at Zoho first; the local copy goes either way (a token Zoho cannot be reached to
    // revoke is still useless without the copy here).
    let revoked = match zoho.keyring.open(
        connection.org_id,
        store::REFRESH_TOKEN,
        &connection.refresh_token,
    ) {
        Ok(opened) => zoho
            .accounts
            .revoke(&connection.accounts_server, &opened.secret)
            .await
            .map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    if let Err(err) = store::delete(&state.db, member.org_id).await {
        return err.into_response();
    }
    let _ = audit(&state, member, "integration.disconnected", "Zoho Books").await;
    match revoked {
        Ok(()) => back("zoho=disconnected"),
        Err(reason) => {
            tracing::warn!(%reason, "Zoho token revocation failed; deleted locally");
            back("zoho=disconnected_unrevoked")
        }
    }
}

/// `POST /webhooks/zoho/{org_id}`: a Books workflow webhook saying something changed. The
/// organization's push secret comes in the `X-Duecall-Secret` header or a `secret` query
/// parameter; the answer is the same for an unknown organization and a wrong secret.
async fn push(
    State(state): State<AppState>,
    Extension(zoho): Extension<Option<Zoho>>,
    Path(org_id): Path<i64>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let refused = || {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "unauthorized"})),
        )
            .into_response()
    };
    let Some(zoho) = zoho else {
        return refused();
    };
    let given = headers
        .get("x-duecall-secret")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("secret").cloned())
        .unwrap_or_default();
    let connection = match store::connection(&state.db, org_id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => return refused(),
        Err(err) => return err.into_response(),
    };
    let expected: SecretString =
        match zoho
            .keyring
            .open(org_id, PUSH_SECRET, &connection.push_secret)
        {
            Ok(opened) => opened.secret,
            Err(_) => return refused(),
        };
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes()))
    {
        return refused();
    }
    match store::request_sync(&state.db, org_id, "push").await {
        Ok(queued) => {
            if queued {
                zoho.wake.notify_one();
            }
            (
                StatusCode::ACCEPTED,
                Json(
                    serde_json::json!({"status": if queued { "queued" } else { "not_connected" }}),
                ),
            )
                .into_response()
        }
        Err(err) => err.into_response(),
    }
}
