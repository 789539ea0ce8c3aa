//! The LiveKit call provider: places each claimed attempt as an outbound phone call answered by
//! Duecall's voice agent, through LiveKit's server API (Twirp, via `livekit-api`).
//!
//! For one attempt, in order:
//!
//! 1. **Room** `duecall-attempt-{attempt_id}` (`RoomService.CreateRoom`, which returns the room
//!    when it already exists), with an empty timeout so a room nobody joins closes by itself.
//! 2. **Agent dispatch** (`AgentDispatchService.CreateDispatch`) of the agent registered under
//!    [`LiveKitConfig::agent_name`], with the call's [`AgentMetadata`] as JSON job metadata and
//!    the never-restart policy (`JobRestartPolicy::JrpNever`): the default policy restarts a
//!    failed job, and a restarted agent would start the conversation over (one that dials, as
//!    in LiveKit's example, would call the customer again). LiveKit marks that field "cloud
//!    only", so a self-hosted server may ignore it; the dial is therefore made idempotent here
//!    as well (below). The room's dispatches are listed first and an existing
//!    one for our agent is reused, so placing the attempt again never starts a second agent.
//! 3. **Dial** (`SIP.CreateSIPParticipant`) through the outbound trunk, as participant
//!    `debtor-{attempt_id}`, waiting until the call is answered. Before dialling, the room's
//!    participants are listed: if the callee is already there (ringing or talking), nothing is
//!    dialled. One attempt never produces two calls.
//!
//! **Why the backend dials, not the agent.** LiveKit's outbound example dials from inside the
//! agent once its session has started, so the agent is ready before the callee can speak. Here
//! the agent is dispatched first and waits for the callee to join the room, which gives the same
//! guarantee (no words are lost), while the dial's result comes back to the backend directly:
//! LiveKit has no webhook for SIP call progress, and with `wait_until_answered` the request
//! either returns once the call is answered or fails with the SIP status. The backend can then
//! map busy / no answer / bad number / trunk failure to the reminder's outcome itself, instead
//! of trusting the agent to report a call it never got to take. The price: `place` returns only
//! once the call is answered or has failed, up to the ringing timeout (plus a margin) later.
//!
//! **How LiveKit reports a failed dial.** The Twirp error carries the SIP final response in its
//! `meta`: `sip_status_code` (e.g. `"486"`) and `sip_status` (the reason phrase, or the
//! `SIPStatusCode` name when the far end sent none), plus `error_details` (the gRPC status with a
//! `livekit.SIPStatus` detail). See `SIPStatus.TwirpErrorMeta` in livekit/protocol
//! (`livekit/sip.go`) and `SipCallError` in `livekit-api`. An unanswered call is reported when
//! the ringing timeout passes, as SIP 408 "Request Timeout". The mapping to outcomes is
//! [`outcome_of_sip`]; after any failure the room is deleted, which hangs up and frees the agent.
//!
//! Failover to another LiveKit Cloud region is off for dispatches and dials: it replays a
//! request after a transport error or a 5xx, and a replayed dial could be a second call.

use std::time::Duration;

use app::calls::agent::AgentMetadata;
use app::reminders::dispatch::CallRequest;
use livekit_api::services::agent_dispatch::AgentDispatchClient;
use livekit_api::services::room::{CreateRoomOptions, RoomClient};
use livekit_api::services::sip::{CreateSIPParticipantOptions, SIPClient};
use livekit_api::services::{ServerError, ServerErrorCode, ServiceError, SipCallError};
use livekit_protocol as proto;
use secrecy::{ExposeSecret, SecretString};

use super::{CallProvider, PlaceError, Placed};

/// The longest wait for a room or dispatch request.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than the ringing timeout a dial may take: the carrier's call set-up and
/// LiveKit's own 408 after the ringing timeout both need time.
const DIAL_MARGIN: Duration = Duration::from_secs(15);
/// How much longer than the ringing timeout an attempt's room may stay empty: long enough for a
/// slow agent start and a long ring, short enough that a room left behind by a crash closes by
/// itself.
const EMPTY_ROOM_MARGIN: Duration = Duration::from_secs(60);
/// The agent, the callee, and a recorder (room-composite egress joins as a participant).
const MAX_PARTICIPANTS: u32 = 3;

