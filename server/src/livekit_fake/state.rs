//! The fake's memory: rooms with their participants and agent dispatches, the dial scripts, the
//! registered agents and the requests received. Everything here is synchronous; the handler
//! locks, works and unlocks without awaiting in between.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use livekit_protocol as proto;
use proto::participant_info::{Kind, State as ParticipantState};

use super::twirp::{TwirpCode, TwirpError, sip_status_error};
use super::{FakeRequest, SipScript};

/// What LiveKit gives a room created without an empty timeout (seconds).
const DEFAULT_EMPTY_TIMEOUT: u32 = 300;
/// What LiveKit gives a room created without a departure timeout (seconds).
const DEFAULT_DEPARTURE_TIMEOUT: u32 = 20;

#[derive(Debug, Default)]
pub(super) struct State {
    pub rooms: BTreeMap<String, RoomState>,
    pub scripts: HashMap<String, SipScript>,
    pub agents: HashSet<String>,
    pub requests: Vec<FakeRequest>,
    last_id: u64,
}

#[derive(Debug, Clone)]
pub(super) struct RoomState {
    room: proto::Room,
    pub participants: Vec<proto::ParticipantInfo>,
    pub dispatches: Vec<proto::AgentDispatch>,
}

impl RoomState {
    /// The room as the API shows it now.
    pub fn snapshot(&self) -> proto::Room {
        proto::Room {
            num_participants: u32::try_from(self.participants.len()).unwrap_or(u32::MAX),
            ..self.room.clone()
        }
    }
}

fn now() -> (i64, i64) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    (ms / 1000, ms)
}

impl State {
    /// A LiveKit-looking id (`RM_…`, `PA_…`, `AD_…`, `AJ_…`, `SCL_…`), unique in this fake.
    fn id(&mut self, prefix: &str) -> String {
        self.last_id += 1;
        format!("{prefix}_fake{:08}", self.last_id)
    }

    pub fn create_room(
        &mut self,
        request: &proto::CreateRoomRequest,
    ) -> Result<proto::Room, TwirpError> {
        if request.name.is_empty() {
            return Err(TwirpError::new(
                TwirpCode::InvalidArgument,
                "room name is required",
            ));
        }
        if let Some(existing) = self.rooms.get(&request.name) {
            return Ok(existing.snapshot());
        }
        self.open_room(request);
        for agent in &request.agents {
            self.dispatch(
                &request.name,
                &agent.agent_name,
                &agent.metadata,
                agent.restart_policy,
            );
        }
        Ok(self.rooms[&request.name].snapshot())
    }

    /// The room named so, created with LiveKit's defaults if missing (auto-create).
    fn room_mut(&mut self, name: &str) -> &mut RoomState {
        if !self.rooms.contains_key(name) {
            self.open_room(&proto::CreateRoomRequest {
                name: name.to_owned(),
                ..proto::CreateRoomRequest::default()
            });
        }
        self.rooms.get_mut(name).expect("the room was just opened")
    }

    fn open_room(&mut self, request: &proto::CreateRoomRequest) {
        let sid = self.id("RM");
        let (seconds, millis) = now();
        let or = |value: u32, default: u32| if value == 0 { default } else { value };
        let room = proto::Room {
            sid,
            name: request.name.clone(),
            empty_timeout: or(request.empty_timeout, DEFAULT_EMPTY_TIMEOUT),
            departure_timeout: or(request.departure_timeout, DEFAULT_DEPARTURE_TIMEOUT),
            max_participants: request.max_participants,
            creation_time: seconds,
            creation_time_ms: millis,
            metadata: request.metadata.clone(),
            ..proto::Room::default()
        };
        self.rooms.insert(
            request.name.clone(),
            RoomState {
                room,
                participants: Vec::new(),
                dispatches: Vec::new(),
            },
        );
    }

    pub fn delete_room(&mut self, name: &str) -> Result<proto::DeleteRoomResponse, TwirpError> {
        match self.rooms.remove(name) {
            Some(_) => Ok(proto::DeleteRoomResponse::default()),
            None => Err(TwirpError::new(TwirpCode::NotFound, "room not found")),
        }
    }

    pub fn list_rooms(&self, names: &[String]) -> proto::ListRoomsResponse {
        proto::ListRoomsResponse {
            rooms: self
                .rooms
                .values()
                .filter(|r| names.is_empty() || names.contains(&r.room.name))
                .map(RoomState::snapshot)
                .collect(),
        }
    }

    pub fn list_participants(&self, room: &str) -> proto::ListParticipantsResponse {
        proto::ListParticipantsResponse {
            participants: self
                .rooms
                .get(room)
                .map(|r| r.participants.clone())
                .unwrap_or_default(),
        }
    }

    pub fn get_participant(
        &self,
        room: &str,
        identity: &str,
    ) -> Result<proto::ParticipantInfo, TwirpError> {
        self.rooms
            .get(room)
            .and_then(|r| r.participants.iter().find(|p| p.identity == identity))
            .cloned()
            .ok_or_else(|| TwirpError::new(TwirpCode::NotFound, "participant not found"))
    }

    pub fn create_dispatch(
        &mut self,
        request: &proto::CreateAgentDispatchRequest,
    ) -> Result<proto::AgentDispatch, TwirpError> {
        if request.room.is_empty() {
            return Err(TwirpError::new(
                TwirpCode::InvalidArgument,
                "room name is required",
            ));
        }
        Ok(self.dispatch(
            &request.room,
            &request.agent_name,
            &request.metadata,
            request.restart_policy,
        ))
    }

