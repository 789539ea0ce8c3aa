//! The integration-test harness: the real router, in process, on a fresh database of either
//! backend, with one helper per endpoint.
//!
//! PostgreSQL tests use `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! to create a throw-away database per test. When PostgreSQL is unreachable they are skipped
//! with a message, except under CI (`CI` set), where they fail.

#![allow(dead_code, reason = "each test binary uses part of the harness")]

pub mod consent;
pub mod reminders;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sqlx::Connection;
use tower::ServiceExt;

use app::db::Db;
use server::config::Config;

/// Declares one test per backend: `mod name { sqlite, postgres }`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: $crate::common::TestApp) $body

                #[tokio::test]
                async fn sqlite() {
                    body($crate::common::TestApp::new($crate::common::Backend::Sqlite).await.unwrap()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(app) = $crate::common::TestApp::new($crate::common::Backend::Postgres).await {
                        body(app).await;
                    }
                }
            }
        )*
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Removes the test's database when the test ends.
enum DbGuard {
    Sqlite(#[allow(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let Self::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; use a separate thread and runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub router: Router,
    pub db: Db,
    pub config: Config,
    pub backend: Backend,
    /// The clock webhooks are judged by (starts at the real time; tests move it).
    pub clock: server::reminders::ManualClock,
    _guard: DbGuard,
}

pub fn test_config(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "5".to_owned()),
        ("DUECALL_SIGN_IN_PER_MINUTE".to_owned(), "50".to_owned()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid")
}

impl TestApp {
    /// A fresh app on a fresh database; `None` when PostgreSQL is unavailable outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        Self::with_config(backend, &[]).await
    }

    pub async fn with_config(backend: Backend, extra: &[(&str, &str)]) -> Option<Self> {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let (url, guard) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/duecall.db", dir.path().display());
                (url, DbGuard::Sqlite(dir))
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
                let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(conn) => conn,
                    Err(err) => {
                        if std::env::var_os("CI").is_some() {
                            panic!(
                                "PostgreSQL is required under CI but unreachable at {admin_url}: {err}"
                            );
                        }
                        eprintln!(
                            "SKIPPED: PostgreSQL unreachable at {admin_url} ({err}); set TEST_POSTGRES_URL"
                        );
                        return None;
                    }
                };
                let name = format!("duecall_test_{:016x}", rand::random::<u64>());
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
                (
                    format!("{base}/{name}"),
                    DbGuard::Postgres { admin_url, name },
                )
            }
        };
        let config = test_config(&url, extra);
        let db = server::connect(&config).await.expect("connect and migrate");
        let clock = server::reminders::ManualClock::new(chrono::Utc::now());
        let router = Self::router(&config, &db, &clock);
        Some(Self {
            router,
            db,
            config,
            backend,
            clock,
            _guard: guard,
        })
    }

    fn router(config: &Config, db: &Db, clock: &server::reminders::ManualClock) -> Router {
        server::app_with_clock(
            server::state(config, db.clone()),
            config,
            &server::Integrations::default(),
            std::sync::Arc::new(clock.clone()),
        )
    }

    /// A client of another instance of the server on the same database: its own pool and
    /// router (and its own call-status writer), as when a team runs several.
    pub async fn another_instance(&self) -> Client {
        let db = server::connect(&self.config)
            .await
            .expect("connect the second instance");
        Client {
            router: Self::router(&self.config, &db, &self.clock),
            cookie: None,
        }
    }

    /// A new router over the same database, as after a restart.
    pub fn restart(&mut self) {
        self.router = Self::router(&self.config, &self.db, &self.clock);
    }

    pub fn client(&self) -> Client {
        Client {
            router: self.router.clone(),
            cookie: None,
        }
    }

    /// A client signed in as a new user who owns a new organization.
    pub async fn signed_up(&self, name: &str, email: &str, org: &str) -> Client {
        let mut client = self.client();
        let res = client
            .call(
                "/api/accounts/sign_up",
                &[
                    ("display_name", name),
                    ("email", email),
                    ("password", PASSWORD),
                    ("org_name", org),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "sign up failed: {}", res.body);
        client
    }

    /// A client signed in as an existing user.
    pub async fn signed_in(&self, email: &str) -> Client {
        let mut client = self.client();
        let res = client
            .call(
                "/api/accounts/sign_in",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "sign in failed: {}", res.body);
        client
    }

    /// The client's membership of its current organization, for calling services directly.
    pub async fn member(&self, client: &mut Client) -> app::accounts::service::Member {
        let user_id = client.user_id().await;
        let org_id = client.org_id().await;
        app::accounts::service::switch_org(&self.db, user_id, org_id)
            .await
            .expect("member")
    }

    /// Runs a query returning rows of text, for before/after snapshots.
    pub async fn snapshot(&self, sql: &'static str, org_id: i64) -> Vec<String> {
        use sqlx::Row;
        let rows = sqlx::query(sql)
            .bind(org_id)
            .fetch_all(self.db.pool())
            .await
            .expect("snapshot query");
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get::<String, _>(i)
                            .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .or_else(|_| row.try_get::<bool, _>(i).map(|v| v.to_string()))
                            .unwrap_or_else(|_| "NULL".to_owned())
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A browser-like client: keeps the session cookie between calls.
#[derive(Clone)]
pub struct Client {
    router: Router,
    pub cookie: Option<String>,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    pub async fn send(&mut self, mut request: Request<Body>) -> TestResponse {
        if let Some(cookie) = &self.cookie {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().expect("cookie header"));
        }
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, "localhost".parse().expect("host"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("cookie is ascii");
            let pair = set.split(';').next().unwrap_or_default();
            if let Some(value) = pair.strip_prefix("duecall_session=") {
                let removed = value.is_empty() || set.contains("Max-Age=0");
                self.cookie = (!removed).then(|| pair.to_owned());
            }
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        let request = Request::get(path)
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    /// Calls a server function the way the hydrated app does (form body, JSON answer).
    pub async fn call(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        self.call_raw(path, form(fields)).await
    }

    pub async fn call_raw(&mut self, path: &str, body: String) -> TestResponse {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::ACCEPT, "application/json")
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Calls a server function that takes a multipart form (file uploads).
    pub async fn call_multipart(
        &mut self,
        path: &str,
        files: &[(&str, &str, &[u8])],
    ) -> TestResponse {
        let boundary = "duecall-test-boundary";
        let mut body = Vec::new();
        for (field, filename, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = Request::post(path)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::ACCEPT, "application/json")
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Posts a form the way a browser without JavaScript does.
    pub async fn post_html_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        referer: &str,
    ) -> TestResponse {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .header(header::REFERER, referer)
            .header(header::ORIGIN, "http://localhost")
            .body(Body::from(form(fields)))
            .expect("request");
        self.send(request).await
    }

    /// The session view of the signed-in user (`null` for a visitor).
    pub async fn session(&mut self) -> serde_json::Value {
        let res = self.call("/api/accounts/session", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        res.json()
    }

    pub async fn org_id(&mut self) -> i64 {
        self.session().await["org"]["id"]
            .as_i64()
            .expect("signed in")
    }

    pub async fn user_id(&mut self) -> i64 {
        self.session().await["user"]["id"]
            .as_i64()
            .expect("signed in")
    }
}