/// How to reach LiveKit and what to dial with.
#[derive(Debug, Clone)]
pub struct LiveKitConfig {
    /// The project URL (`LIVEKIT_URL`): `wss://…` or `https://…`.
    pub url: String,
    pub api_key: String,
    pub api_secret: SecretString,
    /// The outbound SIP trunk (`LIVEKIT_SIP_TRUNK_ID`, `ST_…`).
    pub sip_trunk_id: String,
    /// The name the voice agent's worker registered under (`LIVEKIT_AGENT_NAME`; explicit
    /// dispatch).
    pub agent_name: String,
    /// Duecall's call-status endpoint, `{public URL}/api/webhooks/call-status`; each call's
    /// metadata names its attempt there (`?attempt=`).
    pub callback_url: String,
    /// The platform's newest call-status webhook secret (`whsec_…`): each call's agent gets a
    /// key derived from it that signs reports about that call only.
    pub webhook_secret: SecretString,
    /// How long the phone rings before the call counts as unanswered.
    pub ringing_timeout: Duration,
    /// The longest call LiveKit keeps up.
    pub max_call_duration: Duration,
}

/// The room of an attempt (also the attempt's reference at the provider).
pub fn room_name(attempt_id: i64) -> String {
    format!("duecall-attempt-{attempt_id}")
}

/// The callee's participant identity in an attempt's room.
pub fn callee_identity(attempt_id: i64) -> String {
    format!("debtor-{attempt_id}")
}

/// Places calls through LiveKit.
pub struct LiveKit {
    rooms: RoomClient,
    dispatches: AgentDispatchClient,
    sip: SIPClient,
    config: LiveKitConfig,
}

impl LiveKit {
    pub fn new(config: LiveKitConfig) -> Self {
        let (url, key, secret) = (
            config.url.as_str(),
            config.api_key.as_str(),
            config.api_secret.expose_secret(),
        );
        Self {
            rooms: RoomClient::with_api_key(url, key, secret).with_request_timeout(API_TIMEOUT),
            dispatches: AgentDispatchClient::with_api_key(url, key, secret)
                .with_request_timeout(API_TIMEOUT)
                .with_failover(false),
            sip: SIPClient::with_api_key(url, key, secret)
                .with_request_timeout(API_TIMEOUT)
                .with_failover(false),
            config,
        }
    }

    /// The agent and the dial, in a room that exists.
    async fn connect(&self, call: &CallRequest, room: &str) -> Result<(), PlaceError> {
        self.dispatch_agent(call, room).await?;
        let identity = callee_identity(call.attempt_id);
        if self.callee_in_room(call, room, &identity).await? {
            tracing::info!(
                attempt_id = call.attempt_id,
                room,
                "the callee is already in the room: not dialling again"
            );
            return Ok(());
        }
        let options = CreateSIPParticipantOptions {
            participant_identity: identity.clone(),
            participant_name: Some(call.context.customer_name.clone()),
            wait_until_answered: Some(true),
            play_dialtone: Some(false),
            ringing_timeout: Some(self.config.ringing_timeout),
            max_call_duration: Some(self.config.max_call_duration),
            enable_krisp: Some(true),
            timeout: Some(self.config.ringing_timeout + DIAL_MARGIN),
            ..CreateSIPParticipantOptions::default()
        };
        let dialled = self
            .sip
            .create_sip_participant(
                self.config.sip_trunk_id.clone(),
                call.phone_e164.clone(),
                room.to_owned(),
                options,
                None,
            )
            .await;
        match dialled {
            Ok(_) => Ok(()),
            // The answer was lost, not necessarily the call: LiveKit may have connected it.
            Err(ServiceError::Twirp(ServerError::Request(err))) => {
                if let Ok(true) = self.callee_in_room(call, room, &identity).await {
                    return Ok(());
                }
                let detail = redact(&err.to_string(), &call.phone_e164);
                tracing::warn!(
                    attempt_id = call.attempt_id,
                    error = %detail,
                    "the dial got no answer from LiveKit"
                );
                Err(PlaceError::Failed {
                    reason: format!("LiveKit did not answer the dial request: {detail}"),
                    retry: true,
                })
            }
            Err(err) => Err(self.dial_failure(call, &err)),
        }
    }

