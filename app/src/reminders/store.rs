//! Reminders in the database. Every change of status goes through the state machine
//! ([`super::machine`]) on the stored row: [`advance`] decides it in memory, and [`Pending`]
//! writes the rows and their history events in the caller's transaction, one statement per
//! table for any number of reminders ([`transition`] is one such change). That is the only
//! writer of `reminders.status`, apart from [`claim`], which moves a batch from pending to in
//! progress in one statement (and records each claim the same way).

use chrono::{DateTime, Duration, Utc};

use super::machine::{Change, Refused, Reminder, Status, Transition};
use super::rules::{Attempt, WEEK};
use crate::db::time::{from_millis, to_millis};
use crate::db::{Conn, Dialect, Script};

/// The kind of a reminder a call's outcome asked for (the sequence's are `step`).
pub const FOLLOW_UP: &str = "follow_up";

/// Who or what moves a reminder, as recorded in its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A scheduler instance (its name).
    Scheduler(String),
    /// A person, by user id.
    User(i64),
    /// The reminder generator (invoice or profile changes).
    Generator,
    /// A call-status report.
    Webhook,
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Self::Scheduler(name) => format!("scheduler:{name}"),
            Self::User(id) => format!("user:{id}"),
            Self::Generator => "generator".to_owned(),
            Self::Webhook => "webhook".to_owned(),
        }
    }
}

/// A stored reminder.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct Row {
    pub id: i64,
    pub org_id: i64,
    pub invoice_id: i64,
    pub customer_id: i64,
    pub step_offset_days: i64,
    pub step_date: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub dialled: i64,
    pub due_at: i64,
    pub claimed_by: String,
    pub lease_until: Option<i64>,
    pub last_reason: String,
    /// `step` (of the sequence) or `follow_up` (asked for by a call's outcome).
    pub kind: String,
}

pub const COLUMNS: &str = "id, org_id, invoice_id, customer_id, step_offset_days, step_date, \
     status, attempts, max_attempts, dialled, due_at, claimed_by, lease_until, last_reason, kind";

impl Row {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Cancelled)
    }

    pub fn due_at(&self) -> DateTime<Utc> {
        from_millis(self.due_at)
    }

    pub fn is_follow_up(&self) -> bool {
        self.kind == FOLLOW_UP
    }

    /// The state machine's view of the row, with the invoice's recent calls.
    fn machine(&self, calls: Vec<Attempt>) -> Reminder {
        Reminder {
            status: self.status(),
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            max_attempts: u32::try_from(self.max_attempts).unwrap_or(0),
            dialled: self.dialled != 0,
            due_at: self.due_at(),
            calls,
        }
    }
}

/// Why a transition was not applied.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such reminder")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The claim is held by another scheduler instance (or was given back).
    #[error("the reminder is not claimed by {0}")]
    NotClaimant(String),
    /// The lease was renewed (or the claim ended) since the monitor looked.
    #[error("the reminder's lease has not expired")]
    NotExpired,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a transition does to the lease columns, besides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Leave them (a status that keeps the claim keeps its holder and deadline).
    Keep,
    /// A new deadline: after a dial or an answer, the agent must report before it.
    Until(DateTime<Utc>),
}

/// A transition of one reminder, checked and recorded.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub org_id: i64,
    pub reminder_id: i64,
    pub transition: Transition,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    /// Refuse unless the claim is held by this scheduler instance.
    pub claimant: Option<&'a str>,
    pub lease: Lease,
    /// The call attempt the transition is about, for the history.
    pub attempt_id: Option<i64>,
    /// Refuse unless the claim's lease ran out before `now` (the monitor's transitions: a
    /// report or a new claim since it looked wins).
    pub require_expired: bool,
}

impl<'a> Request<'a> {
    /// A transition of reminder `reminder_id` by `actor`: no claim required, the lease left
    /// as it is, no attempt named, expired or not.
    pub fn new(
        org_id: i64,
        reminder_id: i64,
        transition: Transition,
        actor: &'a Actor,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            org_id,
            reminder_id,
            transition,
            actor,
            now,
            claimant: None,
            lease: Lease::Keep,
            attempt_id: None,
            require_expired: false,
        }
    }
}

/// Locks the reminder, applies the transition through the state machine and writes the row
/// and its history event, all in `tx`. A refused transition writes nothing.
pub async fn transition(
    tx: &mut Conn,
    request: Request<'_>,
) -> Result<(Row, Change), TransitionError> {
    if !lock(tx, request.org_id, request.reminder_id).await? {
        return Err(TransitionError::NotFound);
    }
    let row: Row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reminders WHERE id = $1 AND org_id = $2"
    ))
    .bind(request.reminder_id)
    .bind(request.org_id)
    .fetch_one(&mut *tx)
    .await?;
    transition_held(tx, row, request).await
}

