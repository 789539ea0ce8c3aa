//! A faithful local fake of LiveKit's server API, for tests over real HTTP: the LiveKit call
//! provider talks to it exactly as to LiveKit Cloud or a self-hosted server, through the same
//! `livekit-api` clients.
//!
//! It serves Twirp (`POST /twirp/livekit.<Service>/<Method>`, protobuf or JSON bodies, decoded
//! with `prost` and `livekit-protocol`'s types) for the methods Duecall uses:
//!
//! | service | methods |
//! |---|---|
//! | `RoomService` | `CreateRoom`, `DeleteRoom`, `ListRooms`, `ListParticipants`, `GetParticipant` |
//! | `AgentDispatchService` | `CreateDispatch`, `ListDispatch`, `DeleteDispatch` |
//! | `SIP` | `CreateSIPParticipant` |
//!
//! What it follows from LiveKit's sources (livekit/livekit `pkg/service`, livekit/protocol,
//! livekit/sip):
//!
//! - **Authentication**: a `Bearer` JWT verified with the API key and secret
//!   ([`TokenVerifier`](livekit_api::access_token::TokenVerifier)); a missing, malformed or
//!   wrongly signed token is refused with Twirp `unauthenticated` (HTTP 401), as LiveKit's own
//!   mock API server does. (The real server's middleware answers that 401 with a plain-text body,
//!   which clients then fail to decode; either way the request is refused.)
//! - **Grants**, per method as the real server checks them: `roomCreate` for CreateRoom and
//!   DeleteRoom, `roomList` for ListRooms, `roomAdmin` for the request's own room for participant
//!   and dispatch methods, the SIP `call` grant for CreateSIPParticipant. A token without them is
//!   refused with Twirp `unauthenticated` "permissions denied" (HTTP 401).
//! - **Rooms**: CreateRoom returns the existing room when there is one; a dispatch or a dial
//!   into a missing room creates it (LiveKit's room auto-create); DeleteRoom of a missing room is
//!   `not_found`; ListDispatch on a missing room is `unavailable` ("no response from servers",
//!   what a self-hosted server answers after its RPC times out).
//! - **Dispatches** keep their restart policy; an agent registered with
//!   [`FakeLiveKit::register_agent`] joins the room when dispatched, as a running worker would.
//! - **Dials** follow a script per dialled number ([`FakeLiveKit::script_number`], answered by
//!   default). An answered call adds the SIP participant to the room; a failed one answers the
//!   error LiveKit sends: the Twirp code gRPC assigns to that SIP status, message
//!   `sip status <code>: <reason>`, and `meta` with `sip_status_code`, `sip_status` and
//!   `error_details` (the base64 gRPC status holding a `livekit.SIPStatus`).
//!
//! Every request is recorded ([`FakeLiveKit::requests`]): the method, the decoded body, the
//! token's grants and the HTTP status answered. [`FakeLiveKit::webhook`] signs a LiveKit webhook
//! the way LiveKit does, so webhook handlers can be tested against the same key.
//!
//! State sits behind a `std::sync::Mutex` that is never held across an `.await`.

mod state;
mod twirp;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine;
use livekit_api::access_token::{AccessToken, SIPGrants, TokenVerifier, VideoGrants};
use livekit_protocol as proto;
use sha2::{Digest, Sha256};

pub use twirp::TwirpCode;

use state::State;

/// How long a webhook's token is valid (LiveKit's own).
const WEBHOOK_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

/// What happens when a number is dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipScript {
    /// The callee picks up: the SIP participant joins the room.
    Answer,
    /// The far end ends the INVITE with this final response, e.g. `Status(486, "Busy Here")`.
    /// An empty reason stands for none: LiveKit then reports the status's name
    /// (`SIP_STATUS_BUSY_HERE`).
    Status(u32, &'static str),
    /// LiveKit fails the request without a SIP status.
    Fail(TwirpCode, &'static str),
}

impl SipScript {
    /// How LiveKit reports a call nobody picked up within the ringing timeout.
    pub const RINGING_TIMEOUT: SipScript = SipScript::Status(408, "Request Timeout");
}

/// The grants a request's token carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    /// The key that signed the token (its `iss`).
    pub api_key: String,
    pub video: VideoGrants,
    pub sip: SIPGrants,
}

