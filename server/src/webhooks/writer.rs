//! Group commit for call-status reports.
//!
//! Every report is a short transaction that writes a handful of rows. Run one transaction per
//! request and the requests queue for the database's write lock (SQLite has one writer), each
//! paying for its own `BEGIN` and `COMMIT` and for the pool's hand-over between them. Instead,
//! handlers hand their report to a writer task, which takes every report that queued up while
//! it was busy and applies them in one transaction: `BEGIN IMMEDIATE`, one statement finding
//! the deliveries received before and reading each report's reminder (as one row of JSON),
//! then the batch's writes decided in memory ([`Session`]) with one statement per table, one
//! statement storing every delivery with its answer, one `COMMIT`. Each sender is answered
//! only after that commit, so an answer of 200 still means "stored" and a crash loses nothing
//! that was acknowledged.
//!
//! The transaction is begun and ended by the batch's own statements, on the writing
//! connection it holds (`Db::writing_connection`), rather than by sqlx's transaction: there
//! `BEGIN` and `COMMIT` are each a trip to SQLite's connection thread that also waits for the
//! writer to acknowledge the answer, on two busy cores a wait for a thread to be scheduled
//! twice over. Here `BEGIN IMMEDIATE` is a plain statement and `COMMIT` ends the write script,
//! which saves the commit's trip and both waits. (The read stays a statement of its own:
//! sqlx's SQLite worker panics when a later statement of a multi-statement execution fails to
//! prepare, as one naming a missing table does.)
//!
//! A report refused before it wrote anything (unknown reminder, a call that moved on) is
//! answered and stored in the same batch. A failure after a report began to write, or a
//! database error, rolls the batch back and applies its reports again one by one, each in a
//! transaction of its own — exactly as if they had come alone.
//!
//! The writer holds a bounded number of reports ([`Writer::new`]'s `limit`): past it, a report
//! is answered 503 with `Retry-After` and nothing of it is stored. Under more reports than it
//! can write, the queue would otherwise grow without end, and every report behind it wait
//! longer than any sender waits for an answer — and time out, and be sent again.
//!
//! The writing connection is kept from one batch to the next for a short while ([`HOLD`]),
//! and on SQLite so are the organizations' profiles read meanwhile: a stream of small batches
//! pays once per lease for giving the connection back and for each profile, not once per batch.
//!
//! Both backends batch. SQLite has one writing connection, and its writer task has a thread
//! to itself (see [`Writer::start`]). PostgreSQL would take many writers at once, but there a
//! report alone costs about a dozen statements, each parsed, planned and answered by a server
//! process, plus a commit: with the load generator and the server on the same two cores, that
//! capped it near 1,000 reports a second, and a batch costs the same dozen statements for any
//! number of reports. Several instances each run a writer; row locks, taken in id order, and a
//! lock per delivery keep their batches apart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use app::calls::apply::{self, ApplyError, Session, WriteBack};
use app::calls::live::Hub;
use app::calls::report::CallReport;
use app::db::time::to_millis;
use app::db::{Conn, Db, Dialect, Script, from_json};
use app::reminders::profile::BusinessProfile;

/// The most reports one transaction takes.
const MAX_BATCH: usize = 256;

/// A transaction slower than this is logged with where its time went.
const SLOW: Duration = Duration::from_millis(100);

const SOURCE: &str = "call_status";

/// One delivery of a report, as the handler received it.
pub struct Delivery {
    /// `id:<webhook-id>` or `sha256:<body hash>`: repeats of a delivery share it.
    pub key: String,
    /// The request's headers (without signatures) and body, as stored.
    pub headers: String,
    pub body: String,
    /// The parsed report, or why the body is not one.
    pub report: Result<CallReport, String>,
    /// The attempt whose key signed it, if it was signed with an attempt's key.
    pub only_attempt: Option<i64>,
    pub now: DateTime<Utc>,
}

/// What the sender is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Answer {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The event could not be stored; send it again.",
        )
    }

    fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many reports are waiting to be stored; send it again in a moment.",
        )
    }
}

