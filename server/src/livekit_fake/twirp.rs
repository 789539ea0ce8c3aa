//! The wire: Twirp routing, body decoding and encoding (protobuf or JSON), authentication and
//! grant checks, and Twirp errors as LiveKit writes them (`{"code","msg","meta"}` with the HTTP
//! status Twirp assigns to each code).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use livekit_protocol as proto;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FakeBody, FakeLiveKit, FakeRequest, Grants};

/// A Twirp error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwirpCode {
    Canceled,
    Unknown,
    InvalidArgument,
    Malformed,
    DeadlineExceeded,
    NotFound,
    BadRoute,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
}

impl TwirpCode {
    /// The code as written in the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
            Self::InvalidArgument => "invalid_argument",
            Self::Malformed => "malformed",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::NotFound => "not_found",
            Self::BadRoute => "bad_route",
            Self::AlreadyExists => "already_exists",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::ResourceExhausted => "resource_exhausted",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::OutOfRange => "out_of_range",
            Self::Unimplemented => "unimplemented",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::DataLoss => "dataloss",
        }
    }

    /// The HTTP status the Twirp specification gives the code.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Canceled | Self::DeadlineExceeded => StatusCode::REQUEST_TIMEOUT,
            Self::Unknown | Self::Internal | Self::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidArgument | Self::Malformed | Self::OutOfRange => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::BadRoute => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => StatusCode::CONFLICT,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Self::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status code behind it (carried in `error_details`).
    fn grpc(self) -> i32 {
        match self {
            Self::Canceled => 1,
            Self::Unknown | Self::BadRoute => 2,
            Self::InvalidArgument | Self::Malformed => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::AlreadyExists => 6,
            Self::PermissionDenied => 7,
            Self::ResourceExhausted => 8,
            Self::FailedPrecondition => 9,
            Self::Aborted => 10,
            Self::OutOfRange => 11,
            Self::Unimplemented => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::DataLoss => 15,
            Self::Unauthenticated => 16,
        }
    }
}

/// A Twirp error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TwirpError {
    code: TwirpCode,
    msg: String,
    meta: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    msg: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    meta: &'a BTreeMap<String, String>,
}

impl TwirpError {
    pub fn new(code: TwirpCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            meta: BTreeMap::new(),
        }
    }

    fn unauthenticated(msg: impl Into<String>) -> Self {
        Self::new(TwirpCode::Unauthenticated, msg)
    }
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.as_str(),
            msg: &self.msg,
            meta: &self.meta,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        (
            self.code.http_status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response()
    }
}

/// `google.rpc.Status`, the envelope of gRPC error details.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// The Twirp code LiveKit gives a failed call's SIP status (`sipCodeToGRPCCode` in
/// livekit/protocol `livekit/sip.go`, through `xtwirp.ErrorCodeFromGRPC`).
fn code_of_sip(status: u32) -> TwirpCode {
    use TwirpCode::*;
    match status {
        301 | 302 | 404 | 410 | 481 | 604 => NotFound,
        401 | 402 | 403 | 433 | 470 | 603 | 607 | 608 => PermissionDenied,
        407 | 428 | 436 | 437 | 438 | 494 => Unauthenticated,
        408 | 504 => DeadlineExceeded,
        409 | 412 | 482 | 483 => FailedPrecondition,
        416 => OutOfRange,
        440 | 480 | 486 | 600 => ResourceExhausted,
        487 | 491 => Aborted,
        505 | 513 => InvalidArgument,
        // The rest of 3xx, 4xx and 6xx are the caller's to fix; a 5xx is the far end's.
        300..=499 | 600..=699 => InvalidArgument,
        500..=599 => FailedPrecondition,
        _ => Unknown,
    }
}

/// The error LiveKit answers when the far end ended the INVITE with `status` (see
/// `SIPStatus.GRPCStatus` and `SIPStatus.TwirpErrorMeta` in livekit/protocol, and
/// `xtwirp.WithDetailsFromStatus` for `error_details`).
pub(super) fn sip_status_error(status: u32, reason: &str) -> TwirpError {
    let code = code_of_sip(status);
    let status_code = i32::try_from(status).unwrap_or(i32::MAX);
    let name = proto::SipStatusCode::try_from(status_code)
        .map(|c| c.as_str_name().to_owned())
        .unwrap_or_else(|_| status.to_string());
    let short = name.trim_start_matches("SIP_STATUS_").to_owned();
    let message = if reason.is_empty() {
        format!("sip status {status}: {short}")
    } else {
        format!("sip status {status}: {reason}")
    };
    let detail = proto::SipStatus {
        code: status_code,
        status: reason.to_owned(),
    };
    let details = RpcStatus {
        code: code.grpc(),
        message: message.clone(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/livekit.SIPStatus".into(),
            value: detail.encode_to_vec(),
        }],
    };
    let mut error = TwirpError::new(code, message);
    error
        .meta
        .insert("sip_status_code".into(), status.to_string());
    error.meta.insert(
        "sip_status".into(),
        if reason.is_empty() {
            name
        } else {
            reason.to_owned()
        },
    );
    error.meta.insert(
        "error_details".into(),
        base64::engine::general_purpose::STANDARD.encode(details.encode_to_vec()),
    );
    error
}

