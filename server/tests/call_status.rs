//! `POST /api/webhooks/call-status` through the real router, on both backends: every answer
//! code, both signature schemes, secret rotation, replays, tampering, duplicates, reordering,
//! and each outcome's follow-up — every refusal changing nothing it should not.

mod common;

use axum::body::Body;
use chrono::{DateTime, Duration, Utc};
use http::{Request, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use app::db::Db;
use common::reminders::{books, calls_on, dial_due};
use common::{Backend, TestApp, TestResponse};
use server::reminders::Clock;
use server::webhooks::CALL_STATUS_PATH;
use server::webhooks::signature::{sign_legacy, sign_standard};

const NEW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const RETIRED_SECRET: &str = "whsec_dGhpcyBvbmUgd2FzIHJldGlyZWQgbG9uZyBhZ28=";
const LEGACY_SECRET: &str = "a-shared-secret-from-the-first-agents";

/// Monday 2 March 2026, 10:00 in London.
fn monday_ten() -> DateTime<Utc> {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

struct Fixture {
    app: TestApp,
    org_id: i64,
    /// The organization's owner, signed in.
    owner: common::Client,
    /// (reminder, attempt) of each dialled call, in invoice order.
    calls: Vec<(i64, i64)>,
}

async fn fixture(backend: Backend, invoices: usize, extra: &[(&str, &str)]) -> Option<Fixture> {
    let mut vars = vec![
        (
            "DUECALL_WEBHOOK_SECRETS",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ),
        ("WEBHOOK_SECRET", LEGACY_SECRET),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::with_config(backend, &vars).await?;
    let mut owner = app.signed_up("Olive", "olive@example.com", "Acme").await;
    let member = app.member(&mut owner).await;
    app.clock.set(monday_ten());
    books(&app.db, member.org_id, invoices, monday_ten().date_naive()).await;
    calls_on(&app.db, member, |_| {}).await;
    let calls: Vec<(i64, i64)> = dial_due(&app.db, &app.clock)
        .await
        .iter()
        .map(|c| (c.reminder_id, c.attempt_id))
        .collect();
    assert_eq!(calls.len(), invoices);
    Some(Fixture {
        app,
        org_id: member.org_id,
        owner,
        calls,
    })
}

async fn post_to(
    mut client: common::Client,
    body: &str,
    headers: &[(&str, String)],
) -> TestResponse {
    let mut request = Request::post(CALL_STATUS_PATH)
        .header("content-type", "application/json")
        .header("content-length", body.len());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    client
        .send(request.body(Body::from(body.to_owned())).unwrap())
        .await
}

impl Fixture {
    fn now(&self) -> DateTime<Utc> {
        self.app.clock.now()
    }

    async fn post(&self, body: &str, headers: &[(&str, String)]) -> TestResponse {
        post_to(self.app.client(), body, headers).await
    }

    /// [`Fixture::signed`], sent to the server `client` speaks to.
    async fn signed_to(&self, client: common::Client, id: &str, body: &Value) -> TestResponse {
        let body = body.to_string();
        let headers = sign_standard(
            &SecretString::from(NEW_SECRET),
            id,
            self.now().timestamp(),
            body.as_bytes(),
        )
        .unwrap();
        let headers: Vec<(&str, String)> = headers.into_iter().collect();
        post_to(client, &body, &headers).await
    }

    /// Posts `body` signed with Standard Webhooks by `secret`, as delivery `id`, `age` ago.
    async fn signed_by(&self, secret: &str, id: &str, age: Duration, body: &str) -> TestResponse {
        let ts = (self.now() - age).timestamp();
        let headers = sign_standard(&SecretString::from(secret), id, ts, body.as_bytes()).unwrap();
        let headers: Vec<(&str, String)> = headers.into_iter().collect();
        self.post(body, &headers).await
    }

    async fn signed(&self, id: &str, body: &Value) -> TestResponse {
        self.signed_by(NEW_SECRET, id, Duration::zero(), &body.to_string())
            .await
    }

    async fn reminder(&self, id: i64) -> (String, String) {
        sqlx::query_as("SELECT status, last_reason FROM reminders WHERE id = $1")
            .bind(id)
            .fetch_one(self.app.db.pool())
            .await
            .unwrap()
    }

    /// Everything a report can change, as text.
    async fn state(&self) -> Vec<String> {
        let mut all = Vec::new();
        for sql in [
            "SELECT id, status, attempts, due_at, last_reason FROM reminders WHERE org_id = $1 ORDER BY id",
            "SELECT id, status, connected, outcome, response, notes, reason FROM call_attempts WHERE org_id = $1 ORDER BY id",
            "SELECT id, transition, to_status FROM reminder_events WHERE org_id = $1 ORDER BY id",
            "SELECT id, disputed, review, promised_date, hold_reason FROM invoices WHERE org_id = $1 ORDER BY id",
            "SELECT id, opted_out, phone_status FROM customers WHERE org_id = $1 ORDER BY id",
        ] {
            all.extend(self.app.snapshot(sql, self.org_id).await);
        }
        all
    }

    /// The transitions in the reminder's history, in order.
    async fn history(&self, reminder: i64) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT transition FROM reminder_events WHERE reminder_id = $1 ORDER BY id",
        )
        .bind(reminder)
        .fetch_all(self.app.db.pool())
        .await
        .unwrap()
    }

    async fn stored_events(&self) -> Vec<(i64, String, i64)> {
        sqlx::query_as("SELECT status_code, event_type, deliveries FROM webhook_events ORDER BY id")
            .fetch_all(self.app.db.pool())
            .await
            .unwrap()
    }
}

fn answered(reminder: i64, attempt: i64) -> Value {
    json!({"reminder_id": reminder, "attempt_id": attempt, "event_type": "call_answered"})
}

fn completed(reminder: i64, outcome: Value) -> Value {
    json!({"reminder_id": reminder, "event_type": "call_completed", "outcome": outcome})
}

fn assert_error(res: &TestResponse, status: StatusCode, code: &str) {
    assert_eq!(res.status, status, "{}", res.body);
    let body = res.json();
    assert_eq!(body["ok"], false, "{}", res.body);
    assert_eq!(body["error"]["code"], code, "{}", res.body);
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{}",
        res.body
    );
}