/// A request's body, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeBody {
    CreateRoom(Box<proto::CreateRoomRequest>),
    DeleteRoom(proto::DeleteRoomRequest),
    ListRooms(proto::ListRoomsRequest),
    ListParticipants(proto::ListParticipantsRequest),
    GetParticipant(proto::RoomParticipantIdentity),
    CreateDispatch(proto::CreateAgentDispatchRequest),
    ListDispatch(proto::ListAgentDispatchRequest),
    DeleteDispatch(proto::DeleteAgentDispatchRequest),
    CreateSipParticipant(Box<proto::CreateSipParticipantRequest>),
    /// A body that did not decode, or one for a method the fake does not serve.
    Raw(Vec<u8>),
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRequest {
    /// `Service/Method`, e.g. `RoomService/CreateRoom`.
    pub method: String,
    pub body: FakeBody,
    /// `None` when the token was missing or did not verify.
    pub grants: Option<Grants>,
    /// The HTTP status answered.
    pub status: u16,
}

/// The fake: cheap to clone (an `Arc` inside); every clone sees the same state.
#[derive(Clone)]
pub struct FakeLiveKit {
    inner: Arc<Inner>,
}

struct Inner {
    api_key: String,
    api_secret: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for FakeLiveKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLiveKit")
            .field("api_key", &self.inner.api_key)
            .finish_non_exhaustive()
    }
}

impl FakeLiveKit {
    /// A fake project with one API key. Both must be non-empty (LiveKit's SDKs refuse to sign
    /// with an empty key or secret).
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                api_key: api_key.into(),
                api_secret: api_secret.into(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The Twirp routes, to serve at the root of a listener (the `url` clients are given).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/twirp/{*method}", post(twirp::handle))
            .with_state(self.clone())
    }

    /// What dialling `number` (as sent in `sip_call_to`) does from now on.
    pub fn script_number(&self, number: &str, script: SipScript) {
        self.lock().scripts.insert(number.to_owned(), script);
    }

    /// A worker registered under `agent_name`: dispatches to it join their room.
    pub fn register_agent(&self, agent_name: &str) {
        self.lock().agents.insert(agent_name.to_owned());
    }

    /// Every request received, oldest first; refused ones included.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.lock().requests.clone()
    }

    /// The `Service/Method` of every request received, oldest first.
    pub fn methods(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(|r| r.method.clone())
            .collect()
    }

    /// Forgets the requests received so far (rooms and dispatches stay).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn room(&self, name: &str) -> Option<proto::Room> {
        self.lock().rooms.get(name).map(state::RoomState::snapshot)
    }

    /// Every open room, by name.
    pub fn rooms(&self) -> Vec<proto::Room> {
        self.lock()
            .rooms
            .values()
            .map(state::RoomState::snapshot)
            .collect()
    }

    /// The participants of a room, in the order they joined (none for a missing room).
    pub fn participants(&self, room: &str) -> Vec<proto::ParticipantInfo> {
        self.lock()
            .rooms
            .get(room)
            .map(|r| r.participants.clone())
            .unwrap_or_default()
    }

    /// The agent dispatches of a room, oldest first (none for a missing room).
    pub fn dispatches(&self, room: &str) -> Vec<proto::AgentDispatch> {
        self.lock()
            .rooms
            .get(room)
            .map(|r| r.dispatches.clone())
            .unwrap_or_default()
    }

    /// A webhook as LiveKit would deliver it: the `Authorization` header's value (a JWT signed
    /// with this fake's key, valid five minutes, whose `sha256` claim is the base64 SHA-256 of
    /// the body; no `Bearer` prefix) and the body (the event as protobuf JSON, sent as
    /// `application/webhook+json`).
    ///
    /// # Panics
    /// If the event holds an enum value outside its enumeration (it cannot be written as JSON).
    pub fn webhook(&self, event: proto::WebhookEvent) -> (String, String) {
        let body = serde_json::to_string(&event)
            .expect("a webhook event with valid enum values is writable as JSON");
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        let token = AccessToken::with_api_key(&self.inner.api_key, &self.inner.api_secret)
            .with_ttl(WEBHOOK_TOKEN_TTL)
            .with_sha256(&hash)
            .to_jwt()
            .expect("the fake's API key and secret are non-empty");
        (token, body)
    }

    /// The grants of a verified token.
    fn verify(&self, token: &str) -> Option<Grants> {
        let verifier = TokenVerifier::with_api_key(&self.inner.api_key, &self.inner.api_secret);
        let claims = verifier.verify(token).ok()?;
        Some(Grants {
            api_key: claims.iss,
            video: claims.video,
            sip: claims.sip,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
