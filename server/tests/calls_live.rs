//! The loop closed over real HTTP, on both backends: the scheduler hands calls to the call
//! simulator, which reports on them with signed webhooks to a running server; each call ends
//! as its script says, with its follow-up. And the live feed: a member sees their own
//! organization's changes as they happen, and never another's.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::body::Body;
use chrono::{DateTime, Duration, Utc};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::json;
use tower::ServiceExt;

use common::reminders::{books, calls_on, dial_due};
use common::{Backend, TestApp};
use server::reminders::simulator::{Endpoint, Script, Simulator, Timing, script_for};
use server::reminders::{Clock, Scheduler, Settings};
use server::webhooks::CALL_STATUS_PATH;
use server::webhooks::signature::sign_standard;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn monday_ten() -> DateTime<Utc> {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::with_config(backend, &[("DUECALL_WEBHOOK_SECRETS", SECRET)]).await
}

/// Serves the app on a free local port; returns its address.
async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn simulated_calls_report_over_signed_webhooks_and_end_as_scripted() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = app(backend).await else {
            continue;
        };
        let base = serve(&app).await;
        let mut owner = app.signed_up("Olive", "olive@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        app.clock.set(monday_ten());
        books(&app.db, member.org_id, 40, monday_ten().date_naive()).await;
        calls_on(&app.db, member, |_| {}).await;
        let simulator = Simulator::new(
            Endpoint {
                url: format!("{base}{CALL_STATUS_PATH}"),
                secret: SecretString::from(SECRET),
            },
            Arc::new(app.clock.clone()),
            Timing {
                ring: StdDuration::from_millis(20),
                talk: StdDuration::from_millis(40),
            },
        );
        let scheduler = Scheduler::new(
            app.db.clone(),
            Arc::new(app.clock.clone()),
            Some(Arc::new(simulator)),
            "sim-test",
            Settings::default(),
        );
        let tick = scheduler.run_until_idle().await.unwrap();
        assert_eq!(tick.called, 40);

        // Wait for every report (silent agents send none).
        let attempts: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM call_attempts WHERE org_id = $1 ORDER BY id")
                .bind(member.org_id)
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        let expect_live = attempts
            .iter()
            .filter(|id| script_for(**id) == Script::Silent)
            .count() as i64;
        let mut live = -1;
        for _ in 0..200 {
            live = sqlx::query_scalar(
                "SELECT COUNT(*) FROM call_attempts WHERE org_id = $1 AND status IN ('dialling', 'answered')",
            )
            .bind(member.org_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            if live == expect_live {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        assert_eq!(live, expect_live, "every non-silent call was reported on");

        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, status, response, reason FROM call_attempts WHERE org_id = $1 ORDER BY id",
        )
        .bind(member.org_id)
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (id, status, response, reason) in &rows {
            let script = script_for(*id);
            seen.insert(format!("{script:?}"));
            match script {
                Script::Conversation(expected) => {
                    assert_eq!(
                        (status.as_str(), response.as_str()),
                        ("completed", expected.as_str()),
                        "attempt {id}"
                    );
                }
                Script::NoAnswer => assert_eq!(
                    (status.as_str(), response.as_str()),
                    ("no_answer", "no_answer")
                ),
                Script::Busy => {
                    assert_eq!((status.as_str(), reason.as_str()), ("no_answer", "busy"))
                }
                Script::LineFailure => assert_eq!(status, "failed"),
                Script::Silent => assert_eq!(status, "dialling"),
            }
        }
        assert!(seen.len() >= 6, "a believable mix: {seen:?}");
        // Every report was stored and applied once.
        let stored: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT status_code, COUNT(*) FROM webhook_events WHERE org_id = $1 GROUP BY status_code",
        )
        .bind(member.org_id)
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(stored[0].0, 200);

        // The silent agents time out; nothing is dialled again for them.
        app.clock.advance(Duration::hours(1));
        let swept = app::reminders::dispatch::sweep_expired(&app.db, "monitor", app.clock.now())
            .await
            .unwrap();
        assert_eq!(swept.timed_out as i64, expect_live);
    }
}