/// How a request body is encoded; the answer uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Protobuf,
    Json,
}

fn wire(headers: &HeaderMap) -> Result<Wire, TwirpError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "application/protobuf" => Ok(Wire::Protobuf),
        "application/json" => Ok(Wire::Json),
        _ => Err(TwirpError::new(
            TwirpCode::BadRoute,
            format!("unexpected Content-Type: {content_type:?}"),
        )),
    }
}

fn decode_as<M: Message + Default + DeserializeOwned>(
    wire: Wire,
    body: &[u8],
) -> Result<M, TwirpError> {
    match wire {
        Wire::Protobuf => M::decode(body).map_err(|_| {
            TwirpError::new(TwirpCode::Malformed, "failed to unmarshal the request body")
        }),
        Wire::Json => serde_json::from_slice(body).map_err(|_| {
            TwirpError::new(TwirpCode::Malformed, "failed to unmarshal the request body")
        }),
    }
}

fn decode(method: &str, wire: Wire, body: &[u8]) -> Result<FakeBody, TwirpError> {
    Ok(match method {
        "RoomService/CreateRoom" => FakeBody::CreateRoom(Box::new(decode_as(wire, body)?)),
        "RoomService/DeleteRoom" => FakeBody::DeleteRoom(decode_as(wire, body)?),
        "RoomService/ListRooms" => FakeBody::ListRooms(decode_as(wire, body)?),
        "RoomService/ListParticipants" => FakeBody::ListParticipants(decode_as(wire, body)?),
        "RoomService/GetParticipant" => FakeBody::GetParticipant(decode_as(wire, body)?),
        "AgentDispatchService/CreateDispatch" => FakeBody::CreateDispatch(decode_as(wire, body)?),
        "AgentDispatchService/ListDispatch" => FakeBody::ListDispatch(decode_as(wire, body)?),
        "AgentDispatchService/DeleteDispatch" => FakeBody::DeleteDispatch(decode_as(wire, body)?),
        "SIP/CreateSIPParticipant" => {
            FakeBody::CreateSipParticipant(Box::new(decode_as(wire, body)?))
        }
        _ => {
            return Err(TwirpError::new(
                TwirpCode::BadRoute,
                format!("no handler for path \"/twirp/livekit.{method}\""),
            ));
        }
    })
}

fn encode<M: Message + Serialize>(wire: Wire, message: &M) -> Response {
    match wire {
        Wire::Protobuf => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/protobuf"),
            )],
            message.encode_to_vec(),
        )
            .into_response(),
        Wire::Json => match serde_json::to_vec(message) {
            Ok(json) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response(),
            Err(err) => TwirpError::new(TwirpCode::Internal, format!("failed to marshal: {err}"))
                .into_response(),
        },
    }
}

/// What the `Authorization` header proves: `Ok(None)` without one (LiveKit lets the request on
/// to the grant checks, which refuse it), the grants of a verified token, or a refusal.
fn authenticate(fake: &FakeLiveKit, headers: &HeaderMap) -> Result<Option<Grants>, TwirpError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            TwirpError::unauthenticated("invalid authorization header. Must start with Bearer ")
        })?;
    fake.verify(token)
        .map(Some)
        .ok_or_else(|| TwirpError::unauthenticated("invalid token"))
}

/// A grant a method needs.
enum Need<'a> {
    RoomCreate,
    RoomList,
    /// `roomAdmin` for this room.
    RoomAdmin(&'a str),
    SipCall,
}

fn require(grants: Option<&Grants>, need: Need<'_>) -> Result<(), TwirpError> {
    let allowed = grants.is_some_and(|g| match need {
        Need::RoomCreate => g.video.room_create,
        Need::RoomList => g.video.room_list,
        Need::RoomAdmin(room) => g.video.room_admin && g.video.room == room,
        Need::SipCall => g.sip.call,
    });
    if allowed {
        Ok(())
    } else {
        Err(TwirpError::unauthenticated("permissions denied"))
    }
}

