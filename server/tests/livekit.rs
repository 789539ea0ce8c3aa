//! The LiveKit call provider against the fake LiveKit over real HTTP: the exact requests one
//! attempt makes (and their grants), idempotency when an attempt is placed again, the mapping of
//! failed dials to outcomes, and refused credentials. Also the fake's own wire behaviour that
//! the provider relies on: Twirp errors, grant checks and webhook signatures.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, SIPGrants, TokenVerifier, VideoGrants};
use livekit_api::services::SipCallError;
use livekit_api::services::sip::{CreateSIPParticipantOptions, SIPClient};
use livekit_api::webhooks::WebhookReceiver;
use livekit_protocol as proto;
use prost::Message;
use secrecy::SecretString;
use serde_json::{Value, json};

use app::reminders::dispatch::{CallContext, CallRequest};
use server::livekit_fake::{FakeBody, FakeLiveKit, FakeRequest, Grants, SipScript, TwirpCode};
use server::reminders::livekit::{LiveKit, LiveKitConfig};
use server::reminders::{CallProvider, PlaceError, Placed};

const API_KEY: &str = "APIduecall";
const API_SECRET: &str = "a-long-enough-secret-for-hs256-signing";
const TRUNK: &str = "ST_duecall0001";
const AGENT: &str = "duecall-collector";
const CALLBACK: &str = "https://duecall.example/api/webhooks/call-status";
const NUMBER: &str = "+442079460001";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Serves the fake on a random local port; returns its URL.
async fn serve(fake: &FakeLiveKit) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = fake.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn config(url: &str, secret: &str) -> LiveKitConfig {
    LiveKitConfig {
        url: url.to_owned(),
        api_key: API_KEY.to_owned(),
        api_secret: SecretString::from(secret.to_owned()),
        sip_trunk_id: TRUNK.to_owned(),
        agent_name: AGENT.to_owned(),
        callback_url: CALLBACK.to_owned(),
        webhook_secret: SecretString::from(WEBHOOK_SECRET.to_owned()),
        ringing_timeout: Duration::from_secs(25),
        max_call_duration: Duration::from_secs(600),
    }
}

async fn provider(fake: &FakeLiveKit) -> LiveKit {
    LiveKit::new(config(&serve(fake).await, API_SECRET))
}

fn call(attempt_id: i64, phone: &str) -> CallRequest {
    CallRequest {
        org_id: 3,
        reminder_id: 42,
        attempt_id,
        attempt_no: 2,
        phone_e164: phone.to_owned(),
        context: CallContext {
            business_name: "Acme Supplies".into(),
            caller_identity: "Acme Supplies accounts team".into(),
            opening: "Hello, this is an AI assistant calling for Acme Supplies. This call is \
                      recorded. Say stop at any time and we will not call again."
                .into(),
            language: "en-GB".into(),
            customer_name: "Jane Smith".into(),
            invoice_number: "INV-1042".into(),
            amount: "£1,234.50".into(),
            balance_minor: 123_450,
            currency: "GBP".into(),
            due_date: "2026-02-01".into(),
            payment_link: "https://pay.example/acme".into(),
            script: "Remind Jane Smith that INV-1042 for £1,234.50 was due on 2026-02-01.".into(),
        },
    }
}

fn grants(video: VideoGrants, sip: SIPGrants) -> Option<Grants> {
    Some(Grants {
        api_key: API_KEY.to_owned(),
        video,
        sip,
    })
}

fn room_admin(room: &str) -> Option<Grants> {
    grants(
        VideoGrants {
            room_admin: true,
            room: room.to_owned(),
            ..VideoGrants::default()
        },
        SIPGrants::default(),
    )
}

fn room_create() -> Option<Grants> {
    grants(
        VideoGrants {
            room_create: true,
            ..VideoGrants::default()
        },
        SIPGrants::default(),
    )
}

