//! Zoho Accounts: the authorization-code flow, refresh and revocation, with the `oauth2`
//! crate over reqwest.
//!
//! Zoho answers token errors with HTTP 200 and `{"error": "invalid_code"}`; the HTTP adapter
//! turns such answers into HTTP 400 so the crate reads them as the error responses they are.
//! The authorize request starts at the configured accounts server (Zoho redirects users to
//! their own data centre); the callback names the user's accounts server, which is accepted
//! only if it is one of the configured data centres.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use super::config::{DataCentre, ZohoConfig};

/// What Duecall asks Zoho for: read contacts, invoices and the organization list; write
/// invoice comments (call outcomes and promised payment dates).
pub const SCOPES: &[&str] = &[
    "ZohoBooks.contacts.READ",
    "ZohoBooks.invoices.READ",
    "ZohoBooks.invoices.CREATE",
    "ZohoBooks.settings.READ",
];

/// Zoho's token answer (its `api_domain` field is not used: the data centre the callback
/// names decides where the API is).
type ZohoTokenResponse = StandardTokenResponse<EmptyExtraTokenFields, BasicTokenType>;

type ZohoClient<HasAuthUrl> = Client<
    BasicErrorResponse,
    ZohoTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a token request failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OAuthError {
    /// The code or refresh token is spent, expired or revoked: the user must connect again.
    #[error("Zoho no longer accepts this authorization ({0}); connect Zoho Books again")]
    Revoked(String),
    /// Zoho refused the client id or secret (or the data centre): a configuration problem.
    #[error(
        "Zoho refused Duecall's client credentials ({0}); check DUECALL_ZOHO_CLIENT_ID and DUECALL_ZOHO_CLIENT_SECRET"
    )]
    Client(String),
    /// Throttling, timeouts or a broken answer: worth trying again later.
    #[error("Zoho Accounts is unavailable: {0}")]
    Unavailable(String),
}

/// A fresh set of tokens.
pub struct Tokens {
    pub access_token: SecretString,
    /// Present on the first exchange (with `access_type=offline`), absent on refreshes.
    pub refresh_token: Option<SecretString>,
    pub expires_in: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The oauth2 crate's HTTP client: reqwest, answers adjusted by [`send`].
struct ZohoHttp(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for ZohoHttp {
    type Error = TransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'static>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), request))
    }
}

/// The transport error of the HTTP adapter.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// Sends an oauth2 request with reqwest (redirects are never followed: a token endpoint that
/// redirects is not one to send secrets to) and marks Zoho's HTTP-200 errors as errors.
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| TransportError(e.to_string()))?;
    let mut status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| TransportError(e.to_string()))?
        .to_vec();
    if status.is_success() {
        let error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|v| v.get("error").is_some() && v.get("access_token").is_none());
        if error {
            status = http::StatusCode::BAD_REQUEST;
        }
    }
    let mut builder = http::Response::builder().status(status);
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    builder
        .body(body)
        .map_err(|e| TransportError(e.to_string()))
}

fn error_of(err: RequestTokenError<TransportError, BasicErrorResponse>) -> OAuthError {
    match err {
        RequestTokenError::ServerResponse(response) => {
            let code = match response.error() {
                BasicErrorResponseType::Extension(code) => code.clone(),
                other => other.to_string(),
            };
            match code.as_str() {
                "invalid_code" | "invalid_grant" | "invalid_token" | "access_denied" => {
                    OAuthError::Revoked(code)
                }
                "invalid_client"
                | "invalid_client_secret"
                | "unauthorized_client"
                | "invalid_redirect_uri" => OAuthError::Client(code),
                _ => OAuthError::Unavailable(match response.error_description() {
                    Some(description) => format!("{code}: {description}"),
                    None => code,
                }),
            }
        }
        RequestTokenError::Request(err) => OAuthError::Unavailable(err.to_string()),
        RequestTokenError::Parse(err, _) => {
            OAuthError::Unavailable(format!("unreadable answer: {err}"))
        }
        RequestTokenError::Other(other) => OAuthError::Unavailable(other),
    }
}

fn tokens_of(response: ZohoTokenResponse) -> Tokens {
    Tokens {
        access_token: SecretString::from(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone())),
        expires_in: response.expires_in().unwrap_or(Duration::from_secs(3600)),
    }
}

/// Zoho Accounts for one Duecall installation.
#[derive(Clone)]
pub struct Accounts {
    config: ZohoConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn new(config: ZohoConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &ZohoConfig {
        &self.config
    }

    fn client(&self, token_url: &str) -> Result<ZohoClient<EndpointNotSet>, OAuthError> {
        let token_url = TokenUrl::new(token_url.to_owned())
            .map_err(|e| OAuthError::Client(format!("token URL: {e}")))?;
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|e| OAuthError::Client(format!("redirect URL: {e}")))?;
        Ok(Client::new(ClientId::new(self.config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.config.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect))
    }

    /// The consent URL and the `state` to bind to the user's session.
    pub fn authorize_url(&self) -> Result<(String, String), OAuthError> {
        let start = &self.config.accounts_start;
        let auth_url = AuthUrl::new(format!("{start}/oauth/v2/auth"))
            .map_err(|e| OAuthError::Client(format!("accounts URL: {e}")))?;
        let client = self
            .client(&format!("{start}/oauth/v2/token"))?
            .set_auth_uri(auth_url);
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            // Zoho separates scopes with commas.
            .add_scope(Scope::new(SCOPES.join(",")))
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent")
            .url();
        Ok((url.to_string(), state.secret().clone()))
    }

    /// The data centre whose accounts server the callback names, if it is a known one.
    pub fn data_centre(&self, accounts_server: &str) -> Option<&DataCentre> {
        let wanted = accounts_server.trim().trim_end_matches('/');
        self.config
            .data_centres
            .iter()
            .find(|dc| dc.accounts_server == wanted)
    }

    /// Exchanges an authorization code at the user's data centre.
    pub async fn exchange(&self, dc: &DataCentre, code: &str) -> Result<Tokens, OAuthError> {
        let client = self.client(&format!("{}/oauth/v2/token", dc.accounts_server))?;
        let http = ZohoHttp(self.http.clone());
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .request_async(&http)
            .await
            .map_err(error_of)?;
        Ok(tokens_of(response))
    }

    /// A new access token from the refresh token.
    pub async fn refresh(
        &self,
        accounts_server: &str,
        refresh_token: &SecretString,
    ) -> Result<Tokens, OAuthError> {
        let client = self.client(&format!("{accounts_server}/oauth/v2/token"))?;
        let http = ZohoHttp(self.http.clone());
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let response = client
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map_err(error_of)?;
        Ok(tokens_of(response))
    }

    /// Revokes a refresh token (and with it every access token made from it). A token Zoho
    /// no longer knows counts as revoked.
    pub async fn revoke(
        &self,
        accounts_server: &str,
        refresh_token: &SecretString,
    ) -> Result<(), OAuthError> {
        let response = self
            .http
            .post(format!("{accounts_server}/oauth/v2/token/revoke"))
            .query(&[("token", refresh_token.expose_secret())])
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| OAuthError::Unavailable(format!("unreadable answer: {e}")))?;
        match body.get("error").and_then(|e| e.as_str()) {
            None if status.is_success() => Ok(()),
            Some("invalid_token") => Ok(()),
            Some(other) => Err(OAuthError::Unavailable(other.to_owned())),
            None => Err(OAuthError::Unavailable(format!("HTTP {status}"))),
        }
    }
}
