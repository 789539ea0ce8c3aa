//! The reminder scheduler: a background engine in the server (or the `duecall worker`
//! process) that keeps reminders generated, claims the due ones in small batches, runs the
//! pre-call verification, hands each call to a [`CallProvider`], and on every tick gives back
//! claims whose scheduler stopped and fails calls nobody reported on.
//!
//! Several instances may run against one database: a claim is one statement (skip-locked on
//! PostgreSQL), the attempt is written down before the call is placed, and an attempt whose
//! fate is unknown times out to failed rather than being dialled again.

pub mod livekit;
pub mod simulator;

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use app::db::Db;
use app::error::AppError;
use app::reminders::dispatch::{self, CallEvent, CallRequest, Prepared, Swept};
use app::reminders::generate::{Generated, generate};
use app::reminders::store::{self, Actor};
use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Where the time comes from: the system clock, or one a test moves by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut at = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *at += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A placed call's reference at the provider (e.g. its room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub reference: String,
}

/// Why a call could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("the line was busy")]
    Busy,
    #[error("nobody answered")]
    NoAnswer,
    /// The number cannot be called (no retry).
    #[error("the number cannot be called: {0}")]
    BadNumber(String),
    /// Anything else; `retry` when another attempt makes sense.
    #[error("{reason}")]
    Failed { reason: String, retry: bool },
}

/// Places calls. The calls feature supplies LiveKit; the simulator stands in without it.
#[async_trait::async_trait]
pub trait CallProvider: Send + Sync + 'static {
    /// Shown beside each attempt.
    fn name(&self) -> &'static str;
    /// Places the call for an attempt already written down. Must not place a second call
    /// for the same `attempt_id` (providers key their resources on it).
    async fn place(&self, call: &CallRequest) -> Result<Placed, PlaceError>;
}

/// The accounting system an invoice may have changed in since the last sync: asked to bring
/// the invoice up to date just before a call about it.
#[async_trait::async_trait]
pub trait InvoiceSource: Send + Sync + 'static {
    /// Brings the stored invoice up to date if it may be stale; `Err` when that failed.
    async fn refresh(&self, org_id: i64, invoice_id: i64) -> Result<(), String>;
}

#[async_trait::async_trait]
impl InvoiceSource for crate::integrations::Zoho {
    async fn refresh(&self, org_id: i64, invoice_id: i64) -> Result<(), String> {
        crate::integrations::sync::refresh_invoice(self, org_id, invoice_id)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A point at which a scheduler can be told to stop and wait, so a crash there can be
/// rehearsed (`DUECALL_SCHEDULER_PAUSE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// After the claim is committed, before the pre-call check and dial.
    AfterClaim,
    /// After the attempt is written down, before the call is placed.
    AfterDial,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Reminders claimed per tick.
    pub batch: i64,
    /// How long a claim may wait for its dial before another instance may take it back.
    pub lease: Duration,
    /// The longest sleep between ticks.
    pub poll: StdDuration,
    /// How often every organization's reminders are regenerated (day changes, missed events).
    pub generate_every: Duration,
    pub pause: Option<Pause>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch: 10,
            lease: Duration::minutes(2),
            poll: StdDuration::from_secs(5),
            generate_every: Duration::minutes(10),
            pause: None,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub swept: Swept,
    pub generated: Generated,
    pub claimed: u64,
    pub called: u64,
    pub skipped: u64,
    pub released: u64,
}

/// One scheduler instance.
#[derive(Clone)]
pub struct Scheduler {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub provider: Option<Arc<dyn CallProvider>>,
    /// Refreshes an invoice from its accounting system before a call (when a sync is stale).
    pub books: Option<Arc<dyn InvoiceSource>>,
    /// This instance's name in claims and histories.
    pub instance: String,
    pub settings: Settings,
    pub wake: Arc<Notify>,
    last_generated: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// Calls being placed: a provider may take until the call is answered (LiveKit waits for
    /// the answer), so each is placed on its own task and a tick never waits for them.
    placing: Arc<Mutex<JoinSet<()>>>,
}

impl Scheduler {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        provider: Option<Arc<dyn CallProvider>>,
        instance: impl Into<String>,
        settings: Settings,
    ) -> Self {
        Self {
            db,
            clock,
            provider,
            books: None,
            instance: instance.into(),
            settings,
            wake: Arc::new(Notify::new()),
            last_generated: Arc::new(Mutex::new(None)),
            placing: Arc::default(),
        }
    }