#[tokio::test]
async fn one_attempt_makes_exactly_these_requests() {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    let livekit = provider(&fake).await;

    let placed = livekit.place(&call(7, NUMBER)).await;

    assert_eq!(
        placed,
        Ok(Placed {
            reference: "duecall-attempt-7".into()
        })
    );
    let requests = fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "RoomService/CreateRoom",
            "AgentDispatchService/ListDispatch",
            "AgentDispatchService/CreateDispatch",
            "RoomService/ListParticipants",
            "SIP/CreateSIPParticipant",
        ]
    );
    assert!(requests.iter().all(|r| r.status == 200), "{requests:#?}");

    let FakeBody::CreateRoom(room) = &requests[0].body else {
        panic!("{:?}", requests[0].body)
    };
    assert_eq!(room.name, "duecall-attempt-7");
    assert_eq!(room.empty_timeout, 25 + 60);
    assert_eq!(room.max_participants, 3);
    assert!(room.agents.is_empty());
    assert_eq!(requests[0].grants, room_create());

    let FakeBody::ListDispatch(list) = &requests[1].body else {
        panic!("{:?}", requests[1].body)
    };
    assert_eq!(list.room, "duecall-attempt-7");
    assert_eq!(requests[1].grants, room_admin("duecall-attempt-7"));

    let FakeBody::CreateDispatch(dispatch) = &requests[2].body else {
        panic!("{:?}", requests[2].body)
    };
    assert_eq!(dispatch.agent_name, AGENT);
    assert_eq!(dispatch.room, "duecall-attempt-7");
    assert_eq!(
        dispatch.restart_policy,
        proto::JobRestartPolicy::JrpNever as i32
    );
    let metadata: Value = serde_json::from_str(&dispatch.metadata).unwrap();
    assert_eq!(
        metadata,
        json!({
            "reminder_id": 42,
            "attempt_id": 7,
            "attempt_no": 2,
            "org_id": 3,
            "business_name": "Acme Supplies",
            "caller_identity": "Acme Supplies accounts team",
            "opening": "Hello, this is an AI assistant calling for Acme Supplies. This call is \
                        recorded. Say stop at any time and we will not call again.",
            "language": "en-GB",
            "customer_name": "Jane Smith",
            "invoice_number": "INV-1042",
            "amount": "£1,234.50",
            "balance_minor": 123450,
            "currency": "GBP",
            "due_date": "2026-02-01",
            "payment_link": "https://pay.example/acme",
            "script": "Remind Jane Smith that INV-1042 for £1,234.50 was due on 2026-02-01.",
            "phone_e164": NUMBER,
            "callback_url": format!("{CALLBACK}?attempt=7"),
            "signing_secret": server::webhooks::signature::derive_attempt_secret(
                &SecretString::from(WEBHOOK_SECRET.to_owned()),
                7,
            )
            .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
            .unwrap(),
            "events": ["call_answered", "call_completed", "call_failed"],
        })
    );
    assert_eq!(requests[2].grants, room_admin("duecall-attempt-7"));

    let FakeBody::ListParticipants(participants) = &requests[3].body else {
        panic!("{:?}", requests[3].body)
    };
    assert_eq!(participants.room, "duecall-attempt-7");
    assert_eq!(requests[3].grants, room_admin("duecall-attempt-7"));

    let FakeBody::CreateSipParticipant(dial) = &requests[4].body else {
        panic!("{:?}", requests[4].body)
    };
    assert_eq!(dial.sip_trunk_id, TRUNK);
    assert_eq!(dial.sip_call_to, NUMBER);
    assert_eq!(dial.room_name, "duecall-attempt-7");
    assert_eq!(dial.participant_identity, "debtor-7");
    assert_eq!(dial.participant_name, "Jane Smith");
    assert!(dial.wait_until_answered);
    assert!(dial.krisp_enabled);
    assert!(!dial.play_dialtone);
    assert_eq!(dial.ringing_timeout.as_ref().map(|d| d.seconds), Some(25));
    assert_eq!(
        dial.max_call_duration.as_ref().map(|d| d.seconds),
        Some(600)
    );
    assert_eq!(
        requests[4].grants,
        grants(
            VideoGrants::default(),
            SIPGrants {
                admin: false,
                call: true
            }
        )
    );

    // The callee is in the room with the dispatched agent's dispatch beside it.
    let identities: Vec<String> = fake
        .participants("duecall-attempt-7")
        .into_iter()
        .map(|p| p.identity)
        .collect();
    assert_eq!(identities, ["debtor-7"]);
    let dispatches = fake.dispatches("duecall-attempt-7");
    assert_eq!(dispatches.len(), 1);
    assert_eq!(
        dispatches[0].restart_policy,
        proto::JobRestartPolicy::JrpNever as i32
    );
}