struct Job {
    delivery: Delivery,
    reply: oneshot::Sender<Answer>,
    queued: Instant,
    /// Given back once the job is answered (or dropped unanswered).
    _held: Held,
}

/// One report counted among those the writer holds.
struct Held(Arc<AtomicUsize>);

impl Held {
    /// Counts one more report, unless `limit` are held already.
    fn take(count: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < limit).then_some(held + 1)
            })
            .ok()?;
        Some(Self(count.clone()))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Hands reports to the writer (started on first use).
#[derive(Clone)]
pub struct Writer {
    db: Db,
    live: Hub,
    queue: Arc<OnceLock<mpsc::UnboundedSender<Job>>>,
    /// Reports submitted and not yet answered, and how many may be.
    held: Arc<AtomicUsize>,
    limit: usize,
    /// Whether reports are being turned away (logged when it starts and ends).
    full: Arc<AtomicBool>,
}

impl Writer {
    /// A writer holding at most `limit` reports at once (queued or in its transaction).
    pub fn new(db: Db, live: Hub, limit: std::num::NonZeroUsize) -> Self {
        Self {
            db,
            live,
            queue: Arc::new(OnceLock::new()),
            held: Arc::new(AtomicUsize::new(0)),
            limit: limit.get(),
            full: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Applies `delivery` (with whatever else is queued) and returns the sender's answer once
    /// it is committed; or, when the writer holds its limit already, answers 503 at once and
    /// stores nothing.
    pub async fn submit(&self, delivery: Delivery) -> Answer {
        let Some(held) = Held::take(&self.held, self.limit) else {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = self.limit,
                    "call-status reports are coming faster than they are stored; \
                     answering 503 until the queue drains"
                );
            }
            return Answer::busy();
        };
        if self.full.swap(false, Ordering::Relaxed) {
            tracing::info!("the call-status queue has room again");
        }
        let queue = self.queue.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        if queue
            .send(Job {
                delivery,
                reply,
                queued: Instant::now(),
                _held: held,
            })
            .is_err()
        {
            return Answer::internal();
        }
        answer.await.unwrap_or_else(|_| Answer::internal())
    }

    /// The writer. SQLite's connection does its work on a thread of its own and wakes the task
    /// that awaits each statement; on the server's busy runtime a woken task waits its turn
    /// behind the requests in flight — a tenth of a millisecond and more per statement, all
    /// while holding the write lock. The SQLite writer therefore has a thread and a runtime to
    /// itself, where it runs the moment it is woken. PostgreSQL's connections belong to the
    /// server's runtime, whose I/O drives them; its writer is a task there.
    fn start(&self) -> mpsc::UnboundedSender<Job> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (db, live) = (self.db.clone(), self.live.clone());
        if db.dialect() == Dialect::Postgres {
            tokio::spawn(run(db, live, receiver));
            return sender;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name("call-status-writer".into())
                    .spawn(move || runtime.block_on(run(db, live, receiver)));
                if let Err(err) = spawned {
                    tracing::error!(error = %err, "the call-status writer thread did not start");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "no runtime for the call-status writer; it shares the server's");
                tokio::spawn(run(db, live, receiver));
            }
        }
        sender
    }
}

async fn run(db: Db, live: Hub, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut lease: Option<Lease> = None;
    loop {
        let left = lease
            .as_ref()
            .map(|held| HOLD.saturating_sub(held.since.elapsed()));
        let received = match left {
            // The lease is up: the connection goes back before the next batch.
            Some(Duration::ZERO) => {
                lease = None;
                continue;
            }
            // Waiting with the connection held: only until the lease is up.
            Some(left) => {
                match tokio::time::timeout(left, queue.recv_many(&mut jobs, MAX_BATCH)).await {
                    Ok(received) => received,
                    // Up meanwhile: given back above.
                    Err(_) => continue,
                }
            }
            None => queue.recv_many(&mut jobs, MAX_BATCH).await,
        };
        if received == 0 {
            return;
        }
        let batch = std::mem::take(&mut jobs);
        // A panic fails this batch's senders (they are answered 500), not the writer.
        let done = std::panic::AssertUnwindSafe(apply_batch(&db, &live, &mut lease, batch))
            .catch_unwind()
            .await;
        if done.is_err() {
            lease = None;
            tracing::error!("the call-status writer panicked; its batch was answered 500");
        }
    }
}