async fn each_backend<F, Fut>(
    invoices: usize,
    extra: &'static [(&'static str, &'static str)],
    test: F,
) where
    F: Fn(Fixture) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(fixture) = fixture(backend, invoices, extra).await {
            test(fixture).await;
        }
    }
}

#[tokio::test]
async fn a_conversation_is_applied_with_its_follow_up() {
    each_backend(1, &[], |f| async move {
        let (reminder, attempt) = f.calls[0];
        let res = f.signed("msg_1", &answered(reminder, attempt)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["result"], "applied");
        assert_eq!(f.reminder(reminder).await.0, "processing");

        let promised = (f.now() + Duration::days(10)).date_naive();
        let body = completed(
            reminder,
            json!({"connected": true, "duration": 95, "customer_response": "promise_to_pay",
                   "promised_date": promised, "notes": "Pays when their client pays."}),
        );
        let res = f.signed("msg_2", &body).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(f.reminder(reminder).await.0, "completed");

        let (response, duration, notes, promise): (String, Option<i64>, String, String) = sqlx::query_as(
            "SELECT response, duration_seconds, notes, promised_date FROM call_attempts WHERE id = $1",
        )
        .bind(attempt)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(
            (response.as_str(), duration, notes.as_str(), promise),
            ("promise_to_pay", Some(95), "Pays when their client pays.", promised.to_string())
        );
        // Calls wait until the day after the promise; a follow-up reminder will look then.
        let (hold_until, promised_date): (Option<i64>, String) =
            sqlx::query_as("SELECT hold_until, promised_date FROM invoices WHERE org_id = $1")
                .bind(f.org_id)
                .fetch_one(f.app.db.pool())
                .await
                .unwrap();
        assert_eq!(promised_date, promised.to_string());
        let hold = app::db::time::from_millis(hold_until.unwrap());
        assert_eq!(hold.date_naive(), promised + Duration::days(1));
        let follow_ups: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, due_at FROM reminders WHERE org_id = $1 AND kind = 'follow_up'",
        )
        .bind(f.org_id)
        .fetch_all(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(follow_ups.len(), 1);
        assert_eq!(follow_ups[0].0, "pending");
        assert_eq!(follow_ups[0].1, hold_until.unwrap());
        assert_eq!(
            f.stored_events().await,
            vec![(200, "call_answered".into(), 1), (200, "call_completed".into(), 1)]
        );
    })
    .await;
}