#[tokio::test]
async fn placing_the_same_attempt_again_dials_nothing_new() {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    fake.register_agent(AGENT);
    let livekit = provider(&fake).await;
    let first = livekit.place(&call(8, NUMBER)).await.unwrap();
    fake.clear_requests();

    let again = livekit.place(&call(8, NUMBER)).await;

    assert_eq!(again, Ok(first));
    assert_eq!(
        fake.methods(),
        [
            "RoomService/CreateRoom",
            "AgentDispatchService/ListDispatch",
            "RoomService/ListParticipants",
        ]
    );
    assert_eq!(fake.dispatches("duecall-attempt-8").len(), 1);
    let mut identities: Vec<String> = fake
        .participants("duecall-attempt-8")
        .into_iter()
        .map(|p| p.identity)
        .collect();
    identities.sort();
    assert_eq!(identities.len(), 2, "{identities:?}");
    assert_eq!(identities[1], "debtor-8");
    assert!(identities[0].starts_with("agent-AJ_"), "{identities:?}");
}

/// Places attempt `attempt_id` to a number scripted to fail so; returns the outcome and the
/// requests made.
async fn failed_dial(attempt_id: i64, script: SipScript) -> (PlaceError, FakeLiveKit) {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    fake.register_agent(AGENT);
    let number = format!("+4420794600{attempt_id:02}");
    fake.script_number(&number, script);
    let livekit = provider(&fake).await;
    let outcome = livekit
        .place(&call(attempt_id, &number))
        .await
        .expect_err("the dial was scripted to fail");
    (outcome, fake)
}

fn assert_hung_up(fake: &FakeLiveKit, attempt_id: i64) {
    let room = format!("duecall-attempt-{attempt_id}");
    assert_eq!(
        fake.room(&room),
        None,
        "the room is deleted after a failure"
    );
    let requests = fake.requests();
    let last: &FakeRequest = requests.last().unwrap();
    assert_eq!(last.method, "RoomService/DeleteRoom");
    assert_eq!(
        last.body,
        FakeBody::DeleteRoom(proto::DeleteRoomRequest { room })
    );
    assert_eq!(last.grants, room_create());
    assert_eq!(last.status, 200);
    let dials = requests
        .iter()
        .filter(|r| r.method == "SIP/CreateSIPParticipant")
        .count();
    assert_eq!(dials, 1);
}

#[tokio::test]
async fn a_busy_line_is_busy_and_hangs_up() {
    for (attempt_id, script) in [
        (11, SipScript::Status(486, "Busy Here")),
        (12, SipScript::Status(600, "Busy Everywhere")),
        (13, SipScript::Status(603, "Decline")),
        (14, SipScript::Status(486, "")),
    ] {
        let (outcome, fake) = failed_dial(attempt_id, script).await;
        assert_eq!(outcome, PlaceError::Busy, "{script:?}");
        assert_hung_up(&fake, attempt_id);
    }
}

