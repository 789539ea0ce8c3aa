//! The accounts server of each data centre: the consent page, the token endpoint (code
//! exchange and refresh) and revocation, with Zoho's answers: errors as HTTP 200 JSON bodies,
//! single-use two-minute codes, one-hour access tokens, refresh tokens only for
//! `access_type=offline` (again only with `prompt=consent`), and the token limits.
//!
//! Choices where Zoho documents nothing: the signed-in user is the fake's
//! ([`super::FakeZoho::sign_in`]) unless the request has `login_hint`; a China (`cn`) account
//! is unknown to the other DCs and the other way round, while the rest are redirected to their
//! home DC; a redirect URI that does not match is refused with `invalid_redirect_uri`;
//! revoking a token this DC does not know answers `{"error":"invalid_token"}`.

use std::collections::HashMap;

use axum::Form;
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use serde_json::{Value, json};

use super::state::{
    CODE_SECONDS, GrantCode, State, TOKEN_REQUESTS_PER_WINDOW, TOKEN_WINDOW_MINUTES,
};
use super::{DataCentre, FakeZoho};

type Params = HashMap<String, String>;

fn param<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map(|v| v.trim()).unwrap_or("")
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n<body>\n<main>\n{body}\n\
         <p><small>This is a local stand-in for Zoho Accounts, used by tests and the offline \
         demo. Nothing leaves this machine.</small></p>\n</main>\n</body>\n</html>\n",
        html_escape(title)
    )
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Zoho Accounts</h1>\n<p role=\"alert\">{}</p>",
        html_escape(message)
    );
    (status, Html(page("Zoho Accounts: error", &body))).into_response()
}

/// What an authorize request asks for, checked.
struct AuthorizeRequest {
    client_name: String,
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
    offline: bool,
    prompt_consent: bool,
}

fn check_authorize(state: &State, params: &Params) -> Result<AuthorizeRequest, String> {
    let client_id = param(params, "client_id");
    let client = state
        .client(client_id)
        .ok_or("Invalid client: no application has this client_id.")?;
    let redirect_uri = param(params, "redirect_uri");
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err("Invalid redirect URI: it is not registered for this client.".to_owned());
    }
    if param(params, "response_type") != "code" {
        return Err("Invalid response_type: only \"code\" is supported.".to_owned());
    }
    let scopes: Vec<String> = param(params, "scope")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err("Invalid scope: at least one scope is required.".to_owned());
    }
    Ok(AuthorizeRequest {
        client_name: client.name.clone(),
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: param(params, "state").to_owned(),
        offline: param(params, "access_type").eq_ignore_ascii_case("offline"),
        prompt_consent: param(params, "prompt").eq_ignore_ascii_case("consent"),
    })
}

/// The user an authorize request acts for, and their home DC.
/// What both sides of the consent page check: the data centre, the authorize parameters and
/// the signed-in user (with their home data centre). An error is the status and message of the
/// page to answer with.
fn authorize_request(
    state: &State,
    dc: &str,
    params: &Params,
) -> Result<(DataCentre, AuthorizeRequest, String, DataCentre), (StatusCode, String)> {
    let dc = DataCentre::parse(dc)
        .ok_or_else(|| (StatusCode::NOT_FOUND, "Unknown data centre.".to_owned()))?;
    let bad = |message| (StatusCode::BAD_REQUEST, message);
    let request = check_authorize(state, params).map_err(bad)?;
    let (email, home) = signed_in_user(state, params).map_err(bad)?;
    Ok((dc, request, email, home))
}

fn signed_in_user(state: &State, params: &Params) -> Result<(String, DataCentre), String> {
    let email = match param(params, "login_hint") {
        "" => state
            .signed_in
            .clone()
            .ok_or("No user is signed in to the fake Zoho.")?,
        hint => hint.to_ascii_lowercase(),
    };
    let home = *state
        .users
        .get(&email)
        .ok_or_else(|| format!("No Zoho account for {email}."))?;
    Ok((email, home))
}

