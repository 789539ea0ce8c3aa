//! Crashes of the `duecall worker` process (SIGKILL) between claim and dial, and after the
//! dial before any outcome: after a restart no reminder is dialled twice, and each ends in a
//! defined state. On both backends.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use app::db::Db;
use app::reminders::machine::TIMEOUT_REASON;
use chrono::{Duration, Timelike, Utc};
use server::reminders::{ManualClock, Scheduler, Settings};

use common::reminders::{books_in, calls_on};

fn worker(database_url: &str, pause: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duecall"));
    command
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("DUECALL_CLAIM_LEASE_SECONDS", "2")
        .env("DUECALL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(pause) = pause {
        command.env("DUECALL_SCHEDULER_PAUSE", pause);
    }
    command.spawn().expect("the duecall binary starts")
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// Waits (up to a minute) until `sql` counts `at_least`.
async fn wait_for(db: &Db, sql: &str, at_least: i64) {
    let start = Instant::now();
    loop {
        let n = count(db, sql).await;
        if n >= at_least {
            return;
        }
        assert!(
            start.elapsed() < StdDuration::from_secs(60),
            "waited a minute for {sql}: {n}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

fn sigkill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

both_backends! {
    async fn a_killed_worker_never_leads_to_a_second_call(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        // The worker runs on the real clock: put the debtors where it is now midday.
        let hour = i64::from(Utc::now().hour());
        let ahead = (12 - hour).clamp(-12, 14);
        let zone = if ahead >= 0 { format!("Etc/GMT-{ahead}") } else { format!("Etc/GMT+{}", -ahead) };
        books_in(&app.db, owner.org_id, 20, Utc::now().date_naive() - Duration::days(1), &zone).await;
        calls_on(&app.db, owner, |p| {
            p.call_days = [true; 7];
            p.call_start = "08:00".into();
            p.call_end = "20:00".into();
            p.agent_timeout_minutes = 10;
        })
        .await;
        let url = app.config.database_url().to_owned();

        // 1. Killed between claim and dial: a batch is claimed, nothing dialled.
        let crashed = worker(&url, Some("after-claim"));
        wait_for(&app.db, "SELECT COUNT(*) FROM reminders WHERE status = 'in_progress'", 10).await;
        sigkill(crashed);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM call_attempts").await, 0);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM reminders WHERE status = 'in_progress' AND dialled = 0").await, 10);

        // 2. Killed after the dial was written down, before the call was placed or reported.
        tokio::time::sleep(StdDuration::from_millis(2_100)).await; // the claims' lease runs out
        let crashed = worker(&url, Some("after-dial"));
        wait_for(&app.db, "SELECT COUNT(*) FROM call_attempts", 1).await;
        tokio::time::sleep(StdDuration::from_millis(300)).await;
        sigkill(crashed);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM call_attempts").await, 1, "it stopped right after one dial");
        let in_doubt: i64 = count(&app.db, "SELECT reminder_id FROM call_attempts").await;
        // The first crash's claims were given back.
        let released = count(&app.db, "SELECT COUNT(*) FROM reminder_events WHERE transition = 'release'").await;
        assert!(released >= 1, "expired claims are released");

        // 3. A healthy restart calls everyone else once, and leaves the call in doubt alone.
        let healthy = worker(&url, None);
        wait_for(&app.db, "SELECT COUNT(*) FROM call_attempts", 20).await;
        tokio::time::sleep(StdDuration::from_millis(500)).await;
        sigkill(healthy);
        let per_reminder: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT reminder_id, COUNT(*) FROM call_attempts GROUP BY reminder_id",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(per_reminder.len(), 20, "every reminder was called");
        assert!(per_reminder.iter().all(|(_, n)| *n == 1), "nobody was called twice: {per_reminder:?}");

        // 4. Calls nobody reported on (the one in doubt, the simulator's cut short) time out
        // to failed; every reminder ends in a defined state.
        let later = ManualClock::new(Utc::now() + Duration::minutes(11));
        let monitor = Scheduler::new(app.db.clone(), Arc::new(later), None, "monitor", Settings::default());
        monitor.tick().await.unwrap();
        let (status, reason): (String, String) =
            sqlx::query_as("SELECT status, last_reason FROM reminders WHERE id = $1")
                .bind(in_doubt)
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!((status.as_str(), reason.as_str()), ("failed", TIMEOUT_REASON));
        let undefined = count(
            &app.db,
            "SELECT COUNT(*) FROM reminders WHERE status NOT IN ('completed', 'failed', 'pending')",
        )
        .await;
        assert_eq!(undefined, 0);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM call_attempts").await, 20, "the monitor dials nobody");
    }
}