#[tokio::test]
async fn every_refusal_answers_its_code_and_changes_nothing() {
    each_backend(2, &[], |f| async move {
        let (reminder, attempt) = f.calls[0];
        let body = answered(reminder, attempt).to_string();
        let before = f.state().await;

        // 401: unsigned, wrong secret, retired secret, stale, future, tampered.
        assert_error(
            &f.post(&body, &[]).await,
            StatusCode::UNAUTHORIZED,
            "missing_signature",
        );
        let res = f
            .signed_by(RETIRED_SECRET, "m1", Duration::zero(), &body)
            .await;
        assert_error(&res, StatusCode::UNAUTHORIZED, "invalid_signature");
        let res = f
            .signed_by(NEW_SECRET, "m2", Duration::minutes(6), &body)
            .await;
        assert_error(&res, StatusCode::UNAUTHORIZED, "stale_timestamp");
        let res = f
            .signed_by(NEW_SECRET, "m3", Duration::minutes(-6), &body)
            .await;
        assert_error(&res, StatusCode::UNAUTHORIZED, "future_timestamp");
        let ts = f.now().timestamp();
        let mut headers: Vec<(&str, String)> =
            sign_standard(&SecretString::from(NEW_SECRET), "m4", ts, body.as_bytes())
                .unwrap()
                .into_iter()
                .collect();
        let other = answered(f.calls[1].0, f.calls[1].1).to_string();
        assert_error(
            &f.post(&other, &headers).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        );
        headers[1].1 = (ts - 1).to_string();
        assert_error(
            &f.post(&body, &headers).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        );
        let legacy = vec![(
            "x-webhook-signature",
            sign_legacy(&SecretString::from("guess"), body.as_bytes()),
        )];
        assert_error(
            &f.post(&body, &legacy).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        );
        assert!(
            f.stored_events().await.is_empty(),
            "unauthenticated requests are not stored"
        );

        // 400: not JSON, unknown event, missing details.
        let res = f
            .signed_by(NEW_SECRET, "b1", Duration::zero(), "{not json")
            .await;
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_event");
        let res = f
            .signed(
                "b2",
                &json!({"reminder_id": reminder, "event_type": "call_exploded"}),
            )
            .await;
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_event");
        let res = f
            .signed(
                "b3",
                &completed(
                    reminder,
                    json!({"connected": true, "customer_response": "promise_to_pay"}),
                ),
            )
            .await;
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_event");

        // 404: unknown reminder; an attempt that is not the reminder's.
        let res = f.signed("n1", &answered(999_999, attempt)).await;
        assert_error(&res, StatusCode::NOT_FOUND, "unknown_reminder");
        let res = f.signed("n2", &answered(reminder, f.calls[1].1)).await;
        assert_error(&res, StatusCode::NOT_FOUND, "unknown_reminder");

        // 409: a completed call cannot fail afterwards (checked below, after a real change).
        // 413: too large, with a JSON body.
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
        let res = f
            .signed_by(NEW_SECRET, "big", Duration::zero(), &huge)
            .await;
        assert_error(&res, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

        assert_eq!(
            f.state().await,
            before,
            "no refused request changed anything"
        );
        let stored: Vec<i64> = f.stored_events().await.iter().map(|e| e.0).collect();
        assert_eq!(
            stored,
            vec![400, 400, 400, 404, 404],
            "authenticated refusals are kept"
        );

        // 409 after a conversation: a failure report for the completed attempt.
        let done = completed(
            reminder,
            json!({"connected": true, "customer_response": "will_pay_today"}),
        );
        assert_eq!(f.signed("c1", &done).await.status, StatusCode::OK);
        let after_done = f.state().await;
        let failed =
            json!({"reminder_id": reminder, "event_type": "call_failed", "reason": "line dropped"});
        assert_error(
            &f.signed("c2", &failed).await,
            StatusCode::CONFLICT,
            "illegal_transition",
        );
        assert_eq!(f.state().await, after_done);
        // A repeated delivery of the refused one gets the same answer.
        assert_error(
            &f.signed("c2", &failed).await,
            StatusCode::CONFLICT,
            "duplicate",
        );
    })
    .await;
}

#[tokio::test]
async fn rotation_and_the_original_scheme() {
    each_backend(3, &[], |f| async move {
        let body = |i: usize| answered(f.calls[i].0, f.calls[i].1).to_string();
        let res = f
            .signed_by(NEW_SECRET, "r1", Duration::zero(), &body(0))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = f
            .signed_by(OLD_SECRET, "r2", Duration::zero(), &body(1))
            .await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "the previous secret still works during a rotation"
        );
        let legacy = body(2);
        let sig = sign_legacy(&SecretString::from(LEGACY_SECRET), legacy.as_bytes());
        let res = f
            .post(&legacy, &[("x-webhook-signature", sig.clone())])
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        // The same body again: a replay, acknowledged and not applied twice.
        let res = f.post(&legacy, &[("x-webhook-signature", sig)]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json()["result"], "duplicate");
        let answered_events: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reminder_events WHERE org_id = $1 AND transition = 'answered'",
        )
        .bind(f.org_id)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(answered_events, 3);
    })
    .await;
}

#[tokio::test]
async fn standard_webhooks_only_refuses_the_original_scheme() {
    each_backend(
        1,
        &[("DUECALL_WEBHOOK_STANDARD_ONLY", "true")],
        |f| async move {
            let body = answered(f.calls[0].0, f.calls[0].1).to_string();
            let sig = sign_legacy(&SecretString::from(LEGACY_SECRET), body.as_bytes());
            let res = f.post(&body, &[("x-webhook-signature", sig)]).await;
            assert_error(&res, StatusCode::UNAUTHORIZED, "standard_webhooks_required");
            let res = f.signed_by(NEW_SECRET, "ok", Duration::zero(), &body).await;
            assert_eq!(res.status, StatusCode::OK);
        },
    )
    .await;
}