#[tokio::test]
async fn an_unanswered_call_is_no_answer_and_hangs_up() {
    for (attempt_id, script) in [
        (21, SipScript::RINGING_TIMEOUT),
        (22, SipScript::Status(480, "Temporarily Unavailable")),
        (23, SipScript::Status(487, "Request Terminated")),
    ] {
        let (outcome, fake) = failed_dial(attempt_id, script).await;
        assert_eq!(outcome, PlaceError::NoAnswer, "{script:?}");
        assert_hung_up(&fake, attempt_id);
    }
}

#[tokio::test]
async fn a_bad_number_is_not_retried() {
    for (attempt_id, script, reason) in [
        (31, SipScript::Status(404, "Not Found"), "404 Not Found"),
        (
            32,
            SipScript::Status(484, "Address Incomplete"),
            "484 Address Incomplete",
        ),
        (
            33,
            SipScript::Status(604, ""),
            "604 SIP_STATUS_GLOBAL_DOES_NOT_EXIST_ANYWHERE",
        ),
    ] {
        let (outcome, fake) = failed_dial(attempt_id, script).await;
        assert_eq!(outcome, PlaceError::BadNumber(reason.into()), "{script:?}");
        assert_hung_up(&fake, attempt_id);
    }
}

#[tokio::test]
async fn a_trunk_failure_is_retried_and_names_the_trunk() {
    for (attempt_id, script, label) in [
        (
            41,
            SipScript::Status(503, "Service Unavailable"),
            "503 Service Unavailable",
        ),
        (42, SipScript::Status(403, "Forbidden"), "403 Forbidden"),
        (
            43,
            SipScript::Status(407, "Proxy Authentication Required"),
            "407 Proxy Authentication Required",
        ),
    ] {
        let (outcome, fake) = failed_dial(attempt_id, script).await;
        assert_eq!(
            outcome,
            PlaceError::Failed {
                reason: format!(
                    "SIP trunk failure ({label}): the outbound trunk or the carrier account \
                     refused the call."
                ),
                retry: true,
            },
            "{script:?}"
        );
        assert_hung_up(&fake, attempt_id);
    }
}

#[tokio::test]
async fn a_dial_failing_without_a_sip_status_is_retried() {
    let (outcome, fake) = failed_dial(
        51,
        SipScript::Fail(TwirpCode::Internal, "could not reach +442079460051"),
    )
    .await;
    assert_eq!(
        outcome,
        PlaceError::Failed {
            reason: "Could not dial the customer at LiveKit: could not reach …051 (internal)"
                .into(),
            retry: true,
        }
    );
    assert_hung_up(&fake, 51);
}

#[tokio::test]
async fn a_wrong_api_secret_is_refused_and_nothing_is_dialled() {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    let livekit = LiveKit::new(config(&serve(&fake).await, "not-the-secret-at-all"));

    let outcome = livekit.place(&call(61, NUMBER)).await;

    assert_eq!(
        outcome,
        Err(PlaceError::Failed {
            reason: "LiveKit refused the API key trying to create the call's room: invalid token \
                     (unauthenticated)"
                .into(),
            retry: true,
        })
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "RoomService/CreateRoom");
    assert_eq!(requests[0].status, 401);
    assert_eq!(requests[0].grants, None);
    assert!(fake.rooms().is_empty());
}