/// `GET /accounts/{dc}/oauth/v2/auth`: redirects to the user's home DC, or shows the consent.
pub(super) async fn consent_page(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let mut state = fake.lock();
    state.count("accounts.auth");
    let (dc, request, email, home) = match authorize_request(&state, &dc, &params) {
        Ok(checked) => checked,
        Err((status, message)) => return error_page(status, &message),
    };
    if home != dc {
        // China runs apart: neither side knows the other's accounts.
        if home == DataCentre::Cn || dc == DataCentre::Cn {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("No Zoho account for {email} in this data centre."),
            );
        }
        let query: String = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let target = format!("{}/oauth/v2/auth?{query}", state.accounts_url(home));
        return Redirect::temporary(&target).into_response();
    }

    let scope = request.scopes.join(",");
    let hidden = [
        ("client_id", request.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", request.state.as_str()),
        (
            "access_type",
            if request.offline { "offline" } else { "online" },
        ),
        (
            "prompt",
            if request.prompt_consent {
                "consent"
            } else {
                ""
            },
        ),
        ("login_hint", email.as_str()),
    ]
    .iter()
    .map(|(name, value)| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            html_escape(value)
        )
    })
    .collect::<Vec<_>>()
    .join("\n");
    let scopes = request
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
        .collect::<Vec<_>>()
        .join("\n");
    let client = html_escape(&request.client_name);
    let body = format!(
        "<h1>{client} would like to access your Zoho account</h1>\n\
         <p>Signed in as <strong>{}</strong> (data centre <code>{}</code>).</p>\n\
         <h2>{client} is asking to</h2>\n<ul>\n{scopes}\n</ul>\n\
         <form method=\"post\" action=\"{}/oauth/v2/auth\">\n{hidden}\n\
         <button type=\"submit\" name=\"decision\" value=\"accept\">Accept</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"reject\">Reject</button>\n\
         </form>",
        html_escape(&email),
        dc.location(),
        html_escape(&state.accounts_url(dc)),
    );
    let title = format!("Zoho Accounts: authorize {}", request.client_name);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(page(&title, &body)),
    )
        .into_response()
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `redirect_uri` with extra query parameters.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = reqwest::Url::parse(redirect_uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
    Some(url.to_string())
}

/// `POST /accounts/{dc}/oauth/v2/auth`: the consent button. Accept redirects back with a
/// code, `location` and `accounts-server`; reject with `error=access_denied`.
pub(super) async fn consent_decision(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    Form(params): Form<Params>,
) -> Response {
    let mut state = fake.lock();
    let (dc, request, email, home) = match authorize_request(&state, &dc, &params) {
        Ok(checked) => checked,
        Err((status, message)) => return error_page(status, &message),
    };
    if home != dc {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("No Zoho account for {email} in this data centre."),
        );
    }
    let target = if param(&params, "decision") == "accept" {
        let consent = (email.clone(), request.client_id.clone());
        let with_refresh_token =
            request.offline && (request.prompt_consent || !state.consents.contains(&consent));
        state.consents.insert(consent);
        let code = State::secret();
        let now = state.now();
        state.codes.retain(|_, c| c.expires_at > now);
        let expires_at = now + Duration::seconds(CODE_SECONDS);
        state.codes.insert(
            code.clone(),
            GrantCode {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                user: email,
                dc,
                scopes: request.scopes.clone(),
                with_refresh_token,
                expires_at,
            },
        );
        let accounts_server = state.accounts_url(dc);
        redirect_with(
            &request.redirect_uri,
            &[
                ("code", &code),
                ("state", &request.state),
                ("location", dc.location()),
                ("accounts-server", &accounts_server),
            ],
        )
    } else {
        redirect_with(
            &request.redirect_uri,
            &[("error", "access_denied"), ("state", &request.state)],
        )
    };
    match target {
        Some(target) => Redirect::to(&target).into_response(),
        None => error_page(StatusCode::BAD_REQUEST, "The redirect URI is not a URL."),
    }
}

fn oauth_error(error: &str) -> Json<Value> {
    Json(json!({ "error": error }))
}

/// Query string and form body together (the body wins); Zoho accepts either.
fn merged(query: Params, body: Result<Form<Params>, FormRejection>) -> Params {
    let mut params = query;
    if let Ok(Form(body)) = body {
        params.extend(body);
    }
    params
}