    /// Dispatches the agent to the room unless it already is.
    async fn dispatch_agent(&self, call: &CallRequest, room: &str) -> Result<(), PlaceError> {
        let existing = self
            .dispatches
            .list_dispatch(room)
            .await
            .map_err(|err| api_failure(call, "list the room's agent dispatches", &err))?;
        if existing
            .iter()
            .any(|dispatch| dispatch.agent_name == self.config.agent_name)
        {
            return Ok(());
        }
        let signing_secret = crate::webhooks::signature::derive_attempt_secret(
            &self.config.webhook_secret,
            call.attempt_id,
        )
        .map_err(|err| PlaceError::Failed {
            reason: format!("The call's signing key could not be made: {err}"),
            retry: false,
        })?;
        let callback = format!("{}?attempt={}", self.config.callback_url, call.attempt_id);
        let metadata = serde_json::to_string(&AgentMetadata::new(
            call,
            &callback,
            signing_secret.expose_secret(),
        ))
        .map_err(|err| PlaceError::Failed {
            reason: format!("The agent's metadata could not be written: {err}"),
            retry: false,
        })?;
        self.dispatches
            .create_dispatch(proto::CreateAgentDispatchRequest {
                agent_name: self.config.agent_name.clone(),
                room: room.to_owned(),
                metadata,
                restart_policy: proto::JobRestartPolicy::JrpNever as i32,
                ..proto::CreateAgentDispatchRequest::default()
            })
            .await
            .map_err(|err| api_failure(call, "dispatch the voice agent", &err))?;
        Ok(())
    }

    async fn callee_in_room(
        &self,
        call: &CallRequest,
        room: &str,
        identity: &str,
    ) -> Result<bool, PlaceError> {
        let participants = self
            .rooms
            .list_participants(room)
            .await
            .map_err(|err| api_failure(call, "list the room's participants", &err))?;
        Ok(participants.iter().any(|p| p.identity == identity))
    }

    /// The outcome of a dial LiveKit refused or the network answered.
    fn dial_failure(&self, call: &CallRequest, err: &ServiceError) -> PlaceError {
        let Some(sip) = SipCallError::from_error(err) else {
            return api_failure(call, "dial the customer", err);
        };
        let code = sip.sip_status_code().and_then(|c| u32::try_from(c).ok());
        let status = redact(sip.sip_status().unwrap_or_default(), &call.phone_e164);
        let outcome = outcome_of_sip(code, &status);
        if let SipOutcome::TrunkFailure(reason) = &outcome {
            tracing::error!(
                reminder_id = call.reminder_id,
                attempt_id = call.attempt_id,
                sip_trunk_id = %self.config.sip_trunk_id,
                sip_status_code = code,
                sip_status = %status,
                reason = %reason,
                "LiveKit SIP trunk failure: outbound calls are failing"
            );
        } else {
            tracing::info!(
                reminder_id = call.reminder_id,
                attempt_id = call.attempt_id,
                sip_status_code = code,
                sip_status = %status,
                ?outcome,
                "the dial did not connect"
            );
        }
        outcome.into()
    }

    /// Hangs up whatever runs in the room and frees the agent.
    async fn hang_up(&self, call: &CallRequest, room: &str) {
        match self.rooms.delete_room(room).await {
            Ok(()) => {}
            Err(ServiceError::Twirp(ServerError::Twirp(code)))
                if code.code == ServerErrorCode::NOT_FOUND => {}
            Err(err) => tracing::warn!(
                attempt_id = call.attempt_id,
                room,
                error = %describe(&err, &call.phone_e164),
                "the failed call's room could not be deleted; it closes on its empty timeout"
            ),
        }
    }
}

#[async_trait::async_trait]
impl CallProvider for LiveKit {
    fn name(&self) -> &'static str {
        "livekit"
    }

    #[tracing::instrument(
        skip_all,
        fields(reminder_id = call.reminder_id, attempt_id = call.attempt_id)
    )]
    async fn place(&self, call: &CallRequest) -> Result<Placed, PlaceError> {
        let room = room_name(call.attempt_id);
        let options = CreateRoomOptions {
            empty_timeout: seconds(self.config.ringing_timeout + EMPTY_ROOM_MARGIN),
            max_participants: MAX_PARTICIPANTS,
            ..CreateRoomOptions::default()
        };
        self.rooms
            .create_room(&room, options)
            .await
            .map_err(|err| api_failure(call, "create the call's room", &err))?;
        match self.connect(call, &room).await {
            Ok(()) => {
                tracing::info!(room = %room, "call answered");
                Ok(Placed { reference: room })
            }
            Err(failure) => {
                // The attempt is reported as not placed, so nothing may go on under it.
                self.hang_up(call, &room).await;
                Err(failure)
            }
        }
    }
}

/// What a failed dial means for the reminder, from its SIP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipOutcome {
    Busy,
    NoAnswer,
    /// The number cannot be reached; never retried.
    BadNumber(String),
    /// The trunk or the carrier account refused the call: every call fails until someone acts.
    TrunkFailure(String),
    /// Any other SIP failure.
    Failed(String),
}