/// Signs up `email`'s organization with one dialled call; returns (client, reminder, attempt).
async fn org_with_a_call(app: &TestApp, email: &str, org: &str) -> (common::Client, i64, i64) {
    let mut client = app.signed_up("Someone", email, org).await;
    let member = app.member(&mut client).await;
    books(&app.db, member.org_id, 1, monday_ten().date_naive()).await;
    calls_on(&app.db, member, |_| {}).await;
    let call = dial_due(&app.db, &app.clock).await[0].clone();
    (client, call.reminder_id, call.attempt_id)
}

async fn report(app: &TestApp, id: &str, reminder: i64, attempt: i64) -> StatusCode {
    let body =
        json!({"reminder_id": reminder, "attempt_id": attempt, "event_type": "call_answered"})
            .to_string();
    let headers = sign_standard(
        &SecretString::from(SECRET),
        id,
        app.clock.now().timestamp(),
        body.as_bytes(),
    )
    .unwrap();
    let mut request = Request::post(CALL_STATUS_PATH).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    app.client()
        .send(request.body(Body::from(body)).unwrap())
        .await
        .status
}

#[tokio::test]
async fn the_live_feed_shows_ones_own_changes_and_never_anothers() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = app(backend).await else {
            continue;
        };
        app.clock.set(monday_ten());
        let (b, b_reminder, b_attempt) = org_with_a_call(&app, "b@example.com", "Bravo").await;
        let (a, a_reminder, a_attempt) = org_with_a_call(&app, "a@example.com", "Alpha").await;

        // A opens the feed.
        let request = Request::get("/api/live")
            .header("host", "localhost")
            .header("cookie", a.cookie.clone().unwrap())
            .body(Body::empty())
            .unwrap();
        let response = app.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut body = response.into_body();

        // B's call changes first, then A's.
        assert_eq!(
            report(&app, "b1", b_reminder, b_attempt).await,
            StatusCode::OK
        );
        assert_eq!(
            report(&app, "a1", a_reminder, a_attempt).await,
            StatusCode::OK
        );
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(5);
        while !text.contains("event: change") {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .expect("a change arrives")
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        let data: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .flat_map(|d| serde_json::from_str::<Vec<serde_json::Value>>(d).unwrap())
            .collect();
        assert!(!data.is_empty());
        assert!(
            data.iter().all(|c| c["reminder_id"] == a_reminder),
            "{data:?}"
        );
        assert!(
            data.iter().any(|c| c["transition"] == "answered"),
            "{data:?}"
        );
        drop(b);

        // A visitor gets no feed.
        let res = app.client().get("/api/live").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
}

/// `duecall send-test-event` signs as the server expects: a real report is applied, and the
/// dry run prints a curl command with the three Standard Webhooks headers.
#[tokio::test]
async fn send_test_event_sends_a_correctly_signed_report() {
    let Some(app) = app(Backend::Sqlite).await else {
        return;
    };
    app.clock.set(monday_ten());
    let base = serve(&app).await;
    let (_client, reminder, attempt) = org_with_a_call(&app, "cli@example.com", "Cli Co").await;
    // The command signs with the real time.
    app.clock.set(chrono::Utc::now());
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_duecall"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DUECALL_WEBHOOK_SECRETS", SECRET)
                .arg("send-test-event")
                .args(args)
                .output()
                .unwrap()
        })
    };
    let args = |extra: &[&str]| {
        let mut all = vec![
            "--url".to_owned(),
            base.clone(),
            "--reminder".to_owned(),
            reminder.to_string(),
            "--attempt".to_owned(),
            attempt.to_string(),
        ];
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        all
    };
    let dry = run(args(&["--event", "call_answered", "--dry-run"]))
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&dry.stdout);
    for header in [
        "webhook-id: ",
        "webhook-timestamp: ",
        "webhook-signature: v1,",
    ] {
        assert!(printed.contains(header), "{printed}");
    }
    let sent = run(args(&[
        "--as-call",
        "--response",
        "promise_to_pay",
        "--promised-date",
        &(chrono::Utc::now() + Duration::days(5))
            .date_naive()
            .to_string(),
        "--duration",
        "75",
    ]))
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(out.starts_with("200 "), "{out}");
    let response: String = sqlx::query_scalar("SELECT response FROM call_attempts WHERE id = $1")
        .bind(attempt)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(response, "promise_to_pay");
    // A refused event exits non-zero with the answer printed.
    let refused = run(args(&["--response", "dispute"])).await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("400 "));
}