/// [`transition`] of a reminder whose lock `tx` holds already and whose current row the
/// caller read in `tx` (or got back from the previous transition): no second lock and read.
pub async fn transition_held(
    tx: &mut Conn,
    row: Row,
    request: Request<'_>,
) -> Result<(Row, Change), TransitionError> {
    let calls = if request.transition == Transition::Dial {
        recent_calls(tx, row.invoice_id, request.now).await?
    } else {
        Vec::new()
    };
    let mut pending = Pending::default();
    let done = pending.transition(row, request, calls)?;
    pending.flush(tx).await?;
    Ok(done)
}

/// The row after `request`, decided by the state machine on `row` (with the invoice's recent
/// `calls`, which only a dial consults), and the change to record. Writes nothing.
pub fn advance(
    row: Row,
    request: &Request<'_>,
    calls: Vec<Attempt>,
) -> Result<(Row, Change), TransitionError> {
    if row.id != request.reminder_id || row.org_id != request.org_id {
        return Err(TransitionError::NotFound);
    }
    if let Some(claimant) = request.claimant
        && (row.claimed_by != claimant
            || !matches!(row.status(), Status::InProgress | Status::Processing))
    {
        return Err(TransitionError::NotClaimant(claimant.to_owned()));
    }
    let expired = row
        .lease_until
        .is_some_and(|lease| lease < to_millis(request.now));
    if request.require_expired && !expired {
        return Err(TransitionError::NotExpired);
    }
    let mut machine = row.machine(calls);
    let change = machine.apply(request.transition.clone(), request.now)?;
    let holds_claim = matches!(machine.status, Status::InProgress | Status::Processing);
    let (claimed_by, lease_until) = if holds_claim {
        let lease = match request.lease {
            Lease::Keep => row.lease_until,
            Lease::Until(at) => Some(to_millis(at)),
        };
        (row.claimed_by.clone(), lease)
    } else {
        (String::new(), None)
    };
    let reason = if change.reason.is_empty() {
        row.last_reason.clone()
    } else {
        change.reason.clone()
    };
    let updated = Row {
        status: machine.status.as_str().to_owned(),
        attempts: i64::from(machine.attempts),
        dialled: i64::from(machine.dialled),
        due_at: to_millis(machine.due_at),
        claimed_by,
        lease_until,
        last_reason: reason,
        ..row
    };
    Ok((updated, change))
}

/// Transitions decided in memory and not yet written: each reminder's latest row and every
/// history event, in order. [`Pending::flush`] writes them with one statement per table, however
/// many reminders they touch — how a batch of call reports is stored in a few round trips.
#[derive(Debug, Default)]
pub struct Pending {
    /// Each changed reminder's row after its last transition, and when that was.
    rows: Vec<(Row, i64)>,
    /// Index in `rows` by reminder id.
    at: std::collections::HashMap<i64, usize>,
    events: Vec<HistoryEvent>,
}

/// A history row to append (serialized as the statement's JSON row).
#[derive(Debug, Clone, serde::Serialize)]
struct HistoryEvent {
    org_id: i64,
    reminder_id: i64,
    at: i64,
    transition: &'static str,
    #[serde(rename = "from_status")]
    from: &'static str,
    #[serde(rename = "to_status")]
    to: &'static str,
    reason: String,
    param_at: Option<i64>,
    actor: String,
    attempt_id: Option<i64>,
}

impl HistoryEvent {
    fn new(row: &Row, change: &Change, actor: &Actor, attempt_id: Option<i64>) -> Self {
        Self {
            org_id: row.org_id,
            reminder_id: row.id,
            at: to_millis(change.at),
            transition: change.transition.name(),
            from: change.from.as_str(),
            to: change.to.as_str(),
            reason: change.reason.clone(),
            param_at: param_at(&change.transition).map(to_millis),
            actor: actor.label(),
            attempt_id,
        }
    }
}

impl Pending {
    /// [`advance`], kept to be written by [`Pending::flush`]. A refused transition keeps
    /// nothing.
    pub fn transition(
        &mut self,
        row: Row,
        request: Request<'_>,
        calls: Vec<Attempt>,
    ) -> Result<(Row, Change), TransitionError> {
        let event_row = row.clone();
        let (updated, change) = advance(row, &request, calls)?;
        self.record(&event_row, &change, request.actor, request.attempt_id);
        self.keep(updated.clone(), to_millis(request.now));
        Ok((updated, change))
    }