impl From<SipOutcome> for PlaceError {
    fn from(outcome: SipOutcome) -> Self {
        match outcome {
            SipOutcome::Busy => PlaceError::Busy,
            SipOutcome::NoAnswer => PlaceError::NoAnswer,
            SipOutcome::BadNumber(reason) => PlaceError::BadNumber(reason),
            SipOutcome::TrunkFailure(reason) | SipOutcome::Failed(reason) => PlaceError::Failed {
                reason,
                retry: true,
            },
        }
    }
}

/// Maps a failed dial's SIP status to an outcome. `code` is the SIP final response
/// (`sip_status_code`); `status` is its reason phrase, or a LiveKit name for the failure
/// (`USER_REJECTED`, `USER_UNAVAILABLE`, `SIP_TRUNK_FAILURE`, the disconnect reasons LiveKit
/// gives a SIP participant), consulted when the code alone does not decide.
///
/// | SIP | outcome |
/// |---|---|
/// | 486, 600, 603, `USER_REJECTED` | busy |
/// | 480, 408 (LiveKit's ringing timeout), 487, `USER_UNAVAILABLE` | no answer |
/// | 404, 484, 604 | bad number, not retried |
/// | 401, 402, 403, 407, 5xx, `SIP_TRUNK_FAILURE` | trunk failure: alert, retried |
/// | anything else | failed, retried |
pub fn outcome_of_sip(code: Option<u32>, status: &str) -> SipOutcome {
    let status = status.trim();
    let label = match (code, status) {
        (Some(code), "") => code.to_string(),
        (Some(code), status) => format!("{code} {status}"),
        (None, "") => "no SIP status".to_owned(),
        (None, status) => status.to_owned(),
    };
    let named = |name: &str| status.eq_ignore_ascii_case(name);
    match code {
        Some(486 | 600 | 603) => SipOutcome::Busy,
        Some(408 | 480 | 487) => SipOutcome::NoAnswer,
        Some(404 | 484 | 604) => SipOutcome::BadNumber(label),
        Some(401 | 402 | 403 | 407 | 500..=599) => SipOutcome::TrunkFailure(trunk_failure(&label)),
        _ if named("USER_REJECTED") => SipOutcome::Busy,
        _ if named("USER_UNAVAILABLE") => SipOutcome::NoAnswer,
        _ if named("SIP_TRUNK_FAILURE") => SipOutcome::TrunkFailure(trunk_failure(&label)),
        _ => SipOutcome::Failed(format!("The call failed ({label}).")),
    }
}

fn trunk_failure(label: &str) -> String {
    format!(
        "SIP trunk failure ({label}): the outbound trunk or the carrier account refused the call."
    )
}

/// A failed room or dispatch request (or a dial that failed without a SIP status).
fn api_failure(call: &CallRequest, step: &str, err: &ServiceError) -> PlaceError {
    let detail = describe(err, &call.phone_e164);
    if refused_credentials(err) {
        tracing::error!(
            reminder_id = call.reminder_id,
            attempt_id = call.attempt_id,
            error = %detail,
            "LiveKit refused Duecall's API key or its grants: no call can be placed"
        );
        return PlaceError::Failed {
            reason: format!("LiveKit refused the API key trying to {step}: {detail}"),
            retry: true,
        };
    }
    tracing::warn!(
        reminder_id = call.reminder_id,
        attempt_id = call.attempt_id,
        error = %detail,
        "a LiveKit request failed: could not {step}"
    );
    PlaceError::Failed {
        reason: format!("Could not {step} at LiveKit: {detail}"),
        retry: true,
    }
}

fn refused_credentials(err: &ServiceError) -> bool {
    match err {
        ServiceError::AccessToken(_) => true,
        ServiceError::Twirp(ServerError::Twirp(code)) => {
            code.code == ServerErrorCode::UNAUTHENTICATED
                || code.code == ServerErrorCode::PERMISSION_DENIED
        }
        _ => false,
    }
}

/// An error for people and logs, without the phone number.
fn describe(err: &ServiceError, phone: &str) -> String {
    let text = match err {
        ServiceError::Twirp(ServerError::Twirp(code)) => format!("{} ({})", code.msg, code.code),
        ServiceError::Twirp(ServerError::Request(err)) => err.to_string(),
        other => other.to_string(),
    };
    redact(&text, phone)
}

/// `text` with the phone number (with or without its `+`) masked to its last digits.
fn redact(text: &str, phone: &str) -> String {
    let digits = phone.trim_start_matches('+');
    if digits.chars().count() < 5 {
        return text.to_owned();
    }
    let tail: String = digits.chars().skip(digits.chars().count() - 3).collect();
    let masked = format!("…{tail}");
    text.replace(phone, &masked).replace(digits, &masked)
}

fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> SipOutcome {
        SipOutcome::Busy
    }

    #[test]
    fn busy_rows() {
        assert_eq!(outcome_of_sip(Some(486), "Busy Here"), busy());
        assert_eq!(outcome_of_sip(Some(600), "Busy Everywhere"), busy());
        assert_eq!(outcome_of_sip(Some(603), "Decline"), busy());
        assert_eq!(outcome_of_sip(None, "USER_REJECTED"), busy());
        assert_eq!(outcome_of_sip(None, "user_rejected"), busy());
        assert_eq!(PlaceError::from(busy()), PlaceError::Busy);
    }

    #[test]
    fn no_answer_rows() {
        assert_eq!(
            outcome_of_sip(Some(480), "Temporarily Unavailable"),
            SipOutcome::NoAnswer
        );
        // LiveKit's answer when the ringing timeout passes.
        assert_eq!(
            outcome_of_sip(Some(408), "Request Timeout"),
            SipOutcome::NoAnswer
        );
        assert_eq!(
            outcome_of_sip(Some(487), "Request Terminated"),
            SipOutcome::NoAnswer
        );
        assert_eq!(
            outcome_of_sip(None, "USER_UNAVAILABLE"),
            SipOutcome::NoAnswer
        );
        assert_eq!(PlaceError::from(SipOutcome::NoAnswer), PlaceError::NoAnswer);
    }

    #[test]
    fn bad_number_rows_are_never_retried() {
        for (code, status) in [
            (404, "Not Found"),
            (484, "Address Incomplete"),
            (604, "Does Not Exist Anywhere"),
        ] {
            let outcome = outcome_of_sip(Some(code), status);
            assert_eq!(outcome, SipOutcome::BadNumber(format!("{code} {status}")));
            assert_eq!(
                PlaceError::from(outcome),
                PlaceError::BadNumber(format!("{code} {status}"))
            );
        }
    }

    #[test]
    fn trunk_failure_rows_are_retried_and_name_the_trunk() {
        for (code, status) in [
            (401, "Unauthorized"),
            (402, "Payment Required"),
            (403, "Forbidden"),
            (407, "Proxy Authentication Required"),
            (500, "Server Internal Error"),
            (503, "Service Unavailable"),
            (599, ""),
        ] {
            let label = if status.is_empty() {
                code.to_string()
            } else {
                format!("{code} {status}")
            };
            let reason = format!(
                "SIP trunk failure ({label}): the outbound trunk or the carrier account \
                 refused the call."
            );
            let outcome = outcome_of_sip(Some(code), status);
            assert_eq!(outcome, SipOutcome::TrunkFailure(reason.clone()), "{code}");
            assert_eq!(
                PlaceError::from(outcome),
                PlaceError::Failed {
                    reason,
                    retry: true
                }
            );
        }
        assert_eq!(
            outcome_of_sip(None, "SIP_TRUNK_FAILURE"),
            SipOutcome::TrunkFailure(
                "SIP trunk failure (SIP_TRUNK_FAILURE): the outbound trunk or the carrier account \
                 refused the call."
                    .into()
            )
        );
    }

    #[test]
    fn the_code_decides_before_the_name() {
        assert_eq!(
            outcome_of_sip(Some(486), "USER_UNAVAILABLE"),
            SipOutcome::Busy
        );
        assert_eq!(outcome_of_sip(Some(488), "USER_REJECTED"), SipOutcome::Busy);
    }

    #[test]
    fn anything_else_fails_and_is_retried() {
        let outcome = outcome_of_sip(Some(488), "Not Acceptable Here");
        assert_eq!(
            outcome,
            SipOutcome::Failed("The call failed (488 Not Acceptable Here).".into())
        );
        assert_eq!(
            PlaceError::from(outcome),
            PlaceError::Failed {
                reason: "The call failed (488 Not Acceptable Here).".into(),
                retry: true
            }
        );
        assert_eq!(
            outcome_of_sip(None, ""),
            SipOutcome::Failed("The call failed (no SIP status).".into())
        );
    }

    #[test]
    fn phone_numbers_are_masked() {
        assert_eq!(
            redact("cannot dial +442079460001 (442079460001)", "+442079460001"),
            "cannot dial …001 (…001)"
        );
        assert_eq!(
            redact("nothing to hide", "+442079460001"),
            "nothing to hide"
        );
    }

    #[test]
    fn rooms_and_identities_are_keyed_on_the_attempt() {
        assert_eq!(room_name(17), "duecall-attempt-17");
        assert_eq!(callee_identity(17), "debtor-17");
    }
}