#[tokio::test]
async fn a_refused_token_gets_a_twirp_error() {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    let url = serve(&fake).await;
    let http = reqwest::Client::new();
    let body = proto::CreateRoomRequest {
        name: "room".into(),
        ..proto::CreateRoomRequest::default()
    }
    .encode_to_vec();
    let post = |token: String| {
        http.post(format!("{url}/twirp/livekit.RoomService/CreateRoom"))
            .header("Content-Type", "application/protobuf")
            .header("Authorization", format!("Bearer {token}"))
            .body(body.clone())
            .send()
    };

    let wrong_key = AccessToken::with_api_key("APIsomeoneelse", API_SECRET)
        .with_grants(VideoGrants {
            room_create: true,
            ..VideoGrants::default()
        })
        .to_jwt()
        .unwrap();
    let refused = post(wrong_key).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["content-type"],
        "application/json",
        "Twirp errors are JSON"
    );
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"code": "unauthenticated", "msg": "invalid token"})
    );

    // A valid token without the method's grant, as LiveKit answers it.
    let list_only = AccessToken::with_api_key(API_KEY, API_SECRET)
        .with_grants(VideoGrants {
            room_list: true,
            ..VideoGrants::default()
        })
        .to_jwt()
        .unwrap();
    let denied = post(list_only).await.unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied.json::<Value>().await.unwrap(),
        json!({"code": "unauthenticated", "msg": "permissions denied"})
    );
    assert!(fake.rooms().is_empty());

    // Room admin of another room may not list this one's dispatches.
    let other_room = AccessToken::with_api_key(API_KEY, API_SECRET)
        .with_grants(VideoGrants {
            room_admin: true,
            room: "elsewhere".into(),
            ..VideoGrants::default()
        })
        .to_jwt()
        .unwrap();
    let denied = http
        .post(format!(
            "{url}/twirp/livekit.AgentDispatchService/ListDispatch"
        ))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {other_room}"))
        .body(r#"{"room":"room"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401]);
}

#[tokio::test]
async fn a_failed_dial_carries_the_sip_status_as_livekit_sends_it() {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    fake.script_number(NUMBER, SipScript::Status(486, "Busy Here"));
    let sip = SIPClient::with_api_key(&serve(&fake).await, API_KEY, API_SECRET);

    let err = sip
        .create_sip_participant(
            TRUNK.into(),
            NUMBER.into(),
            "room".into(),
            CreateSIPParticipantOptions {
                wait_until_answered: Some(true),
                ..CreateSIPParticipantOptions::default()
            },
            None,
        )
        .await
        .expect_err("the number is busy");

    let sip_error = SipCallError::from_error(&err).expect("a SIP call error");
    assert_eq!(sip_error.code(), "resource_exhausted");
    assert_eq!(sip_error.sip_status_code(), Some(486));
    assert_eq!(sip_error.sip_status(), Some("Busy Here"));
    assert!(sip_error.metadata().contains_key("error_details"));
    assert_eq!(fake.requests()[0].status, 429);
    assert!(fake.participants("room").is_empty());
}

#[tokio::test]
async fn webhooks_are_signed_as_livekit_signs_them() {
    let fake = FakeLiveKit::new(API_KEY, API_SECRET);
    let event = proto::WebhookEvent {
        event: "participant_left".into(),
        id: "EV_fake0001".into(),
        created_at: 1_767_225_600,
        room: Some(proto::Room {
            name: "duecall-attempt-7".into(),
            ..proto::Room::default()
        }),
        participant: Some(proto::ParticipantInfo {
            identity: "debtor-7".into(),
            disconnect_reason: proto::DisconnectReason::UserRejected as i32,
            ..proto::ParticipantInfo::default()
        }),
        ..proto::WebhookEvent::default()
    };

    let (authorization, body) = fake.webhook(event.clone());

    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["event"], "participant_left");
    assert_eq!(json["createdAt"], "1767225600");
    assert_eq!(json["participant"]["disconnectReason"], "USER_REJECTED");
    let receiver = WebhookReceiver::new(TokenVerifier::with_api_key(API_KEY, API_SECRET));
    assert_eq!(receiver.receive(&body, &authorization).unwrap(), event);
    // Signed for this body only, and only with this secret.
    assert!(
        receiver
            .receive(&body.replace("debtor-7", "debtor-8"), &authorization)
            .is_err()
    );
    let stranger = WebhookReceiver::new(TokenVerifier::with_api_key(API_KEY, "another-secret"));
    assert!(stranger.receive(&body, &authorization).is_err());
}