    /// With the accounting system to refresh invoices from before calling.
    pub fn with_books(mut self, books: Option<Arc<dyn InvoiceSource>>) -> Self {
        self.books = books;
        self
    }

    /// A name for this process's scheduler: host and process id.
    pub fn instance_name() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        format!("{host}-{}", std::process::id())
    }

    /// Regenerates every organization's reminders.
    pub async fn generate_all(&self) -> Result<Generated, AppError> {
        let now = self.clock.now();
        let orgs: Vec<i64> = sqlx::query_scalar("SELECT id FROM organizations ORDER BY id")
            .fetch_all(self.db.pool())
            .await?;
        let mut total = Generated::default();
        for org_id in orgs {
            let done = generate(&self.db, org_id, now).await?;
            total.created += done.created;
            total.cancelled += done.cancelled;
            total.rescheduled += done.rescheduled;
        }
        *self
            .last_generated
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(now);
        Ok(total)
    }

    /// One round: sweep expired leases, regenerate when due, then claim and call.
    pub async fn tick(&self) -> Result<Tick, AppError> {
        let mut tick = Tick {
            swept: dispatch::sweep_expired(&self.db, &self.instance, self.clock.now()).await?,
            ..Tick::default()
        };
        let now = self.clock.now();
        let last = *self
            .last_generated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| now - at >= self.settings.generate_every || now < at) {
            tick.generated = self.generate_all().await?;
        }
        let Some(provider) = &self.provider else {
            return Ok(tick);
        };
        let mut tx = self.db.begin().await?;
        let claimed = store::claim(
            &mut tx,
            &self.instance,
            now,
            self.settings.lease,
            self.settings.batch,
        )
        .await?;
        tx.commit().await?;
        tick.claimed = claimed.len() as u64;
        if !claimed.is_empty() && self.settings.pause == Some(Pause::AfterClaim) {
            wait_forever("after claiming").await;
        }
        for row in claimed {
            // The invoice as the accounting system has it now, if the last sync is old; a
            // failure holds the call rather than trusting what may be stale.
            let unconfirmed = match &self.books {
                Some(books) => books.refresh(row.org_id, row.invoice_id).await.err(),
                None => None,
            };
            match dispatch::prepare(
                &self.db,
                &self.instance,
                &row,
                unconfirmed,
                self.clock.now(),
            )
            .await?
            {
                Prepared::Call(call) => {
                    if self.settings.pause == Some(Pause::AfterDial) {
                        wait_forever("after dialling").await;
                    }
                    let (this, provider) = (self.clone(), provider.clone());
                    let mut placing = self.placing.lock().unwrap_or_else(|e| e.into_inner());
                    // Finished placements are reaped as new ones start.
                    while placing.try_join_next().is_some() {}
                    placing.spawn(async move {
                        if let Err(err) = this.place(provider.as_ref(), &call).await {
                            tracing::error!(reminder_id = call.reminder_id, attempt_id = call.attempt_id, error = %err, "could not record a placed call");
                        }
                    });
                    tick.called += 1;
                }
                Prepared::Skipped { .. } => tick.skipped += 1,
                Prepared::Released | Prepared::Lost => tick.released += 1,
            }
        }
        Ok(tick)
    }

    /// Places a written-down call and records what the provider said.
    async fn place(&self, provider: &dyn CallProvider, call: &CallRequest) -> Result<(), AppError> {
        let event = match provider.place(call).await {
            Ok(placed) => {
                dispatch::placed(
                    &self.db,
                    call.attempt_id,
                    provider.name(),
                    &placed.reference,
                )
                .await?;
                return Ok(());
            }
            Err(PlaceError::Busy) => CallEvent::Busy,
            Err(PlaceError::NoAnswer) => CallEvent::NoAnswer,
            Err(PlaceError::BadNumber(reason)) => CallEvent::Failed {
                reason: format!("The number cannot be called: {reason}"),
                retry: false,
            },
            Err(PlaceError::Failed { reason, retry }) => CallEvent::Failed { reason, retry },
        };
        tracing::info!(
            reminder_id = call.reminder_id,
            attempt_id = call.attempt_id,
            ?event,
            "call not placed"
        );
        let actor = Actor::Scheduler(self.instance.clone());
        match dispatch::report(
            &self.db,
            call.org_id,
            call.reminder_id,
            event,
            &actor,
            self.clock.now(),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(store::TransitionError::Db(e)) => Err(e.into()),
            Err(refused) => {
                tracing::warn!(reminder_id = call.reminder_id, error = %refused, "provider result not applied");
                Ok(())
            }
        }
    }

    /// Waits until every call handed to the provider so far has been placed (or refused).
    pub async fn placed(&self) {
        loop {
            let mut set =
                std::mem::take(&mut *self.placing.lock().unwrap_or_else(|e| e.into_inner()));
            if set.is_empty() {
                return;
            }
            while set.join_next().await.is_some() {}
        }
    }

    /// Runs ticks until one finds nothing to do, each call placed before the next tick (tests
    /// and the command line).
    pub async fn run_until_idle(&self) -> Result<Tick, AppError> {
        let mut total = Tick::default();
        loop {
            let tick = self.tick().await?;
            self.placed().await;
            total.swept.released += tick.swept.released;
            total.swept.timed_out += tick.swept.timed_out;
            total.generated.created += tick.generated.created;
            total.generated.cancelled += tick.generated.cancelled;
            total.claimed += tick.claimed;
            total.called += tick.called;
            total.skipped += tick.skipped;
            total.released += tick.released;
            if tick.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs the scheduler in the background until the task is aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(instance = %self.instance, provider = self.provider.as_ref().map_or("none", |p| p.name()), "reminder scheduler started");
            loop {
                let busy = match self.tick().await {
                    Ok(tick) => tick.claimed as i64 >= self.settings.batch,
                    Err(err) => {
                        tracing::error!(error = %err, "reminder scheduler tick failed");
                        false
                    }
                };
                if busy {
                    continue;
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        })
    }
}