/// Serves one decoded request.
fn serve(
    fake: &FakeLiveKit,
    wire: Wire,
    body: &FakeBody,
    grants: Option<&Grants>,
) -> Result<Response, TwirpError> {
    let mut state = fake.lock();
    Ok(match body {
        FakeBody::CreateRoom(req) => {
            require(grants, Need::RoomCreate)?;
            encode(wire, &state.create_room(req)?)
        }
        FakeBody::DeleteRoom(req) => {
            require(grants, Need::RoomCreate)?;
            encode(wire, &state.delete_room(&req.room)?)
        }
        FakeBody::ListRooms(req) => {
            require(grants, Need::RoomList)?;
            encode(wire, &state.list_rooms(&req.names))
        }
        FakeBody::ListParticipants(req) => {
            require(grants, Need::RoomAdmin(&req.room))?;
            encode(wire, &state.list_participants(&req.room))
        }
        FakeBody::GetParticipant(req) => {
            require(grants, Need::RoomAdmin(&req.room))?;
            encode(wire, &state.get_participant(&req.room, &req.identity)?)
        }
        FakeBody::CreateDispatch(req) => {
            require(grants, Need::RoomAdmin(&req.room))?;
            encode(wire, &state.create_dispatch(req)?)
        }
        FakeBody::ListDispatch(req) => {
            require(grants, Need::RoomAdmin(&req.room))?;
            encode(wire, &state.list_dispatch(req)?)
        }
        FakeBody::DeleteDispatch(req) => {
            require(grants, Need::RoomAdmin(&req.room))?;
            encode(wire, &state.delete_dispatch(req)?)
        }
        FakeBody::CreateSipParticipant(req) => {
            require(grants, Need::SipCall)?;
            encode(wire, &state.create_sip_participant(req)?)
        }
        FakeBody::Raw(_) => {
            return Err(TwirpError::new(
                TwirpCode::Internal,
                "an undecoded body reached the handler",
            ));
        }
    })
}

/// `POST /twirp/livekit.<Service>/<Method>`. Checks run in LiveKit's order: the token (its
/// middleware runs before routing), the route and content type, the body, then the grants.
pub(super) async fn handle(
    State(fake): State<FakeLiveKit>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = path.strip_prefix("livekit.").unwrap_or(&path).to_owned();
    let token = authenticate(&fake, &headers);
    let decoded = wire(&headers).and_then(|w| decode(&method, w, &body).map(|b| (w, b)));
    let grants = token.clone().ok().flatten();
    let response = match (token, &decoded) {
        (Err(refused), _) => refused.into_response(),
        (Ok(_), Err(error)) => error.clone().into_response(),
        (Ok(grants), Ok((wire, body))) => {
            serve(&fake, *wire, body, grants.as_ref()).unwrap_or_else(IntoResponse::into_response)
        }
    };
    let recorded = FakeRequest {
        method,
        body: decoded.map_or_else(|_| FakeBody::Raw(body.to_vec()), |(_, b)| b),
        grants,
        status: response.status().as_u16(),
    };
    fake.lock().requests.push(recorded);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_statuses_get_livekits_twirp_codes() {
        assert_eq!(code_of_sip(486), TwirpCode::ResourceExhausted);
        assert_eq!(code_of_sip(600), TwirpCode::ResourceExhausted);
        assert_eq!(code_of_sip(603), TwirpCode::PermissionDenied);
        assert_eq!(code_of_sip(408), TwirpCode::DeadlineExceeded);
        assert_eq!(code_of_sip(480), TwirpCode::ResourceExhausted);
        assert_eq!(code_of_sip(487), TwirpCode::Aborted);
        assert_eq!(code_of_sip(404), TwirpCode::NotFound);
        assert_eq!(code_of_sip(484), TwirpCode::InvalidArgument);
        assert_eq!(code_of_sip(604), TwirpCode::NotFound);
        assert_eq!(code_of_sip(407), TwirpCode::Unauthenticated);
        assert_eq!(code_of_sip(503), TwirpCode::FailedPrecondition);
        assert_eq!(code_of_sip(504), TwirpCode::DeadlineExceeded);
        assert_eq!(code_of_sip(599), TwirpCode::FailedPrecondition);
    }

    #[test]
    fn a_sip_error_carries_the_status_in_meta_and_details() {
        let error = sip_status_error(486, "Busy Here");
        assert_eq!(error.code, TwirpCode::ResourceExhausted);
        assert_eq!(error.msg, "sip status 486: Busy Here");
        assert_eq!(error.meta["sip_status_code"], "486");
        assert_eq!(error.meta["sip_status"], "Busy Here");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&error.meta["error_details"])
            .unwrap();
        let status = RpcStatus::decode(raw.as_slice()).unwrap();
        assert_eq!(status.code, 8);
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/livekit.SIPStatus"
        );
        let detail = proto::SipStatus::decode(status.details[0].value.as_slice()).unwrap();
        assert_eq!(detail.code, 486);
        assert_eq!(detail.status, "Busy Here");

        let unnamed = sip_status_error(486, "");
        assert_eq!(unnamed.msg, "sip status 486: BUSY_HERE");
        assert_eq!(unnamed.meta["sip_status"], "SIP_STATUS_BUSY_HERE");
    }
}