/// How long the writer keeps the writing connection from one batch to the next before giving
/// it back to the pool, where other writers (the reminder engine, the team's edits) wait their
/// turn. Every return costs a trip to SQLite's connection thread (sqlx tests the connection),
/// and on SQLite so does every organization's profile read: kept, a stream of small batches
/// pays them once per lease rather than once per batch.
const HOLD: Duration = Duration::from_millis(10);

/// The writing connection, kept between batches for at most [`HOLD`], and on SQLite what the
/// batches in it read that no write of theirs changes: each organization's profile, which
/// nothing else can change meanwhile, since every write waits for this connection. (On
/// PostgreSQL each batch reads the profiles again.)
struct Lease {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    since: Instant,
    profiles: HashMap<i64, BusinessProfile>,
}

/// Applies `jobs` in one transaction, or one by one when that fails, and answers each.
async fn apply_batch(db: &Db, live: &Hub, lease: &mut Option<Lease>, jobs: Vec<Job>) {
    let deliveries: Vec<&Delivery> = jobs.iter().map(|job| &job.delivery).collect();
    let oldest = jobs.iter().map(|job| job.queued).min();
    let answers = match in_one_transaction(db, lease, &deliveries, oldest).await {
        Ok(done) => Some(done),
        Err(err) if jobs.len() > 1 => {
            tracing::warn!(error = %err, reports = jobs.len(), "call-status batch rolled back; applying its reports one by one");
            None
        }
        Err(err) => {
            tracing::debug!(error = %err, "call-status report rolled back");
            None
        }
    };
    let answers = match answers {
        Some(done) => done,
        None => {
            let mut done = Vec::with_capacity(jobs.len());
            for delivery in &deliveries {
                done.push(alone(db, lease, delivery).await);
            }
            done
        }
    };
    let mut notified = HashSet::new();
    for (job, (answer, changed_org)) in jobs.into_iter().zip(answers) {
        if let Some(org) = changed_org
            && notified.insert(org)
        {
            live.notify(org);
        }
        // The sender may have gone (timed out): the report is applied all the same.
        let _ = job.reply.send(answer);
    }
}

