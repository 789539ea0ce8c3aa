//! `POST /api/webhooks/livekit` through the real router, on both backends, with events signed by
//! the fake LiveKit: a finished room or a departed agent brings the attempt's deadline forward,
//! so the call fails within seconds instead of the whole agent timeout; duplicates, other rooms
//! and other participants change nothing; bad tokens and tampered bodies are refused.

mod common;

use axum::body::Body;
use chrono::{DateTime, Duration, Utc};
use http::{Request, StatusCode};
use livekit_protocol as proto;

use common::reminders::{books, calls_on, dial_due};
use common::{Backend, TestApp, TestResponse};
use server::livekit_fake::FakeLiveKit;
use server::reminders::Clock;
use server::reminders::livekit::room_name;
use server::webhooks::livekit::{GRACE, LIVEKIT_PATH};

const KEY: &str = "APIduecall";
const SECRET: &str = "a-long-enough-secret-for-hs256-signing";

fn monday_ten() -> DateTime<Utc> {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

async fn post(app: &TestApp, authorization: &str, body: &str) -> TestResponse {
    let request = Request::post(LIVEKIT_PATH)
        .header("content-type", "application/webhook+json")
        .header("authorization", authorization)
        .body(Body::from(body.to_owned()))
        .unwrap();
    app.client().send(request).await
}

fn event(
    kind: &str,
    id: &str,
    room: &str,
    participant: Option<(&str, i32)>,
) -> proto::WebhookEvent {
    proto::WebhookEvent {
        event: kind.into(),
        id: id.into(),
        room: Some(proto::Room {
            name: room.into(),
            ..proto::Room::default()
        }),
        participant: participant.map(|(identity, kind)| proto::ParticipantInfo {
            identity: identity.into(),
            kind,
            ..proto::ParticipantInfo::default()
        }),
        created_at: monday_ten().timestamp(),
        ..proto::WebhookEvent::default()
    }
}

async fn lease(app: &TestApp, reminder: i64) -> i64 {
    sqlx::query_scalar("SELECT lease_until FROM reminders WHERE id = $1")
        .bind(reminder)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gone_agent_fails_its_call_early_and_nothing_else_moves() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::with_config(
            backend,
            &[
                ("LIVEKIT_URL", "http://127.0.0.1:9"),
                ("LIVEKIT_API_KEY", KEY),
                ("LIVEKIT_API_SECRET", SECRET),
                ("LIVEKIT_SIP_TRUNK_ID", "ST_test"),
                ("LIVEKIT_AGENT_NAME", "duecall-collector"),
                ("DUECALL_CALL_PROVIDER", "simulator"),
            ],
        )
        .await
        else {
            continue;
        };
        let mut owner = app.signed_up("Olive", "olive@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        app.clock.set(monday_ten());
        books(&app.db, member.org_id, 2, monday_ten().date_naive()).await;
        calls_on(&app.db, member, |_| {}).await;
        let calls = dial_due(&app.db, &app.clock).await;
        let (first, second) = (&calls[0], &calls[1]);
        let fake = FakeLiveKit::new(KEY, SECRET);
        let before = lease(&app, first.reminder_id).await;
        assert!(before > app::db::time::to_millis(app.clock.now() + Duration::minutes(5)));

        // Refused: a token signed with another secret, and a body changed after signing.
        let impostor = FakeLiveKit::new(KEY, "another-secret-that-is-long-enough-too");
        let (auth, body) = impostor.webhook(event(
            "room_finished",
            "EV_x",
            &room_name(first.attempt_id),
            None,
        ));
        let res = post(&app, &auth, &body).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
        let (auth, body) = fake.webhook(event(
            "room_finished",
            "EV_y",
            &room_name(first.attempt_id),
            None,
        ));
        let tampered = body.replace(&room_name(first.attempt_id), &room_name(second.attempt_id));
        assert_eq!(
            post(&app, &auth, &tampered).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(post(&app, "", &body).await.status, StatusCode::UNAUTHORIZED);

        // Ignored: another room, and the callee (not the agent) leaving.
        let (auth, body) = fake.webhook(event("room_finished", "EV_1", "someone-elses-room", None));
        assert_eq!(post(&app, &auth, &body).await.json()["result"], "ignored");
        let callee = Some(("debtor-1", 3));
        let (auth, body) = fake.webhook(event(
            "participant_left",
            "EV_2",
            &room_name(second.attempt_id),
            callee,
        ));
        assert_eq!(post(&app, &auth, &body).await.json()["result"], "ignored");
        assert_eq!(lease(&app, second.reminder_id).await, before);

        // The agent leaves the first call: its deadline comes forward to the grace period.
        let agent = Some(("agent-AJ_1", 4));
        let (auth, body) = fake.webhook(event(
            "participant_left",
            "EV_3",
            &room_name(first.attempt_id),
            agent,
        ));
        let res = post(&app, &auth, &body).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["result"], "applied");
        assert_eq!(
            lease(&app, first.reminder_id).await,
            app::db::time::to_millis(app.clock.now() + GRACE)
        );
        // LiveKit sends it again: acknowledged, nothing more.
        let res = post(&app, &auth, &body).await;
        assert_eq!(res.json()["result"], "duplicate");
        // The room finishing afterwards does not extend the deadline again.
        let (auth, body) = fake.webhook(event(
            "room_finished",
            "EV_4",
            &room_name(first.attempt_id),
            None,
        ));
        assert_eq!(post(&app, &auth, &body).await.status, StatusCode::OK);
        assert_eq!(
            lease(&app, first.reminder_id).await,
            app::db::time::to_millis(app.clock.now() + GRACE)
        );

        // After the grace period the monitor fails it; the other call still waits.
        app.clock.advance(GRACE + Duration::seconds(1));
        let swept = app::reminders::dispatch::sweep_expired(&app.db, "monitor", app.clock.now())
            .await
            .unwrap();
        assert_eq!(swept.timed_out, 1);
        let statuses: Vec<String> =
            sqlx::query_scalar("SELECT status FROM call_attempts WHERE org_id = $1 ORDER BY id")
                .bind(member.org_id)
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        assert_eq!(statuses, ["timed_out", "dialling"]);
        // Every verified delivery was stored, the attempt's ones on its reminder's page.
        let stored: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_events WHERE source = 'livekit' AND reminder_id = $1",
        )
        .bind(first.reminder_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(stored, 2);
    }
}

#[tokio::test]
async fn without_livekit_the_endpoint_says_so() {
    let Some(app) = TestApp::new(Backend::Sqlite).await else {
        return;
    };
    let fake = FakeLiveKit::new(KEY, SECRET);
    let (auth, body) = fake.webhook(event("room_finished", "EV_1", "duecall-attempt-1", None));
    let res = post(&app, &auth, &body).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.json()["error"]["code"], "not_configured");
}