    /// A history event of a change written otherwise (a claim's).
    pub fn record(&mut self, row: &Row, change: &Change, actor: &Actor, attempt_id: Option<i64>) {
        self.events
            .push(HistoryEvent::new(row, change, actor, attempt_id));
    }

    /// Keeps `row` as its reminder's latest, changed at `updated_at`.
    fn keep(&mut self, row: Row, updated_at: i64) {
        match self.at.get(&row.id) {
            Some(&n) => self.rows[n] = (row, updated_at),
            None => {
                self.at.insert(row.id, self.rows.len());
                self.rows.push((row, updated_at));
            }
        }
    }

    /// Takes in what `other` kept after this one's (as if its transitions came later).
    pub fn absorb(&mut self, other: Pending) {
        for (row, updated_at) in other.rows {
            self.keep(row, updated_at);
        }
        self.events.extend(other.events);
    }

    /// Writes every kept row and event in `tx`, and forgets them.
    pub async fn flush(&mut self, tx: &mut Conn) -> Result<(), sqlx::Error> {
        let mut script = Script::new(Dialect::of(tx));
        self.write_into(&mut script);
        script.run(tx).await
    }

    /// Adds the statements writing every kept row and event to `script`, and forgets them.
    pub fn write_into(&mut self, script: &mut Script) {
        let dialect = script.dialect();
        let rows = std::mem::take(&mut self.rows);
        self.at.clear();
        if !rows.is_empty() {
            let sql = format!(
                "WITH v AS ({}) \
                 UPDATE reminders SET status = v.status, attempts = v.attempts, \
                   dialled = v.dialled, due_at = v.due_at, claimed_by = v.claimed_by, \
                   lease_until = v.lease_until, last_reason = v.last_reason, \
                   updated_at = v.updated_at \
                 FROM v WHERE reminders.id = v.id",
                dialect.json_rows(&[
                    ("id", "BIGINT"),
                    ("status", "TEXT"),
                    ("attempts", "BIGINT"),
                    ("dialled", "BIGINT"),
                    ("due_at", "BIGINT"),
                    ("claimed_by", "TEXT"),
                    ("lease_until", "BIGINT"),
                    ("last_reason", "TEXT"),
                    ("updated_at", "BIGINT"),
                ])
            );
            #[derive(serde::Serialize)]
            struct Written<'a> {
                id: i64,
                status: &'a str,
                attempts: i64,
                dialled: i64,
                due_at: i64,
                claimed_by: &'a str,
                lease_until: Option<i64>,
                last_reason: &'a str,
                updated_at: i64,
            }
            let rows: Vec<Written> = rows
                .iter()
                .map(|(row, updated_at)| Written {
                    id: row.id,
                    status: &row.status,
                    attempts: row.attempts,
                    dialled: row.dialled,
                    due_at: row.due_at,
                    claimed_by: &row.claimed_by,
                    lease_until: row.lease_until,
                    last_reason: &row.last_reason,
                    updated_at: *updated_at,
                })
                .collect();
            script.statement(&sql).json(&rows);
        }
        let events = std::mem::take(&mut self.events);
        if !events.is_empty() {
            let sql = format!(
                "WITH v AS ({}) \
                 INSERT INTO reminder_events \
                   (org_id, reminder_id, at, transition, from_status, to_status, reason, param_at, \
                    actor, attempt_id) \
                 SELECT org_id, reminder_id, at, transition, from_status, to_status, reason, \
                   param_at, actor, attempt_id FROM v",
                dialect.json_rows(&[
                    ("org_id", "BIGINT"),
                    ("reminder_id", "BIGINT"),
                    ("at", "BIGINT"),
                    ("transition", "TEXT"),
                    ("from_status", "TEXT"),
                    ("to_status", "TEXT"),
                    ("reason", "TEXT"),
                    ("param_at", "BIGINT"),
                    ("actor", "TEXT"),
                    ("attempt_id", "BIGINT"),
                ])
            );
            script.statement(&sql).json(&events);
        }
    }
}

/// Takes the reminder's write lock for the rest of `tx` (false when there is no such reminder):
/// the row's lock on PostgreSQL, the database's on SQLite. A transaction that will write a
/// reminder takes it before reading anything, since a read-then-write transaction on SQLite
/// cannot upgrade once another connection has written.
pub async fn lock(tx: &mut Conn, org_id: i64, reminder_id: i64) -> Result<bool, sqlx::Error> {
    let locked =
        sqlx::query("UPDATE reminders SET updated_at = updated_at WHERE id = $1 AND org_id = $2")
            .bind(reminder_id)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
    Ok(locked.rows_affected() > 0)
}

