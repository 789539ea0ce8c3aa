//! The reminder engine against a real database: generation, pre-call verification, claiming
//! by several scheduler instances, outcomes, timeouts — on both backends.

mod common;

use common::reminders::{books, calls_on};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::db::Db;
use app::reminders::dispatch::{self, CallEvent, CallRequest};
use app::reminders::generate::generate;
use app::reminders::machine::{Reminder, TIMEOUT_REASON};
use app::reminders::profile::{Channel, SequenceStep};
use app::reminders::store::{self, Actor};
use chrono::{DateTime, Duration, Utc};
use server::reminders::{
    CallProvider, Clock, ManualClock, PlaceError, Placed, Scheduler, Settings,
};

/// Monday 2 March 2026, 10:00 in London (GMT).
fn monday_ten() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A provider that records every call and, unless told to stay silent, has the debtor pick up
/// and promise to pay at once.
#[derive(Clone)]
struct Recorder {
    db: Db,
    clock: ManualClock,
    silent: bool,
    calls: Arc<Mutex<Vec<CallRequest>>>,
}

impl Recorder {
    fn new(db: &Db, clock: &ManualClock, silent: bool) -> Self {
        Self {
            db: db.clone(),
            clock: clock.clone(),
            silent,
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<CallRequest> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl CallProvider for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    async fn place(&self, call: &CallRequest) -> Result<Placed, PlaceError> {
        self.calls.lock().unwrap().push(call.clone());
        if !self.silent {
            let now = self.clock.now();
            for event in [
                CallEvent::Answered,
                CallEvent::Completed {
                    outcome: "promise_to_pay".into(),
                },
            ] {
                dispatch::report(
                    &self.db,
                    call.org_id,
                    call.reminder_id,
                    event,
                    &Actor::Webhook,
                    now,
                )
                .await
                .expect("the report applies");
            }
        }
        Ok(Placed {
            reference: format!("rec-{}", call.attempt_id),
        })
    }
}

/// One tick, and the calls it handed to the provider placed.
async fn tick_placed(engine: &Scheduler) -> server::reminders::Tick {
    let tick = engine.tick().await.unwrap();
    engine.placed().await;
    tick
}

fn scheduler(db: &Db, clock: &ManualClock, provider: &Recorder, name: &str) -> Scheduler {
    Scheduler::new(
        db.clone(),
        Arc::new(clock.clone()),
        Some(Arc::new(provider.clone())),
        name,
        Settings {
            batch: 25,
            ..Settings::default()
        },
    )
}

async fn statuses(db: &Db, org_id: i64) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM reminders WHERE org_id = $1 GROUP BY status",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Every reminder's history replays, through the state machine, to its stored state.
async fn histories_replay(db: &Db, org_id: i64) {
    let rows: Vec<store::Row> = sqlx::query_as(&format!(
        "SELECT {} FROM reminders WHERE org_id = $1",
        store::COLUMNS
    ))
    .bind(org_id)
    .fetch_all(db.pool())
    .await
    .unwrap();
    for row in rows {
        let events = store::history(db.pool(), org_id, row.id).await.unwrap();
        let changes: Vec<_> = events
            .iter()
            .map(|e| {
                let transition = store::from_history(
                    &e.transition,
                    &e.reason,
                    e.param_at.map(app::db::time::from_millis),
                )
                .expect("a known transition");
                app::reminders::machine::Change {
                    at: app::db::time::from_millis(e.at),
                    transition,
                    from: app::reminders::machine::Status::parse(&e.from_status).unwrap(),
                    to: app::reminders::machine::Status::parse(&e.to_status).unwrap(),
                    reason: e.reason.clone(),
                }
            })
            .collect();
        let replayed = Reminder::replay(row.due_at(), row.max_attempts as u32, &changes)
            .expect("the history replays");
        assert_eq!(replayed.status, row.status(), "reminder {}", row.id);
        assert_eq!(
            i64::from(replayed.attempts),
            row.attempts,
            "reminder {}",
            row.id
        );
    }
}

both_backends! {
    async fn two_schedulers_claim_each_of_1000_due_reminders_exactly_once(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        let now = monday_ten();
        books(&app.db, owner.org_id, 1_000, now.date_naive() - Duration::days(1)).await;
        calls_on(&app.db, owner, |_| {}).await;

        // Two instances, each with its own connection pool, as two processes would have.
        let other_db = Db::connect(app.config.database_url(), 5).await.unwrap();
        let clock = ManualClock::new(now);
        let recorder = Recorder::new(&app.db, &clock, false);
        let a = scheduler(&app.db, &clock, &recorder, "a");
        let b = scheduler(&other_db, &clock, &recorder, "b");
        let (ta, tb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        println!("instance a claimed {}, b claimed {}", ta.claimed, tb.claimed);
        assert_eq!(ta.claimed + tb.claimed, 1_000);

        let calls = recorder.calls();
        assert_eq!(calls.len(), 1_000);
        let mut reminders: Vec<i64> = calls.iter().map(|c| c.reminder_id).collect();
        reminders.sort_unstable();
        reminders.dedup();
        assert_eq!(reminders.len(), 1_000, "no reminder was called twice");
        assert_eq!(statuses(&app.db, owner.org_id).await, HashMap::from([("completed".into(), 1_000)]));
        let claims: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reminder_events WHERE org_id = $1 AND transition = 'claim'",
        )
        .bind(owner.org_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(claims, 1_000, "each reminder claimed once");
        // The context the agent got: opening with the disclosures, the script filled in.
        let first = &calls[0].context;
        assert!(first.opening.contains("Acme Ltd") && first.opening.contains("AI") && first.opening.contains("recorded"));
        assert!(first.script.contains(&first.invoice_number) && first.script.contains("£1,200.00"), "{}", first.script);
        histories_replay(&app.db, owner.org_id).await;
        other_db.close().await;
    }

    async fn generation_is_idempotent_and_cancels_what_may_no_longer_be_called(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        let now = monday_ten();
        books(&app.db, owner.org_id, 4, now.date_naive() + Duration::days(3)).await;
        calls_on(&app.db, owner, |p| {
            p.sequence = [-2, 0, 7].map(|offset_days| SequenceStep { offset_days, channel: Channel::Call }).to_vec();
        }).await;
        let first = generate(&app.db, owner.org_id, now).await.unwrap();
        assert_eq!(first.created, 12, "three steps of four invoices");
        let again = generate(&app.db, owner.org_id, now).await.unwrap();
        assert_eq!((again.created, again.cancelled), (0, 0), "nothing changes: {again:?}");
        // Step -2 falls on Tuesday 3 March, due at 09:00 London (the calling hours' start).
        let due: i64 = sqlx::query_scalar(
            "SELECT MIN(due_at) FROM reminders WHERE org_id = $1 AND step_offset_days = -2",
        )
        .bind(owner.org_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(app::db::time::from_millis(due).to_rfc3339(), "2026-03-03T09:00:00+00:00");

        // Paid, disputed, opted out: their open reminders are cancelled, with the reason.
        let id = |n: &str| format!("(SELECT id FROM invoices WHERE org_id = {} AND number = '{n}')", owner.org_id);
        for sql in [
            format!("UPDATE invoices SET status = 'paid', balance_minor = 0 WHERE id = {}", id("INV-00000")),
            format!("UPDATE invoices SET disputed = 1, dispute_reason = 'wrong quantity' WHERE id = {}", id("INV-00001")),
            format!("UPDATE customers SET opted_out = 1 WHERE id = (SELECT customer_id FROM invoices WHERE id = {})", id("INV-00002")),
        ] {
            sqlx::query(&sql).execute(app.db.pool()).await.unwrap();
        }
        let third = generate(&app.db, owner.org_id, now).await.unwrap();
        assert_eq!((third.created, third.cancelled), (0, 9));
        let reasons: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT DISTINCT i.number, r.status, r.last_reason FROM reminders r \
             JOIN invoices i ON i.id = r.invoice_id WHERE r.org_id = $1 ORDER BY i.number",
        )
        .bind(owner.org_id)
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(reasons, vec![
            ("INV-00000".into(), "cancelled".into(), "The invoice is paid.".into()),
            ("INV-00001".into(), "cancelled".into(), "The invoice is disputed: wrong quantity".into()),
            ("INV-00002".into(), "cancelled".into(), "The customer opted out of calls.".into()),
            ("INV-00003".into(), "pending".into(), String::new()),
        ]);

        // A step removed from the sequence cancels its waiting reminders; a new one is added.
        calls_on(&app.db, owner, |p| {
            p.sequence = [0, 14].map(|offset_days| SequenceStep { offset_days, channel: Channel::Call }).to_vec();
        }).await;
        let fourth = generate(&app.db, owner.org_id, now).await.unwrap();
        assert_eq!((fourth.created, fourth.cancelled), (1, 2), "{fourth:?}");

        // Three weeks on, the passed steps give way to the latest: one call, not several.
        let later = now + Duration::days(21);
        generate(&app.db, owner.org_id, later).await.unwrap();
        let waiting: Vec<(i64, String)> = sqlx::query_as(
            "SELECT step_offset_days, status FROM reminders r WHERE org_id = $1 \
               AND invoice_id = (SELECT id FROM invoices WHERE number = 'INV-00003' AND org_id = $1) \
             ORDER BY step_offset_days",
        )
        .bind(owner.org_id)
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(waiting, vec![(-2, "cancelled".into()), (0, "cancelled".into()), (7, "cancelled".into()), (14, "pending".into())]);
        histories_replay(&app.db, owner.org_id).await;
    }

    async fn the_pre_call_check_skips_with_reasons_and_reschedules(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        // Saturday: outside the calling days.
        let saturday = monday_ten() - Duration::days(2);
        books(&app.db, owner.org_id, 2, saturday.date_naive() - Duration::days(1)).await;
        calls_on(&app.db, owner, |_| {}).await;
        generate(&app.db, owner.org_id, saturday).await.unwrap();
        // Generation already put the first attempt at Monday's opening.
        let clock = ManualClock::new(saturday);
        let recorder = Recorder::new(&app.db, &clock, false);
        let engine = Scheduler::new(
            app.db.clone(),
            Arc::new(clock.clone()),
            Some(Arc::new(recorder.clone())),
            "a",
            Settings { generate_every: Duration::days(365), ..Settings::default() },
        );
        assert_eq!(tick_placed(&engine).await.claimed, 0, "nothing is due on Saturday");

        // Facts change after generation: the check at claim time catches them.
        sqlx::query("UPDATE customers SET opted_out = 1 WHERE org_id = $1 AND display_name = 'Customer 0000'")
            .bind(owner.org_id)
            .execute(app.db.pool())
            .await
            .unwrap();
        clock.set(monday_ten() - Duration::minutes(60)); // 09:00 London
        let tick = tick_placed(&engine).await;
        assert_eq!((tick.claimed, tick.called, tick.skipped), (2, 1, 1), "{tick:?}");
        let skipped: (String, String) = sqlx::query_as(
            "SELECT r.status, r.last_reason FROM reminders r JOIN customers c ON c.id = r.customer_id \
             WHERE r.org_id = $1 AND c.display_name = 'Customer 0000'",
        )
        .bind(owner.org_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(skipped, ("skipped".into(), "The customer opted out of calls.".into()));
        assert_eq!(recorder.calls().len(), 1);
        histories_replay(&app.db, owner.org_id).await;
    }

    async fn a_silent_agent_times_out_to_failed_and_the_call_is_not_placed_again(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        let now = monday_ten();
        books(&app.db, owner.org_id, 3, now.date_naive()).await;
        calls_on(&app.db, owner, |p| p.agent_timeout_minutes = 10).await;
        let clock = ManualClock::new(now);
        let silent = Recorder::new(&app.db, &clock, true);
        let engine = scheduler(&app.db, &clock, &silent, "a");
        assert_eq!(tick_placed(&engine).await.called, 3);
        clock.advance(Duration::minutes(9));
        let tick = tick_placed(&engine).await;
        assert_eq!((tick.swept.timed_out, tick.called), (0, 0), "still within the timeout");
        clock.advance(Duration::minutes(2));
        let tick = tick_placed(&engine).await;
        assert_eq!((tick.swept.timed_out, tick.called), (3, 0));
        let failed: Vec<(String, String)> = sqlx::query_as(
            "SELECT status, last_reason FROM reminders WHERE org_id = $1",
        )
        .bind(owner.org_id)
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert!(failed.iter().all(|r| r == &("failed".to_owned(), TIMEOUT_REASON.to_owned())), "{failed:?}");
        // Days later, nothing is dialled again by itself.
        clock.advance(Duration::days(2));
        tick_placed(&engine).await;
        assert_eq!(silent.calls().len(), 3);
        let attempts: Vec<String> = sqlx::query_scalar("SELECT status FROM call_attempts WHERE org_id = $1")
            .bind(owner.org_id)
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(attempts, vec!["timed_out"; 3]);

        // A late report does not revive a timed-out call.
        let late = dispatch::report(&app.db, owner.org_id, silent.calls()[0].reminder_id, CallEvent::Answered, &Actor::Webhook, clock.now()).await;
        assert!(late.is_err());
        histories_replay(&app.db, owner.org_id).await;
    }

    async fn no_answer_retries_after_the_delay_within_the_attempts(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        let now = monday_ten();
        books(&app.db, owner.org_id, 1, now.date_naive()).await;
        calls_on(&app.db, owner, |p| {
            p.max_attempts = 2;
            p.retry_no_answer_minutes = 60;
        }).await;
        let clock = ManualClock::new(now);
        let silent = Recorder::new(&app.db, &clock, true);
        let engine = scheduler(&app.db, &clock, &silent, "a");
        tick_placed(&engine).await;
        let reminder = silent.calls()[0].reminder_id;
        dispatch::report(&app.db, owner.org_id, reminder, CallEvent::NoAnswer, &Actor::Webhook, now).await.unwrap();
        clock.advance(Duration::minutes(59));
        assert_eq!(tick_placed(&engine).await.called, 0);
        clock.advance(Duration::minutes(1));
        assert_eq!(tick_placed(&engine).await.called, 1);
        dispatch::report(&app.db, owner.org_id, reminder, CallEvent::NoAnswer, &Actor::Webhook, clock.now()).await.unwrap();
        // Both attempts used: failed, and nothing more.
        assert_eq!(statuses(&app.db, owner.org_id).await, HashMap::from([("failed".into(), 1)]));
        clock.advance(Duration::days(1));
        assert_eq!(tick_placed(&engine).await.called, 0);
        assert_eq!(silent.calls().len(), 2);
        histories_replay(&app.db, owner.org_id).await;
    }
}

both_backends! {
    async fn the_calendar_predicts_what_the_scheduler_does(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        // Friday 27 February 2026, 17:00 London: the window closes in an hour, then the weekend.
        let start = monday_ten() - Duration::days(3) + Duration::hours(7);
        books(&app.db, owner.org_id, 8, start.date_naive() - Duration::days(1)).await;
        let set = |n: u32, sql: &str| {
            format!("UPDATE customers SET {sql} WHERE org_id = {} AND display_name = 'Customer {n:04}'", owner.org_id)
        };
        for sql in [
            set(1, "billing_country = 'US', billing_state = 'NY'"),
            set(2, "billing_country = 'IN'"),
            set(3, "opted_out = 1"),
            set(4, "phone_status = 'missing', best_phone_e164 = ''"),
            set(5, "billing_country = ''"),
            set(6, "billing_country = 'US', billing_state = 'CA'"),
        ] {
            sqlx::query(&sql).execute(app.db.pool()).await.unwrap();
        }
        sqlx::query("UPDATE invoices SET status = 'paid', balance_minor = 0 WHERE org_id = $1 AND number = 'INV-00007'")
            .bind(owner.org_id)
            .execute(app.db.pool())
            .await
            .unwrap();
        calls_on(&app.db, owner, |p| p.sequence = [0, 3].map(|offset_days| SequenceStep { offset_days, channel: Channel::Call }).to_vec()).await;

        let calendar = app::reminders::calendar::calendar(&app.db, owner, 7, start).await.unwrap();
        let mut planned: Vec<(String, i64)> = calendar
            .days
            .iter()
            .flat_map(|d| d.calls.iter().map(|c| (c.invoice_number.clone(), c.at)))
            .collect();
        planned.sort();
        let reasons: Vec<(String, String)> = calendar
            .not_called
            .iter()
            .flat_map(|g| g.invoices.iter().map(|i| (i.invoice_number.clone(), g.kind.clone())))
            .collect();
        assert_eq!(reasons, vec![
            ("INV-00003".into(), "opted_out".into()),
            ("INV-00004".into(), "no_phone".into()),
            ("INV-00005".into(), "unknown_zone".into()),
        ], "{:#?}", calendar.not_called);
        assert_eq!(calendar.open_invoices, 7, "the paid one is not open");
        // Four callable invoices, two steps each (the due date has passed, day 3 is ahead) —
        // except India's: its window is shut until Monday, when day 3 has come, so that step
        // supersedes the first and there is one call, not two back to back.
        assert_eq!(planned.len(), 7, "{planned:?}");
        assert_eq!(planned.iter().filter(|(n, _)| n == "INV-00002").count(), 1);

        // Now let the scheduler run through the week in five-minute steps.
        let clock = ManualClock::new(start);
        let silent = Recorder::new(&app.db, &clock, true);
        let engine = scheduler(&app.db, &clock, &silent, "a");
        let mut placed: Vec<(String, i64)> = Vec::new();
        while clock.now() < start + Duration::days(7) {
            let before = silent.calls().len();
            tick_placed(&engine).await;
            for call in &silent.calls()[before..] {
                placed.push((call.context.invoice_number.clone(), app::db::time::to_millis(clock.now())));
                // Nobody picks up; the next attempt waits for the retry delay.
                dispatch::report(&app.db, owner.org_id, call.reminder_id, CallEvent::NoAnswer, &Actor::Webhook, clock.now()).await.unwrap();
            }
            clock.advance(Duration::minutes(5));
        }
        // Each first attempt of a step was placed when the calendar said (within the 5-minute
        // step); retries after no answer come on top.
        for (number, at) in &planned {
            assert!(
                placed.iter().any(|(n, p)| n == number && *p >= *at && *p < at + 5 * 60_000),
                "{number} planned at {} not placed then: {placed:?}",
                app::db::time::from_millis(*at)
            );
        }
        assert!(placed.iter().all(|(n, _)| planned.iter().any(|(p, _)| p == n)), "nobody unplanned was called");
        // India's law ends calls at 19:00 there, New York is called in its own morning.
        for (number, at) in &placed {
            let at = app::db::time::from_millis(*at);
            let hour = |tz: chrono_tz::Tz| chrono::Timelike::hour(&at.with_timezone(&tz));
            match number.as_str() {
                "INV-00001" => assert!((9..18).contains(&hour(chrono_tz::America::New_York)), "{at}"),
                "INV-00002" => assert!((9..18).contains(&hour(chrono_tz::Asia::Kolkata)), "{at}"),
                "INV-00006" => assert!((9..18).contains(&hour(chrono_tz::America::Los_Angeles)), "{at}"),
                _ => assert!((9..18).contains(&hour(chrono_tz::Europe::London)), "{at}"),
            }
        }
    }
}

/// An accounting system that cannot be reached.
struct Unreachable;

#[async_trait::async_trait]
impl server::reminders::InvoiceSource for Unreachable {
    async fn refresh(&self, _org_id: i64, _invoice_id: i64) -> Result<(), String> {
        Err("Zoho Books is unavailable".into())
    }
}

both_backends! {
    async fn an_invoice_that_cannot_be_confirmed_is_not_called(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        let now = monday_ten();
        books(&app.db, owner.org_id, 1, now.date_naive()).await;
        calls_on(&app.db, owner, |_| {}).await;
        let clock = ManualClock::new(now);
        let recorder = Recorder::new(&app.db, &clock, false);
        let engine = scheduler(&app.db, &clock, &recorder, "a").with_books(Some(Arc::new(Unreachable)));
        let tick = tick_placed(&engine).await;
        assert_eq!((tick.claimed, tick.called, tick.skipped), (1, 0, 1));
        let (status, reason, due): (String, String, i64) =
            sqlx::query_as("SELECT status, last_reason, due_at FROM reminders WHERE org_id = $1")
                .bind(owner.org_id)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(status, "pending");
        assert!(reason.contains("Could not confirm") && reason.contains("unavailable"), "{reason}");
        assert_eq!(due, app::db::time::to_millis(now + Duration::minutes(30)));
        assert!(recorder.calls().is_empty());
    }
}