#[tokio::test]
async fn duplicates_apply_once_and_reordering_ends_right() {
    each_backend(2, &[], |f| async move {
        let (reminder, attempt) = f.calls[0];
        // The same delivery twice, then the same event under a new delivery id.
        assert_eq!(
            f.signed("d1", &answered(reminder, attempt)).await.status,
            StatusCode::OK
        );
        let res = f.signed("d1", &answered(reminder, attempt)).await;
        assert_eq!(
            (res.status, res.json()["result"].clone()),
            (StatusCode::OK, json!("duplicate"))
        );
        let res = f.signed("d2", &answered(reminder, attempt)).await;
        assert_eq!(
            (res.status, res.json()["result"].clone()),
            (StatusCode::OK, json!("unchanged"))
        );
        assert_eq!(f.stored_events().await[0].2, 2, "the repeat is counted");

        // Completed arrives before answered: both apply, in order; the late answered is a no-op.
        let (late, late_attempt) = f.calls[1];
        let done = completed(
            late,
            json!({"connected": true, "customer_response": "will_pay_today"}),
        );
        assert_eq!(f.signed("o1", &done).await.status, StatusCode::OK);
        assert_eq!(f.reminder(late).await.0, "completed");
        let res = f.signed("o2", &answered(late, late_attempt)).await;
        assert_eq!(
            (res.status, res.json()["result"].clone()),
            (StatusCode::OK, json!("unchanged"))
        );
        assert_eq!(f.reminder(late).await.0, "completed");
        assert_eq!(
            f.history(late).await,
            ["claim", "dial", "answered", "completed"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_report_after_the_timeout_is_refused() {
    each_backend(1, &[], |f| async move {
        let (reminder, attempt) = f.calls[0];
        f.app.clock.advance(Duration::hours(2));
        let swept = app::reminders::dispatch::sweep_expired(&f.app.db, "monitor", f.now())
            .await
            .unwrap();
        assert_eq!(swept.timed_out, 1);
        let before = f.state().await;
        let res = f.signed("late", &answered(reminder, attempt)).await;
        assert_error(&res, StatusCode::CONFLICT, "illegal_transition");
        assert_eq!(f.state().await, before);
    })
    .await;
}

/// Each response and what it leaves behind.
#[tokio::test]
async fn each_outcome_has_its_follow_up() {
    each_backend(8, &[], |f| async move {
        let now = f.now();
        let outcomes = [
            json!({"connected": true, "customer_response": "will_pay_today"}),
            json!({"connected": true, "customer_response": "already_paid"}),
            json!({"connected": true, "customer_response": "dispute", "dispute_reason": "Wrong quantity billed"}),
            json!({"connected": true, "customer_response": "callback_requested", "callback_at": now + Duration::hours(3)}),
            json!({"connected": true, "customer_response": "wrong_number"}),
            json!({"connected": true, "customer_response": "opt_out"}),
            json!({"connected": false, "customer_response": "voicemail"}),
        ];
        for (i, outcome) in outcomes.iter().enumerate() {
            let res = f.signed(&format!("out{i}"), &completed(f.calls[i].0, outcome.clone())).await;
            assert_eq!(res.status, StatusCode::OK, "{outcome}: {}", res.body);
        }
        let busy = json!({"reminder_id": f.calls[7].0, "event_type": "call_failed", "reason": "busy"});
        assert_eq!(f.signed("busy", &busy).await.status, StatusCode::OK);

        let invoice = |i: usize| {
            let db: Db = f.app.db.clone();
            let reminder = f.calls[i].0;
            async move {
                sqlx::query_as::<_, (i64, String, Option<i64>, String)>(
                    "SELECT i.disputed, i.review, i.hold_until, c.phone_status || ':' || c.opted_out \
                     FROM reminders r JOIN invoices i ON i.id = r.invoice_id \
                     JOIN customers c ON c.id = r.customer_id WHERE r.id = $1",
                )
                .bind(reminder)
                .fetch_one(db.pool())
                .await
                .unwrap()
            }
        };
        let tomorrow = app::db::time::to_millis(
            "2026-03-03T00:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        );
        assert_eq!(invoice(0).await, (0, String::new(), Some(tomorrow), "valid:0".into()));
        assert_eq!(invoice(1).await.1, "paid_claim");
        assert_eq!(invoice(2).await.0, 1);
        assert_eq!(invoice(2).await.1, "dispute");
        assert_eq!(
            invoice(3).await.2,
            Some(app::db::time::to_millis(now + Duration::hours(3)))
        );
        assert_eq!(invoice(4).await.3, "invalid:0");
        assert_eq!(invoice(5).await.3, "valid:1");
        // Unanswered calls go back to pending for another attempt.
        assert_eq!(f.reminder(f.calls[6].0).await.0, "pending");
        assert_eq!(f.reminder(f.calls[7].0).await.0, "pending");
        // Follow-ups were made where no other reminder will call.
        let kinds: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reminders WHERE org_id = $1 AND kind = 'follow_up'",
        )
        .bind(f.org_id)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(kinds, 2, "will pay today and the callback");
        // The dispute and paid claim wait for a person; the wrong number and opt-out are final.
        let reviews: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invoices WHERE org_id = $1 AND review <> ''",
        )
        .bind(f.org_id)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(reviews, 2);

        // The team finds the claimed payment never came: calls resume. The called reminder is
        // over, so a follow-up reminder is made, placed by the invoice's due date.
        let (paid_claim, due_date): (i64, String) = sqlx::query_as(
            "SELECT i.id, i.due_date FROM invoices i JOIN reminders r ON r.invoice_id = i.id \
             WHERE r.id = $1",
        )
        .bind(f.calls[1].0)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        let res = f
            .owner
            .clone()
            .call(
                "/api/calls/resolve",
                &[("invoice_id", &paid_claim.to_string()), ("action", "not_paid")],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let (offset, step_date): (i64, String) = sqlx::query_as(
            "SELECT step_offset_days, step_date FROM reminders \
             WHERE invoice_id = $1 AND kind = 'follow_up' AND status = 'pending'",
        )
        .bind(paid_claim)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert_eq!(offset, (day(&step_date) - day(&due_date)).num_days());
        assert!(offset > 0, "the invoice is overdue: {offset}");
    })
    .await;
}

/// Agents sign with their call's own key (from the metadata): such a report can touch that
/// call only — not another call of the same organization, and nothing of another organization.
#[tokio::test]
async fn an_attempts_key_touches_its_own_call_and_nothing_else() {
    each_backend(2, &[], |f| async move {
        let (a_reminder, a_attempt) = f.calls[0];
        let (other_reminder, other_attempt) = f.calls[1];
        // Organization B, with a call of its own.
        let mut b = f.app.signed_up("Bea", "bea@example.com", "Bravo").await;
        let b_member = f.app.member(&mut b).await;
        books(&f.app.db, b_member.org_id, 1, monday_ten().date_naive()).await;
        calls_on(&f.app.db, b_member, |_| {}).await;
        let b_call = dial_due(&f.app.db, &f.app.clock).await[0].clone();
        let b_state = || async {
            let mut all = Vec::new();
            for sql in [
                "SELECT id, status, attempts, due_at, last_reason, lease_until FROM reminders WHERE org_id = $1 ORDER BY id",
                "SELECT id, status, connected, response FROM call_attempts WHERE org_id = $1 ORDER BY id",
                "SELECT id, transition FROM reminder_events WHERE org_id = $1 ORDER BY id",
                "SELECT id, result FROM webhook_events WHERE org_id = $1 ORDER BY id",
            ] {
                all.extend(f.app.snapshot(sql, b_member.org_id).await);
            }
            all
        };
        let before_b = b_state().await;
        let before_a = f.state().await;

        let key = f.app.config.webhook_keys.attempt_secret(a_attempt).unwrap();
        let key = secrecy::ExposeSecret::expose_secret(&key).to_owned();
        let post = |attempt_in_url: i64, id: &'static str, body: Value| {
            let key = key.clone();
            let f = &f;
            async move {
                let body = body.to_string();
                let ts = f.now().timestamp();
                let headers: Vec<(&str, String)> =
                    sign_standard(&SecretString::from(key), id, ts, body.as_bytes())
                        .unwrap()
                        .into_iter()
                        .collect();
                let mut request = Request::post(format!("{CALL_STATUS_PATH}?attempt={attempt_in_url}"))
                    .header("content-type", "application/json");
                for (name, value) in &headers {
                    request = request.header(*name, value);
                }
                f.app.client().send(request.body(Body::from(body)).unwrap()).await
            }
        };
        // Another organization's reminder, with or without naming its attempt.
        let res = post(a_attempt, "t1", answered(b_call.reminder_id, b_call.attempt_id)).await;
        assert_error(&res, StatusCode::NOT_FOUND, "unknown_reminder");
        let res = post(a_attempt, "t2", json!({"reminder_id": b_call.reminder_id, "event_type": "call_answered"})).await;
        assert_error(&res, StatusCode::NOT_FOUND, "unknown_reminder");
        // The key claimed for B's attempt in the URL: the signature does not match.
        let res = post(b_call.attempt_id, "t3", answered(b_call.reminder_id, b_call.attempt_id)).await;
        assert_error(&res, StatusCode::UNAUTHORIZED, "invalid_signature");
        // Another call of the same organization.
        let res = post(a_attempt, "t4", answered(other_reminder, other_attempt)).await;
        assert_error(&res, StatusCode::NOT_FOUND, "unknown_reminder");
        assert_eq!(b_state().await, before_b, "organization B is untouched");
        assert_eq!(f.state().await, before_a, "the other call is untouched");

        // Its own call: applied.
        let res = post(a_attempt, "t5", json!({"reminder_id": a_reminder, "event_type": "call_answered"})).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(f.reminder(a_reminder).await.0, "processing");
        assert_eq!(b_state().await, before_b);
    })
    .await;
}

/// An outcome about an invoice from a connected Zoho Books is queued for it as a comment, with
/// the promised date, in the same transaction; a CSV invoice's is not.
#[tokio::test]
async fn outcomes_are_queued_for_zoho_books_when_the_invoice_came_from_there() {
    each_backend(2, &[], |f| async move {
        let (zoho_reminder, _) = f.calls[0];
        let (csv_reminder, _) = f.calls[1];
        let invoice: i64 = sqlx::query_scalar("SELECT invoice_id FROM reminders WHERE id = $1")
            .bind(zoho_reminder)
            .fetch_one(f.app.db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE invoices SET source = 'zoho', external_id = 'ZB-1' WHERE id = $1")
            .bind(invoice)
            .execute(f.app.db.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO integration_connections (org_id, provider, status, location, accounts_server, api_domain, \
               refresh_token, push_secret, created_at, updated_at) \
             VALUES ($1, 'zoho_books', 'connected', 'eu', 'https://accounts.zoho.eu', 'https://www.zohoapis.eu', 'x', 'x', 0, 0)",
        )
        .bind(f.org_id)
        .execute(f.app.db.pool())
        .await
        .unwrap();
        let promised = (f.now() + Duration::days(9)).date_naive();
        for (i, reminder) in [zoho_reminder, csv_reminder].into_iter().enumerate() {
            let body = completed(
                reminder,
                json!({"connected": true, "customer_response": "promise_to_pay", "promised_date": promised}),
            );
            let res = f.signed(&format!("zb{i}"), &body).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        }
        let jobs: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT invoice_id, external_invoice_id, description, payment_expected_date FROM writeback_jobs WHERE org_id = $1",
        )
        .bind(f.org_id)
        .fetch_all(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!((jobs[0].0, jobs[0].1.as_str()), (invoice, "ZB-1"));
        assert!(jobs[0].2.contains(&format!("promised to pay by {promised}")), "{}", jobs[0].2);
        assert_eq!(jobs[0].3, promised.to_string());
    })
    .await;
}

/// When the report cannot be stored, the answer is a 500 with a JSON body, nothing of the report
/// is kept, and the same delivery applies once the database is back.
#[tokio::test]
async fn a_storage_failure_answers_500_and_keeps_nothing() {
    each_backend(1, &[], |f| async move {
        let (reminder, attempt) = f.calls[0];
        let before = f.state().await;
        sqlx::query("ALTER TABLE webhook_events RENAME TO webhook_events_away")
            .execute(f.app.db.pool())
            .await
            .unwrap();
        let res = f.signed("s1", &answered(reminder, attempt)).await;
        assert_error(&res, StatusCode::INTERNAL_SERVER_ERROR, "internal");
        sqlx::query("ALTER TABLE webhook_events_away RENAME TO webhook_events")
            .execute(f.app.db.pool())
            .await
            .unwrap();
        assert_eq!(f.state().await, before);
        let res = f.signed("s1", &answered(reminder, attempt)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["result"], "applied");
    })
    .await;
}

/// Keeps the call-status writer from finishing anything until the transaction is dropped: on
/// SQLite it holds the one writing connection, on PostgreSQL the deliveries' table, which the
/// writer reads first.
async fn hold_the_writer(f: &Fixture) -> app::db::Tx<'static> {
    match f.app.db.dialect() {
        app::db::Dialect::Sqlite => f.app.db.begin_immediate().await.unwrap(),
        app::db::Dialect::Postgres => {
            let mut tx = f.app.db.pool().begin().await.unwrap();
            sqlx::query("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        }
    }
}

/// Past the reports the writer may hold, a report is answered 503 at once, with `Retry-After`,
/// and nothing of it is kept: sent again once there is room, it is applied. The reports held
/// meanwhile are applied when the writer gets to them.
#[tokio::test]
async fn past_its_queue_a_report_is_answered_503_and_kept_nowhere() {
    each_backend(3, &[("DUECALL_CALL_STATUS_QUEUE", "2")], |f| async move {
        let [(r0, a0), (r1, a1), (r2, a2)] = f.calls[..] else {
            unreachable!()
        };
        let untouched = (f.reminder(r2).await, f.history(r2).await);
        let held = hold_the_writer(&f).await;
        let (q0, q1) = (answered(r0, a0), answered(r1, a1));
        let first_two = futures_util::future::join(f.signed("q0", &q0), f.signed("q1", &q1));
        tokio::pin!(first_two);
        // Both reach the writer, and wait for it.
        let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut first_two);
        assert!(early.await.is_err(), "answered while the writer was held");

        let refused = f.signed("q2", &answered(r2, a2)).await;
        assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE, "busy");
        assert_eq!(refused.header("retry-after"), Some("1"));

        drop(held);
        let (q0, q1) = first_two.await;
        for res in [q0, q1] {
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(res.json()["result"], "applied");
        }
        // The refused report left no trace: neither its delivery nor its call changed.
        assert_eq!(f.stored_events().await.len(), 2);
        assert_eq!((f.reminder(r2).await, f.history(r2).await), untouched);
        let again = f.signed("q2", &answered(r2, a2)).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.json()["result"], "applied");
    })
    .await;
}

/// Checks what two deliveries of every `answered` (`a…`) and `completed` (`c…`) of each call
/// ended in: each report applied once and its copy answered as a duplicate, every call
/// completed with one history, one follow-up reminder per invoice.
async fn applied_once_each(f: &Fixture, results: std::collections::BTreeMap<&str, Vec<String>>) {
    for (id, mut got) in results {
        got.sort();
        // The completed is applied once; the answered too, unless its completed came first
        // (then it is acknowledged unchanged).
        let first = if id.starts_with('c') || got.contains(&"applied".to_owned()) {
            "applied"
        } else {
            "unchanged"
        };
        let mut want = vec![first.to_owned(), "duplicate".to_owned()];
        want.sort();
        assert_eq!(got, want, "{id}");
    }
    for &(reminder, _) in &f.calls {
        assert_eq!(f.reminder(reminder).await.0, "completed");
        assert_eq!(
            f.history(reminder).await,
            ["claim", "dial", "answered", "completed"],
            "{reminder}"
        );
    }
    let follow_ups: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT invoice_id) * 1000 + COUNT(*) FROM reminders \
         WHERE org_id = $1 AND kind = 'follow_up'",
    )
    .bind(f.org_id)
    .fetch_one(f.app.db.pool())
    .await
    .unwrap();
    assert_eq!(follow_ups, f.calls.len() as i64 * 1001);
}

/// Reports that arrive together are applied in one transaction (whatever queued while the
/// writer was busy), and each is answered as if it had come alone: applied once, a repeated
/// delivery replayed, an unknown reminder refused — without the refusal undoing the others.
#[tokio::test]
async fn reports_arriving_together_are_each_answered_as_if_alone() {
    each_backend(8, &[], |f| async move {
        let mut sent: Vec<(String, Value)> = Vec::new();
        for (n, &(reminder, attempt)) in f.calls.iter().enumerate() {
            let done = completed(
                reminder,
                json!({"connected": true, "duration": 40, "customer_response": "will_pay_today"}),
            );
            // Every delivery twice (a retry while the first was in flight).
            for _ in 0..2 {
                sent.push((format!("a{n}"), answered(reminder, attempt)));
                sent.push((format!("c{n}"), done.clone()));
            }
        }
        sent.push(("ghost".into(), answered(987_654, 1)));
        let answers =
            futures_util::future::join_all(sent.iter().map(|(id, body)| f.signed(id, body))).await;

        let mut results: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for ((id, _), res) in sent.iter().zip(&answers) {
            if id == "ghost" {
                assert_error(res, StatusCode::NOT_FOUND, "unknown_reminder");
                continue;
            }
            assert_eq!(res.status, StatusCode::OK, "{id}: {}", res.body);
            let result = res.json()["result"].as_str().unwrap().to_owned();
            results.entry(id).or_default().push(result);
        }
        applied_once_each(&f, results).await;
        // Every delivery stored once, counted twice (and the ghost's once).
        let stored = f.stored_events().await;
        assert_eq!(stored.len(), 2 * 8 + 1, "{stored:?}");
        assert!(
            stored.iter().filter(|e| e.0 == 200).all(|e| e.2 == 2),
            "{stored:?}"
        );
    })
    .await;
}

/// Two instances of the server receive every delivery at once (an agent retrying against a
/// load balancer): each report is applied once, whichever instance's batch takes it first,
/// and the other answers it as a repeat.
#[tokio::test]
async fn two_instances_apply_each_report_once() {
    each_backend(8, &[], |f| async move {
        let other = f.app.another_instance().await;
        let mut sent: Vec<(String, Value)> = Vec::new();
        for (n, &(reminder, attempt)) in f.calls.iter().enumerate() {
            sent.push((format!("a{n}"), answered(reminder, attempt)));
            sent.push((
                format!("c{n}"),
                completed(
                    reminder,
                    json!({"connected": true, "duration": 40, "customer_response": "will_pay_today"}),
                ),
            ));
        }
        let answers = futures_util::future::join_all(sent.iter().flat_map(|(id, body)| {
            [
                f.signed_to(f.app.client(), id, body),
                f.signed_to(other.clone(), id, body),
            ]
        }))
        .await;
        let mut results: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (n, res) in answers.iter().enumerate() {
            let (id, _) = &sent[n / 2];
            assert_eq!(res.status, StatusCode::OK, "{id}: {}", res.body);
            let result = res.json()["result"].as_str().unwrap().to_owned();
            results.entry(id).or_default().push(result);
        }
        applied_once_each(&f, results).await;
        let stored = f.stored_events().await;
        assert_eq!(stored.len(), 2 * 8, "{stored:?}");
        assert!(stored.iter().all(|e| e.2 == 2), "{stored:?}");
    })
    .await;
}

/// A report that fails after it began to write takes nothing of its own with it — and nothing
/// of the reports applied in the same transaction: those are applied again on their own.
#[tokio::test]
async fn a_report_failing_midway_spares_the_reports_beside_it() {
    each_backend(4, &[], |f| async move {
        let (broken, _) = f.calls[0];
        let invoice: i64 = sqlx::query_scalar("SELECT invoice_id FROM reminders WHERE id = $1")
            .bind(broken)
            .fetch_one(f.app.db.pool())
            .await
            .unwrap();
        // The follow-up reminder of the first invoice cannot be written.
        let ddl: Vec<String> = match f.app.db.dialect() {
            app::db::Dialect::Sqlite => vec![format!(
                "CREATE TRIGGER no_follow_up BEFORE INSERT ON reminders \
                 WHEN NEW.kind = 'follow_up' AND NEW.invoice_id = {invoice} \
                 BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
            )],
            app::db::Dialect::Postgres => vec![
                "CREATE FUNCTION no_follow_up() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$"
                    .to_owned(),
                format!(
                    "CREATE TRIGGER no_follow_up BEFORE INSERT ON reminders FOR EACH ROW \
                     WHEN (NEW.kind = 'follow_up' AND NEW.invoice_id = {invoice}) \
                     EXECUTE FUNCTION no_follow_up()"
                ),
            ],
        };
        for statement in &ddl {
            sqlx::query(statement)
                .execute(f.app.db.pool())
                .await
                .unwrap();
        }
        let pays_today =
            json!({"connected": true, "duration": 40, "customer_response": "will_pay_today"});
        let broken_before = broken_state(&f, broken).await;
        let sent: Vec<(String, Value)> = f
            .calls
            .iter()
            .enumerate()
            .map(|(n, &(reminder, _))| (format!("c{n}"), completed(reminder, pays_today.clone())))
            .collect();
        let answers =
            futures_util::future::join_all(sent.iter().map(|(id, body)| f.signed(id, body))).await;
        assert_error(&answers[0], StatusCode::INTERNAL_SERVER_ERROR, "internal");
        for res in &answers[1..] {
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(res.json()["result"], "applied", "{}", res.body);
        }
        // Nothing of the failed report: its reminder, attempt and history as they were.
        let (status, _) = f.reminder(broken).await;
        assert_eq!(status, "in_progress");
        assert_eq!(broken_state(&f, broken).await, broken_before);
        assert_eq!(f.history(broken).await, ["claim", "dial"]);
        for &(reminder, _) in &f.calls[1..] {
            assert_eq!(f.reminder(reminder).await.0, "completed");
        }
        // Once the database takes it, the same delivery applies.
        sqlx::query("DROP TRIGGER no_follow_up ON reminders")
            .execute(f.app.db.pool())
            .await
            .ok();
        sqlx::query("DROP TRIGGER IF EXISTS no_follow_up")
            .execute(f.app.db.pool())
            .await
            .ok();
        let res = f.signed(&sent[0].0, &sent[0].1).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["result"], "applied", "{}", res.body);
        assert_eq!(f.reminder(broken).await.0, "completed");
    })
    .await;
}