    fn dispatch(
        &mut self,
        room: &str,
        agent_name: &str,
        metadata: &str,
        restart_policy: i32,
    ) -> proto::AgentDispatch {
        let id = self.id("AD");
        let (seconds, millis) = now();
        let joins = self.agents.contains(agent_name);
        let job_id = joins.then(|| self.id("AJ"));
        let participant_sid = joins.then(|| self.id("PA"));
        let state = self.room_mut(room);
        let mut jobs = Vec::new();
        if let (Some(job_id), Some(sid)) = (job_id, participant_sid) {
            let identity = format!("agent-{job_id}");
            state.participants.push(proto::ParticipantInfo {
                sid,
                identity: identity.clone(),
                name: agent_name.to_owned(),
                state: ParticipantState::Active as i32,
                kind: Kind::Agent as i32,
                joined_at: seconds,
                joined_at_ms: millis,
                ..proto::ParticipantInfo::default()
            });
            jobs.push(proto::Job {
                id: job_id,
                dispatch_id: id.clone(),
                r#type: proto::JobType::JtRoom as i32,
                room: Some(state.snapshot()),
                metadata: metadata.to_owned(),
                agent_name: agent_name.to_owned(),
                state: Some(proto::JobState {
                    status: proto::JobStatus::JsRunning as i32,
                    started_at: millis,
                    updated_at: millis,
                    participant_identity: identity,
                    ..proto::JobState::default()
                }),
                ..proto::Job::default()
            });
        }
        let dispatch = proto::AgentDispatch {
            id,
            agent_name: agent_name.to_owned(),
            room: room.to_owned(),
            metadata: metadata.to_owned(),
            state: Some(proto::AgentDispatchState {
                jobs,
                created_at: millis,
                deleted_at: 0,
            }),
            restart_policy,
            ..proto::AgentDispatch::default()
        };
        state.dispatches.push(dispatch.clone());
        dispatch
    }

    pub fn list_dispatch(
        &self,
        request: &proto::ListAgentDispatchRequest,
    ) -> Result<proto::ListAgentDispatchResponse, TwirpError> {
        let room = self
            .rooms
            .get(&request.room)
            .ok_or_else(|| TwirpError::new(TwirpCode::Unavailable, "no response from servers"))?;
        Ok(proto::ListAgentDispatchResponse {
            agent_dispatches: room
                .dispatches
                .iter()
                .filter(|d| request.dispatch_id.is_empty() || d.id == request.dispatch_id)
                .cloned()
                .collect(),
        })
    }

    pub fn delete_dispatch(
        &mut self,
        request: &proto::DeleteAgentDispatchRequest,
    ) -> Result<proto::AgentDispatch, TwirpError> {
        let room = self
            .rooms
            .get_mut(&request.room)
            .ok_or_else(|| TwirpError::new(TwirpCode::Unavailable, "no response from servers"))?;
        let at = room
            .dispatches
            .iter()
            .position(|d| d.id == request.dispatch_id)
            .ok_or_else(|| TwirpError::new(TwirpCode::NotFound, "dispatch not found"))?;
        let mut dispatch = room.dispatches.remove(at);
        let (_, millis) = now();
        if let Some(state) = dispatch.state.as_mut() {
            state.deleted_at = millis;
        }
        Ok(dispatch)
    }

    pub fn create_sip_participant(
        &mut self,
        request: &proto::CreateSipParticipantRequest,
    ) -> Result<proto::SipParticipantInfo, TwirpError> {
        if request.sip_trunk_id.is_empty() && request.trunk.is_none() {
            return Err(TwirpError::new(
                TwirpCode::InvalidArgument,
                "missing sip trunk id",
            ));
        }
        if request.sip_call_to.is_empty() {
            return Err(TwirpError::new(
                TwirpCode::InvalidArgument,
                "missing sip callee number",
            ));
        }
        if request.room_name.is_empty() {
            return Err(TwirpError::new(
                TwirpCode::InvalidArgument,
                "missing room name",
            ));
        }
        let script = self
            .scripts
            .get(&request.sip_call_to)
            .copied()
            .unwrap_or(SipScript::Answer);
        match script {
            SipScript::Answer => Ok(self.answer(request)),
            SipScript::Status(code, reason) => Err(sip_status_error(code, reason)),
            SipScript::Fail(code, message) => Err(TwirpError::new(code, message)),
        }
    }

    /// The callee picked up: the SIP participant joins the room.
    fn answer(
        &mut self,
        request: &proto::CreateSipParticipantRequest,
    ) -> proto::SipParticipantInfo {
        let sid = self.id("PA");
        let call_id = self.id("SCL");
        let (seconds, millis) = now();
        let identity = if request.participant_identity.is_empty() {
            format!("sip_{}", request.sip_call_to)
        } else {
            request.participant_identity.clone()
        };
        let mut attributes = request.participant_attributes.clone();
        attributes.insert("sip.callID".into(), call_id.clone());
        attributes.insert("sip.callStatus".into(), "active".into());
        attributes.insert("sip.trunkID".into(), request.sip_trunk_id.clone());
        if !request.hide_phone_number {
            attributes.insert("sip.phoneNumber".into(), request.sip_call_to.clone());
        }
        let participant = proto::ParticipantInfo {
            sid: sid.clone(),
            identity: identity.clone(),
            name: request.participant_name.clone(),
            metadata: request.participant_metadata.clone(),
            state: ParticipantState::Active as i32,
            kind: Kind::Sip as i32,
            attributes,
            joined_at: seconds,
            joined_at_ms: millis,
            ..proto::ParticipantInfo::default()
        };
        let room = self.room_mut(&request.room_name);
        // A second participant with the same identity replaces the first, as in LiveKit.
        room.participants.retain(|p| p.identity != identity);
        room.participants.push(participant);
        proto::SipParticipantInfo {
            participant_id: sid,
            participant_identity: identity,
            room_name: request.room_name.clone(),
            sip_call_id: call_id,
        }
    }
}