/// One delivery in a transaction of its own (after its batch failed): a failure keeps
/// nothing and is a 500, and the sender tries again.
async fn alone(db: &Db, lease: &mut Option<Lease>, delivery: &Delivery) -> (Answer, Option<i64>) {
    match in_one_transaction(db, lease, &[delivery], None).await {
        Ok(mut done) => done.remove(0),
        Err(err) => {
            tracing::error!(error = %err, "call-status webhook failed");
            (Answer::internal(), None)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

/// A delivery received before: its row's id and answer.
struct Known {
    id: i64,
    status_code: i64,
    result: String,
}

/// A delivery's row in `webhook_events`, written when its batch commits.
struct Record<'a> {
    delivery: &'a Delivery,
    status: StatusCode,
    result: String,
    event_type: &'static str,
    org_id: Option<i64>,
    reminder_id: Option<i64>,
    attempt_id: Option<i64>,
    event_key: Option<String>,
    /// How often it was received in this batch.
    deliveries: i64,
}

impl<'a> Record<'a> {
    fn bare(delivery: &'a Delivery, status: StatusCode, result: &str) -> Self {
        Self {
            delivery,
            status,
            result: result.to_owned(),
            event_type: delivery
                .report
                .as_ref()
                .map_or("", |report| report.event.event_type().as_str()),
            org_id: None,
            reminder_id: None,
            attempt_id: None,
            event_key: None,
            deliveries: 1,
        }
    }
}

/// Applies every delivery in one transaction and returns each one's answer (and the
/// organization whose calls changed), committed.
///
/// `oldest` is when the batch's first report was queued: the log gives how long it waited.
/// The writing connection comes from `lease`, or from the pool, and is left in `lease` unless
/// the transaction could not be ended.
async fn in_one_transaction(
    db: &Db,
    lease: &mut Option<Lease>,
    deliveries: &[&Delivery],
    oldest: Option<Instant>,
) -> Result<Vec<(Answer, Option<i64>)>, Failure> {
    let mut timer = Phases::start(oldest);
    let (mut conn, since, profiles) = match lease.take() {
        Some(held) => (held.conn, held.since, held.profiles),
        None => (
            db.writing_connection().await?,
            Instant::now(),
            HashMap::new(),
        ),
    };
    timer.mark("acquire");
    let mut session = Session::with_profiles(profiles);
    let mut tx = Open {
        conn: &mut conn,
        open: true,
    };
    let decided = decide(
        &mut *tx.conn,
        db.dialect(),
        deliveries,
        &mut session,
        &mut timer,
    )
    .await;
    let ended = match &decided {
        Ok(_) => {
            tx.open = false;
            timer.log_if_slow(deliveries.len());
            true
        }
        Err(_) => tx.rollback().await,
    };
    drop(tx);
    if ended {
        // On PostgreSQL another connection may change a profile at any time: read afresh.
        let profiles = match db.dialect() {
            Dialect::Sqlite => session.into_profiles(),
            Dialect::Postgres => HashMap::new(),
        };
        *lease = Some(Lease {
            conn,
            since,
            profiles,
        });
    }
    decided
}

/// The writing connection inside a batch's transaction, which the batch's own statements begin
/// and end. Dropped with the transaction possibly open — a statement failed and so did the
/// rollback, or the batch panicked or was cancelled — the connection is marked to be closed
/// instead of given back to the pool, where the next transaction would find it
/// mid-transaction.
struct Open<'c> {
    conn: &'c mut sqlx::pool::PoolConnection<sqlx::Any>,
    open: bool,
}

impl Open<'_> {
    /// Rolls the transaction back; false when that failed (the connection is to be closed).
    async fn rollback(&mut self) -> bool {
        match sqlx::query("ROLLBACK").execute(&mut **self.conn).await {
            Ok(_) => {
                self.open = false;
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "call-status batch: the rollback failed; closing the connection");
                false
            }
        }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// [`in_one_transaction`] on the writing connection: begins, reads, decides every report,
/// writes and commits. An error leaves the transaction for the caller to roll back.
async fn decide(
    conn: &mut Conn,
    dialect: Dialect,
    deliveries: &[&Delivery],
    session: &mut Session,
    timer: &mut Phases,
) -> Result<Vec<(Answer, Option<i64>)>, Failure> {
    let known = begin(conn, dialect, deliveries, session).await?;
    timer.mark("read");
    let mut connected: HashMap<i64, bool> = HashMap::new();
    let mut answers: Vec<(Answer, Option<i64>)> = Vec::with_capacity(deliveries.len());
    let mut records: Vec<Record> = Vec::with_capacity(deliveries.len());
    // Index in `records` of each delivery key's first report in this batch.
    let mut first: HashMap<&str, usize> = HashMap::new();
    // Repeats of deliveries received before this batch.
    let mut repeats: HashMap<&str, i64> = HashMap::new();
    for &delivery in deliveries {
        let key = delivery.key.as_str();
        if let Some(&at) = first.get(key) {
            let earlier = &mut records[at];
            earlier.deliveries += 1;
            let detail = format!("Delivery already received: {}", earlier.result);
            answers.push((Answer::new(earlier.status, "duplicate", detail), None));
            continue;
        }
        if let Some(row) = known.get(key) {
            *repeats.entry(key).or_insert(0) += 1;
            let status = u16::try_from(row.status_code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::OK);
            let detail = format!(
                "Delivery already received (event {}): {}",
                row.id, row.result
            );
            answers.push((Answer::new(status, "duplicate", detail), None));
            continue;
        }
        first.insert(key, records.len());
        let report = match &delivery.report {
            Ok(report) => report,
            Err(invalid) => {
                records.push(Record::bare(delivery, StatusCode::BAD_REQUEST, invalid));
                answers.push((
                    Answer::new(StatusCode::BAD_REQUEST, "invalid_event", invalid.as_str()),
                    None,
                ));
                continue;
            }
        };
        match session
            .apply(conn, report, delivery.only_attempt, delivery.now)
            .await
        {
            Ok(applied) => {
                if let Some(write_back) = &applied.write_back {
                    queue_write_back(conn, &mut connected, applied.org_id, write_back).await?;
                }
                let result = if applied.changed {
                    "applied"
                } else {
                    "unchanged"
                };
                records.push(Record {
                    org_id: Some(applied.org_id),
                    reminder_id: Some(applied.reminder_id),
                    attempt_id: Some(applied.attempt_id),
                    event_key: applied
                        .changed
                        .then(|| apply::event_key(applied.attempt_id, report)),
                    ..Record::bare(delivery, StatusCode::OK, &applied.summary)
                });
                answers.push((
                    Answer::new(StatusCode::OK, result, applied.summary),
                    applied.changed.then_some(applied.org_id),
                ));
            }
            Err(refused @ (ApplyError::NotFound(_) | ApplyError::Conflict(_))) => {
                // Nothing of the report was written; its delivery is stored with the answer.
                let (record, answer) = refusal(conn, delivery, report, &refused).await?;
                records.push(record);
                answers.push((answer, None));
            }
            Err(ApplyError::Db(err)) => return Err(err.into()),
            // Refusals are all found before a report's writes are kept; anything after
            // unwinds the batch.
            Err(err @ (ApplyError::Internal(_) | ApplyError::Unfinished(_))) => {
                return Err(Failure::Internal(err.to_string()));
            }
        }
    }
    timer.mark("apply");
    // The batch's writes, its deliveries and the commit: one trip on SQLite.
    let mut script = Script::new(dialect);
    session.write_into(&mut script);
    store(&mut script, &records, &repeats);
    script.statement("COMMIT");
    script.run(conn).await?;
    timer.mark("commit");
    Ok(answers)
}

/// Where a transaction's time went, for the log when it was slow: first how long its oldest
/// report waited in the queue (when it came from one), then each phase.
struct Phases {
    started: Instant,
    last: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl Phases {
    fn start(oldest: Option<Instant>) -> Self {
        let now = Instant::now();
        let mut phases = Vec::with_capacity(7);
        if let Some(queued) = oldest {
            phases.push(("waited", now.saturating_duration_since(queued)));
        }
        Self {
            started: now,
            last: now,
            phases,
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases.push((phase, now - self.last));
        self.last = now;
    }

    fn log_if_slow(&self, reports: usize) {
        let total = self.last - self.started;
        let slow = total >= SLOW;
        if !slow && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let phases = self
            .phases
            .iter()
            .map(|(phase, took)| format!("{phase} {:.1} ms", took.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ");
        if slow {
            tracing::warn!(
                reports,
                total_ms = total.as_millis() as u64,
                %phases,
                "slow call-status transaction"
            );
        } else {
            tracing::debug!(reports, %phases, "call-status transaction");
        }
    }
}

/// Begins the batch's transaction, finds the deliveries of the batch that were received
/// before, by key, and reads ahead the facts of every report's reminder into `session` (on
/// PostgreSQL after taking a lock per delivery and the reminders' row locks).
///
/// Both reads are one statement of one row: SQLite's connection thread hands each row, and
/// each statement's end, to this one separately, and on two busy cores every hand-over waits
/// for a thread to be woken.
async fn begin(
    conn: &mut Conn,
    dialect: Dialect,
    deliveries: &[&Delivery],
    session: &mut Session,
) -> Result<HashMap<String, Known>, sqlx::Error> {
    let mut keys: Vec<&str> = deliveries
        .iter()
        .map(|d| d.key.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // In one order, so that two instances' batches wait for each other rather than deadlock.
    keys.sort_unstable();
    // The keys as one JSON argument: one statement, kept prepared, for any number of them.
    let listed = serde_json::Value::from(keys).to_string();
    // Every report's reminder (one whose delivery was received before is read for nothing).
    let reminders = session.unread(
        &deliveries
            .iter()
            .filter_map(|delivery| delivery.report.as_ref().ok())
            .map(|report| report.reminder_id)
            .collect::<Vec<_>>(),
    );
    match dialect {
        // The write lock from the start: the batch reads before it writes.
        Dialect::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
        Dialect::Postgres => {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            // Two deliveries of one report at once (on two instances): the second waits here
            // until the first has committed, then finds it (and is answered as a repeat).
            let sql = format!(
                "SELECT pg_advisory_xact_lock(hashtext(k)) FROM ({}) AS v(k) ORDER BY k",
                dialect.json_values("TEXT")
            );
            sqlx::query(&sql)
                .bind(listed.as_str())
                .execute(&mut *conn)
                .await?;
            apply::lock_reminders(conn, &reminders).await?;
        }
    }
    static READ: OnceLock<[String; 2]> = OnceLock::new();
    let read = READ.get_or_init(|| {
        [Dialect::Sqlite, Dialect::Postgres].map(|dialect| {
            format!(
                "SELECT (SELECT {} FROM webhook_events \
                   WHERE source = '{SOURCE}' AND delivery_key IN ({})), {}",
                dialect
                    .json_list(&dialect.json_array_text("delivery_key, id, status_code, result")),
                dialect.json_values_at(1, "TEXT"),
                apply::facts_listed(dialect, 2),
            )
        })
    });
    let sql = match dialect {
        Dialect::Sqlite => &read[0],
        Dialect::Postgres => &read[1],
    };
    let (known, facts): (String, String) = sqlx::query_as(sql)
        .bind(listed)
        .bind(serde_json::Value::from(reminders).to_string())
        .fetch_one(&mut *conn)
        .await?;
    session.prefetched(&facts)?;
    let known: Vec<(String, i64, i64, String)> = from_json(&known)?;
    Ok(known
        .into_iter()
        .map(|(key, id, status_code, result)| {
            (
                key,
                Known {
                    id,
                    status_code,
                    result,
                },
            )
        })
        .collect())
}

/// Writes the batch's deliveries in one statement: a new row for each first delivery (a
/// delivery another instance stored meanwhile is counted instead), and the count of each
/// delivery received again.
fn store(script: &mut Script, records: &[Record<'_>], repeats: &HashMap<&str, i64>) {
    if records.is_empty() && repeats.is_empty() {
        return;
    }
    let sql = format!(
        "WITH v AS ({}) \
         INSERT INTO webhook_events (source, delivery_key, headers, body, received_at, \
           status_code, result, event_type, org_id, reminder_id, attempt_id, event_key, deliveries) \
         SELECT '{SOURCE}', delivery_key, headers, body, received_at, status_code, result, \
           event_type, org_id, reminder_id, attempt_id, event_key, deliveries FROM v WHERE true \
         ON CONFLICT (source, delivery_key) \
         DO UPDATE SET deliveries = webhook_events.deliveries + excluded.deliveries",
        script.dialect().json_rows(&[
            ("delivery_key", "TEXT"),
            ("headers", "TEXT"),
            ("body", "TEXT"),
            ("received_at", "BIGINT"),
            ("status_code", "BIGINT"),
            ("result", "TEXT"),
            ("event_type", "TEXT"),
            ("org_id", "BIGINT"),
            ("reminder_id", "BIGINT"),
            ("attempt_id", "BIGINT"),
            ("event_key", "TEXT"),
            ("deliveries", "BIGINT"),
        ])
    );
    #[derive(serde::Serialize)]
    struct Written<'a> {
        delivery_key: &'a str,
        headers: &'a str,
        body: &'a str,
        received_at: i64,
        status_code: u16,
        result: &'a str,
        event_type: &'a str,
        org_id: Option<i64>,
        reminder_id: Option<i64>,
        attempt_id: Option<i64>,
        event_key: Option<&'a str>,
        deliveries: i64,
    }
    let mut rows: Vec<Written> = records
        .iter()
        .map(|record| Written {
            delivery_key: &record.delivery.key,
            headers: &record.delivery.headers,
            body: &record.delivery.body,
            received_at: to_millis(record.delivery.now),
            status_code: record.status.as_u16(),
            result: &record.result,
            event_type: record.event_type,
            org_id: record.org_id,
            reminder_id: record.reminder_id,
            attempt_id: record.attempt_id,
            event_key: record.event_key.as_deref(),
            deliveries: record.deliveries,
        })
        .collect();
    // A repeat always meets its row: only the count is taken from it.
    rows.extend(repeats.iter().map(|(key, count)| Written {
        delivery_key: key,
        headers: "",
        body: "",
        received_at: 0,
        status_code: 0,
        result: "",
        event_type: "",
        org_id: None,
        reminder_id: None,
        attempt_id: None,
        event_key: None,
        deliveries: *count,
    }));
    script.statement(&sql).json(&rows);
}

/// The answer to a refused report and its delivery's row: shown on the reminder's page only
/// when the sender may speak about that reminder.
async fn refusal<'a>(
    tx: &mut Conn,
    delivery: &'a Delivery,
    report: &CallReport,
    refused: &ApplyError,
) -> Result<(Record<'a>, Answer), sqlx::Error> {
    let (status, code) = match refused {
        ApplyError::NotFound(_) => (StatusCode::NOT_FOUND, "unknown_reminder"),
        _ => (StatusCode::CONFLICT, "illegal_transition"),
    };
    let message = refused.to_string();
    let owner: Option<i64> = match delivery.only_attempt {
        None => {
            sqlx::query_scalar("SELECT org_id FROM reminders WHERE id = $1")
                .bind(report.reminder_id)
                .fetch_optional(&mut *tx)
                .await?
        }
        Some(attempt) => {
            sqlx::query_scalar(
                "SELECT org_id FROM call_attempts WHERE id = $1 AND reminder_id = $2",
            )
            .bind(attempt)
            .bind(report.reminder_id)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    let record = Record {
        org_id: owner,
        reminder_id: owner.map(|_| report.reminder_id),
        ..Record::bare(delivery, status, &message)
    };
    Ok((record, Answer::new(status, code, message)))
}

/// Queues the outcome's note for the invoice in Zoho Books, if it came from there and the
/// organization is connected; the write-back engine delivers it with retries.
async fn queue_write_back(
    tx: &mut Conn,
    connected: &mut HashMap<i64, bool>,
    org_id: i64,
    write_back: &WriteBack,
) -> Result<(), Failure> {
    use crate::integrations::store::{PROVIDER, SOURCE as ZOHO_SOURCE};
    if write_back.invoice_source != ZOHO_SOURCE {
        return Ok(());
    }
    let is_connected = match connected.get(&org_id) {
        Some(known) => *known,
        None => {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT org_id FROM integration_connections \
                 WHERE org_id = $1 AND provider = $2 AND status <> 'choosing'",
            )
            .bind(org_id)
            .bind(PROVIDER)
            .fetch_optional(&mut *tx)
            .await?;
            connected.insert(org_id, found.is_some());
            found.is_some()
        }
    };
    if !is_connected {
        return Ok(());
    }
    // A failure here fails the whole report (the agent sends it again): no outcome is
    // applied without its write-back.
    crate::integrations::writeback::enqueue(
        tx,
        org_id,
        write_back.invoice_id,
        &write_back.description,
        write_back.payment_expected_date,
    )
    .await
    .map_err(|err| Failure::Internal(format!("queueing the write-back: {err}")))?;
    Ok(())
}