/// Reminder `id`, its attempts and its invoice, as text.
async fn broken_state(f: &Fixture, id: i64) -> Vec<String> {
    let mut all = Vec::new();
    for sql in [
        "SELECT status, attempts, due_at, last_reason FROM reminders WHERE id = $1",
        "SELECT status, connected, outcome, response, notes, reason FROM call_attempts WHERE reminder_id = $1",
        "SELECT i.hold_reason, i.promised_date, i.review FROM invoices i JOIN reminders r ON r.invoice_id = i.id WHERE r.id = $1",
    ] {
        all.extend(f.app.snapshot(sql, id).await);
    }
    all
}

/// Reports applied together in one session see what the earlier ones decided, though nothing is
/// written until the flush: the `completed` after an `answered` of the same call, and a second
/// reminder of the same invoice, whose follow-up depends on the first one having ended.
#[tokio::test]
async fn a_batch_sees_what_its_earlier_reports_decided() {
    use app::calls::apply::Session;
    use app::calls::report::CallStatusBody;

    each_backend(2, &[], |f| async move {
        let [(first, first_attempt), (second, _)] = [f.calls[0], f.calls[1]];
        // Both calls are about the first reminder's invoice.
        let invoice: i64 = sqlx::query_scalar("SELECT invoice_id FROM reminders WHERE id = $1")
            .bind(first)
            .fetch_one(f.app.db.pool())
            .await
            .unwrap();
        for sql in [
            "UPDATE reminders SET invoice_id = $1, step_offset_days = step_offset_days + 1000 WHERE id = $2",
            "UPDATE call_attempts SET invoice_id = $1 WHERE reminder_id = $2",
        ] {
            sqlx::query(sql)
                .bind(invoice)
                .bind(second)
                .execute(f.app.db.pool())
                .await
                .unwrap();
        }
        let pays_today =
            json!({"connected": true, "duration": 40, "customer_response": "will_pay_today"});
        let now = f.now();
        let report = |body: Value| {
            CallStatusBody::parse(body.to_string().as_bytes())
                .and_then(|parsed| parsed.validate(now))
                .unwrap()
        };
        let mut tx = f.app.db.begin_immediate().await.unwrap();
        let mut session = Session::default();
        // Both read ahead, as the writer does: the second's facts go stale once the first
        // call's writes are kept.
        session.prefetch(&mut tx, &[first, second]).await.unwrap();
        let mut summaries = Vec::new();
        for body in [
            answered(first, first_attempt),
            completed(first, pays_today.clone()),
            // Late, after its call ended: acknowledged, changing nothing.
            answered(first, first_attempt),
            completed(second, pays_today.clone()),
        ] {
            if summaries.len() == 3 {
                // The first call's reports are decided and kept, not yet written.
                let written: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM reminder_events WHERE reminder_id = $1 AND actor = 'webhook'",
                )
                .bind(first)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                assert_eq!(written, 0);
            }
            let applied = session
                .apply(&mut tx, &report(body), None, now)
                .await
                .unwrap();
            summaries.push((applied.changed, applied.summary));
        }
        session.flush(&mut tx).await.unwrap();
        tx.commit().await.unwrap();

        let changed: Vec<bool> = summaries.iter().map(|s| s.0).collect();
        assert_eq!(changed, [true, true, false, true], "{summaries:?}");
        // The first call ended while the second reminder of its invoice was open: that one makes
        // the next call. The second ended with no other open: a follow-up is made.
        assert!(
            summaries[1].1.contains("the invoice's next reminder makes the next call"),
            "{summaries:?}"
        );
        assert!(
            summaries[3].1.contains("a follow-up reminder is made"),
            "{summaries:?}"
        );
        let follow_ups: Vec<(i64, String)> = sqlx::query_as(
            "SELECT invoice_id, status FROM reminders WHERE org_id = $1 AND kind = 'follow_up'",
        )
        .bind(f.org_id)
        .fetch_all(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(follow_ups, [(invoice, "pending".to_owned())]);
        assert_eq!(
            f.history(first).await,
            ["claim", "dial", "answered", "completed"]
        );
        assert_eq!(
            f.history(second).await,
            ["claim", "dial", "answered", "completed"]
        );
        // The first attempt's two reports merged into one row: answered, then completed with
        // the conversation's particulars.
        let attempt: (String, i64, i64, i64, String, Option<i64>) = sqlx::query_as(
            "SELECT status, connected, CASE WHEN answered_at IS NULL THEN 0 ELSE 1 END, \
               CASE WHEN ended_at IS NULL THEN 0 ELSE 1 END, response, duration_seconds \
             FROM call_attempts WHERE id = $1",
        )
        .bind(first_attempt)
        .fetch_one(f.app.db.pool())
        .await
        .unwrap();
        assert_eq!(
            attempt,
            (
                "completed".to_owned(),
                1,
                1,
                1,
                "will_pay_today".to_owned(),
                Some(40)
            )
        );
        let hold: Option<i64> =
            sqlx::query_scalar("SELECT hold_until FROM invoices WHERE id = $1")
                .bind(invoice)
                .fetch_one(f.app.db.pool())
                .await
                .unwrap();
        assert!(hold.is_some());
    })
    .await;
}