/// `POST /accounts/{dc}/oauth/v2/token`: `authorization_code` and `refresh_token` grants.
pub(super) async fn token(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    Query(query): Query<Params>,
    body: Result<Form<Params>, FormRejection>,
) -> Response {
    let params = merged(query, body);
    let mut state = fake.lock();
    let grant_type = param(&params, "grant_type");
    state.count(match grant_type {
        "authorization_code" => "token.authorization_code",
        "refresh_token" => "token.refresh_token",
        _ => "token.other",
    });
    let Some(dc) = DataCentre::parse(&dc) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let client_id = param(&params, "client_id");
    let client_ok = state
        .client(client_id)
        .is_some_and(|c| c.client_secret == param(&params, "client_secret"));
    if !client_ok {
        return oauth_error("invalid_client").into_response();
    }
    match grant_type {
        "authorization_code" => exchange_code(&mut state, dc, &params).into_response(),
        "refresh_token" => refresh(&mut state, dc, &params).into_response(),
        _ => oauth_error("unsupported_grant_type").into_response(),
    }
}

fn exchange_code(state: &mut State, dc: DataCentre, params: &Params) -> Json<Value> {
    let now = state.now();
    let code_text = param(params, "code");
    // A code is known only to the DC that issued it, and only until it expires or is used.
    let code = match state.codes.get(code_text) {
        Some(code) if code.dc == dc && code.expires_at > now => code.clone(),
        _ => return oauth_error("invalid_code"),
    };
    if code.client_id != param(params, "client_id") {
        return oauth_error("invalid_client");
    }
    if code.redirect_uri != param(params, "redirect_uri") {
        return oauth_error("invalid_redirect_uri");
    }
    state.codes.remove(code_text);
    let refresh_token = code
        .with_refresh_token
        .then(|| state.issue_refresh_token(&code));
    if let Some(refresh) = &refresh_token
        && let Some(token) = state.refresh_tokens.get_mut(refresh)
    {
        token.requests.push(now);
    }
    let access_token =
        state.issue_access_token(refresh_token.as_deref(), &code.user, dc, &code.scopes);
    let mut body = json!({
        "access_token": access_token,
        "api_domain": state.api_domain(dc),
        "token_type": "Bearer",
        "expires_in": super::state::ACCESS_TOKEN_SECONDS,
    });
    if let (Some(refresh), Value::Object(fields)) = (refresh_token, &mut body) {
        fields.insert("refresh_token".to_owned(), Value::from(refresh));
    }
    Json(body)
}

fn refresh(state: &mut State, dc: DataCentre, params: &Params) -> Json<Value> {
    let now = state.now();
    let refresh_text = param(params, "refresh_token");
    let Some(token) = state.refresh_tokens.get_mut(refresh_text) else {
        return oauth_error("invalid_code");
    };
    if token.dc != dc {
        return oauth_error("invalid_code");
    }
    if token.client_id != param(params, "client_id") {
        return oauth_error("invalid_client");
    }
    let window_start = now - Duration::minutes(TOKEN_WINDOW_MINUTES);
    token.requests.retain(|t| *t > window_start);
    if token.requests.len() >= TOKEN_REQUESTS_PER_WINDOW {
        // Zoho answers throttling with HTTP 200 too; the refused request is not counted.
        return Json(json!({
            "error": "Access Denied",
            "error_description": "You have made too many requests continuously. Please try again after some time.",
            "status": "failure",
        }));
    }
    token.requests.push(now);
    let (user, scopes) = (token.user.clone(), token.scopes.clone());
    let access_token = state.issue_access_token(Some(refresh_text), &user, dc, &scopes);
    Json(json!({
        "access_token": access_token,
        "api_domain": state.api_domain(dc),
        "token_type": "Bearer",
        "expires_in": super::state::ACCESS_TOKEN_SECONDS,
    }))
}

/// `POST /accounts/{dc}/oauth/v2/token/revoke?token=…`: a refresh token takes its access
/// tokens with it; an access token goes alone.
pub(super) async fn revoke(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    Query(query): Query<Params>,
    body: Result<Form<Params>, FormRejection>,
) -> Response {
    let params = merged(query, body);
    let mut state = fake.lock();
    state.count("token.revoke");
    let Some(dc) = DataCentre::parse(&dc) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let token = param(&params, "token");
    if state.refresh_tokens.get(token).is_some_and(|t| t.dc == dc) {
        state.revoke_refresh_token(token);
    } else if state.access_tokens.get(token).is_some_and(|t| t.dc == dc) {
        state.access_tokens.remove(token);
    } else {
        return oauth_error("invalid_token").into_response();
    }
    Json(json!({ "status": "success" })).into_response()
}