/// The instant a transition carries, stored beside its name so the history replays.
pub fn param_at(transition: &Transition) -> Option<DateTime<Utc>> {
    match transition {
        Transition::Skip { until, .. } => *until,
        Transition::NoAnswer { next_at } => Some(*next_at),
        Transition::Retry { at } => Some(*at),
        _ => None,
    }
}

/// A transition rebuilt from its history row (the inverse of what [`record`] writes).
pub fn from_history(
    name: &str,
    reason: &str,
    param_at: Option<DateTime<Utc>>,
) -> Option<Transition> {
    let reason = reason.to_owned();
    Some(match name {
        "claim" => Transition::Claim,
        "dial" => Transition::Dial,
        "skip" => Transition::Skip {
            reason,
            until: param_at,
        },
        "answered" => Transition::Answered,
        "completed" => Transition::Completed { outcome: reason },
        "no_answer" => Transition::NoAnswer { next_at: param_at? },
        "call_failed" => Transition::CallFailed { reason },
        "timed_out" => Transition::TimedOut,
        "retry" => Transition::Retry { at: param_at? },
        "release" => Transition::Release,
        "pause" => Transition::Pause,
        "resume" => Transition::Resume,
        "cancel" => Transition::Cancel { reason },
        _ => return None,
    })
}

/// Calls about `invoice_id` that the frequency rules still count at `now`.
pub async fn recent_calls(
    tx: &mut Conn,
    invoice_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT dialled_at, connected FROM call_attempts \
         WHERE invoice_id = $1 AND dialled_at > $2 ORDER BY dialled_at",
    )
    .bind(invoice_id)
    .bind(to_millis(now - WEEK))
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, connected)| Attempt {
            at: from_millis(at),
            conversation: connected != 0,
        })
        .collect())
}

/// Claims up to `limit` due pending reminders of organizations whose calls are on for
/// `instance`, until `now + lease`, and records each claim. One statement picks and marks the
/// batch: on PostgreSQL rows another instance is claiming are skipped (`SKIP LOCKED`), on
/// SQLite the statement holds the database's write lock. Either way a reminder is claimed by
/// one instance only.
pub async fn claim(
    tx: &mut Conn,
    instance: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    let lock = match Dialect::of(tx) {
        Dialect::Postgres => "FOR UPDATE OF r SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "UPDATE reminders SET status = 'in_progress', claimed_by = $1, lease_until = $2, \
           updated_at = $3 \
         WHERE id IN ( \
           SELECT r.id FROM reminders r \
           WHERE r.status = 'pending' AND r.due_at <= $3 AND r.attempts < r.max_attempts \
             AND EXISTS (SELECT 1 FROM business_profiles p \
                         WHERE p.org_id = r.org_id AND p.calls_enabled = 1) \
           ORDER BY r.due_at, r.id LIMIT $4 {lock}) \
         RETURNING {COLUMNS}"
    );
    let mut rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(instance)
        .bind(to_millis(now + lease))
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    rows.sort_by_key(|row| (row.due_at, row.id));
    let actor = Actor::Scheduler(instance.to_owned());
    let mut history = Pending::default();
    for row in &rows {
        // The statement's conditions are the machine's for a claim; the machine still decides
        // the history row.
        let before = Row {
            status: Status::Pending.as_str().to_owned(),
            ..row.clone()
        };
        let change = before
            .machine(Vec::new())
            .apply(Transition::Claim, now)
            .map_err(|refused| sqlx::Error::Protocol(refused.to_string()))?;
        history.record(row, &change, &actor, None);
    }
    history.flush(tx).await?;
    Ok(rows)
}

/// Reminders whose lease ran out at `now`: claims never dialled (their scheduler stopped) and
/// dialled calls the agent never reported on.
pub async fn expired(
    tx: &mut Conn,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reminders \
         WHERE status IN ('in_progress', 'processing') AND lease_until < $1 \
         ORDER BY lease_until LIMIT $2"
    ))
    .bind(to_millis(now))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
}

/// One reminder of the organization.
pub async fn get(tx: &mut Conn, org_id: i64, id: i64) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reminders WHERE id = $1 AND org_id = $2"
    ))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await
}

/// One stored history event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub transition: String,
    pub from_status: String,
    pub to_status: String,
    pub reason: String,
    pub param_at: Option<i64>,
    pub actor: String,
    pub attempt_id: Option<i64>,
}

/// A reminder's history, oldest first.
pub async fn history(
    executor: impl sqlx::Executor<'_, Database = crate::db::Backend>,
    org_id: i64,
    reminder_id: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, transition, from_status, to_status, reason, param_at, actor, attempt_id \
         FROM reminder_events WHERE reminder_id = $1 AND org_id = $2 ORDER BY id",
    )
    .bind(reminder_id)
    .bind(org_id)
    .fetch_all(executor)
    .await
}