/// The dry-run calendar as text for the terminal.
pub fn print_calendar(calendar: &app::reminders::views::Calendar) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let state = if calendar.calls_enabled {
        "on"
    } else {
        "OFF (nothing is dialled until they are switched on)"
    };
    let _ = writeln!(
        out,
        "Dry run for the next {} days ({}). Calls are {state}.\n{} calls planned; {} open invoices.",
        calendar.days_ahead, calendar.timezone, calendar.total_calls, calendar.open_invoices
    );
    for day in &calendar.days {
        let _ = writeln!(out, "\n{} — {} calls", day.label, day.total);
        for call in &day.calls {
            let note = if call.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", call.note)
            };
            let _ = writeln!(
                out,
                "  {}  [{} theirs]  {}  {}  {}  {}{note}",
                call.org_time,
                call.debtor_time,
                call.customer_name,
                call.invoice_number,
                call.amount,
                call.step
            );
        }
        if day.total > day.calls.len() {
            let _ = writeln!(out, "  … and {} more", day.total - day.calls.len());
        }
    }
    if !calendar.not_called.is_empty() {
        let _ = writeln!(out, "\nNot called:");
    }
    for group in &calendar.not_called {
        let _ = writeln!(out, "\n{} — {} invoices", group.label, group.total);
        for item in &group.invoices {
            let _ = writeln!(
                out,
                "  {}  {}  {}  {}",
                item.customer_name, item.invoice_number, item.amount, item.reason
            );
        }
        if group.total > group.invoices.len() {
            let _ = writeln!(out, "  … and {} more", group.total - group.invoices.len());
        }
    }
    out
}

async fn wait_forever(point: &str) {
    tracing::warn!(
        point,
        "scheduler paused (DUECALL_SCHEDULER_PAUSE): waiting to be stopped"
    );
    std::future::pending::<()>().await;
}