/// The writer keeps each organization's profile from one batch to the next while it holds the
/// writing connection: a profile saved between two reports still decides the second one.
#[tokio::test]
async fn a_profile_saved_between_two_reports_decides_the_second() {
    each_backend(2, &[], |mut f| async move {
        let pays_today = json!({"connected": true, "customer_response": "will_pay_today"});
        let db: Db = f.app.db.clone();
        let hold_of = |reminder: i64| {
            let db = db.clone();
            async move {
                let hold: Option<i64> = sqlx::query_scalar(
                    "SELECT i.hold_until FROM reminders r JOIN invoices i ON i.id = r.invoice_id \
                     WHERE r.id = $1",
                )
                .bind(reminder)
                .fetch_one(db.pool())
                .await
                .unwrap();
                hold.map(app::db::time::from_millis)
            }
        };
        let res = f
            .signed("tz0", &completed(f.calls[0].0, pays_today.clone()))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let london: DateTime<Utc> = "2026-03-03T00:00:00Z".parse().unwrap();
        assert_eq!(hold_of(f.calls[0].0).await, Some(london));

        let member = f.app.member(&mut f.owner).await;
        let mut moved = app::reminders::service::profile(&f.app.db, member)
            .await
            .unwrap();
        moved.timezone = "America/New_York".into();
        app::reminders::service::save_profile(&f.app.db, member, &moved)
            .await
            .unwrap();

        let res = f.signed("tz1", &completed(f.calls[1].0, pays_today)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        // "Tomorrow" begins at midnight in New York now.
        let new_york: DateTime<Utc> = "2026-03-03T05:00:00Z".parse().unwrap();
        assert_eq!(hold_of(f.calls[1].0).await, Some(new_york));
    })
    .await;
}
