//! The reminder engine at scale, on SQLite and (when reachable) PostgreSQL. Run with
//! `cargo bench -p server --bench reminders`.
//!
//! Prints, per backend:
//! - claiming a batch of 100 due reminders (and recording each claim) with 10,000, 100,000 and
//!   1,000,000 reminders in the table (target ≤ 50 ms, flat as the table grows), beside a
//!   trivial query's round trip in the same run;
//! - the dry-run calendar for 10,000 open invoices (target ≤ 1 s), and generating their
//!   reminders (first run, and a run that finds nothing to change).
//!
//! `BENCH_ONLY` / `BENCH_KEEP`: see `support`. `BENCH_MAX_REMINDERS` stops the growth early.

mod support;

use std::time::{Duration, Instant};

use app::accounts::service::{self, SignUp};
use app::db::Db;
use app::db::time::to_millis;
use app::reminders::profile::BusinessProfile;
use app::reminders::{calendar, generate, store};
use server::demo::{BooksSize, load_books};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |p: f64| ms(samples[((samples.len() as f64 - 1.0) * p).round() as usize]);
    (at(0.50), at(0.95))
}

async fn org(db: &Db, name: &str, books: BooksSize) -> i64 {
    let member = service::sign_up(
        db,
        SignUp {
            display_name: "Bench".into(),
            email: format!("{}@bench.example", name.to_lowercase()),
            password: "benchmark password".into(),
            org_name: name.into(),
        },
    )
    .await
    .expect("sign up");
    load_books(db, member.org_id, books, 3)
        .await
        .expect("books");
    // Calls on, so the scheduler's claim considers the organization.
    let mut profile = BusinessProfile::new(name, "Europe/London");
    profile.calls_enabled = true;
    sqlx::query(
        "INSERT INTO business_profiles (org_id, profile, calls_enabled, updated_at) VALUES ($1, $2, 1, 0)",
    )
    .bind(member.org_id)
    .bind(serde_json::to_string(&profile).unwrap())
    .execute(db.pool())
    .await
    .unwrap();
    member.org_id
}

/// Grows the organization's reminders to `target`: ten steps per invoice, 1% due now, 9%
/// pending for later, the rest finished (completed or cancelled), as a live table would be.
async fn grow(db: &Db, org_id: i64, invoice_ids: &[i64], from: usize, target: usize) {
    let now = to_millis(chrono::Utc::now());
    for chunk in (from / 10..target / 10).collect::<Vec<_>>().chunks(20_000) {
        let (lo, hi) = (invoice_ids[chunk[0]], invoice_ids[*chunk.last().unwrap()]);
        sqlx::query(
            "WITH RECURSIVE steps(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM steps WHERE n < 9) \
             INSERT INTO reminders (org_id, invoice_id, customer_id, step_offset_days, step_date, \
               status, attempts, max_attempts, dialled, due_at, created_at, updated_at) \
             SELECT i.org_id, i.id, i.customer_id, s.n * 7, i.due_date, \
               CASE WHEN (i.id * 10 + s.n) % 100 = 0 THEN 'pending' \
                    WHEN (i.id * 10 + s.n) % 10 = 1 THEN 'pending' \
                    WHEN (i.id * 10 + s.n) % 3 = 0 THEN 'cancelled' ELSE 'completed' END, \
               0, 3, 0, \
               CASE WHEN (i.id * 10 + s.n) % 100 = 0 THEN $1 - 3600000 ELSE $1 + 86400000 * (1 + s.n) END, \
               $1, $1 \
             FROM invoices i CROSS JOIN steps s \
             WHERE i.org_id = $2 AND i.id BETWEEN $3 AND $4",
        )
        .bind(now)
        .bind(org_id)
        .bind(lo)
        .bind(hi)
        .execute(db.pool())
        .await
        .unwrap();
    }
    db.refresh_statistics(&["reminders"]).await.unwrap();
}

async fn run(label: &str, url: &str) {
    let db = Db::connect(url, 8).await.expect("database");
    db.migrate().await.expect("migrations");
    let max = std::env::var("BENCH_MAX_REMINDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000usize);

    // Claims: 100,000 invoices carry up to 1,000,000 reminders.
    let started = Instant::now();
    let org_id = org(
        &db,
        "Claims",
        BooksSize {
            customers: 20_000,
            invoices: max / 10,
        },
    )
    .await;
    let invoice_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM invoices WHERE org_id = $1 ORDER BY id")
            .bind(org_id)
            .fetch_all(db.pool())
            .await
            .unwrap();
    println!(
        "[{label}] books loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut size = 0;
    for target in [10_000usize, 100_000, 1_000_000] {
        if target > max {
            break;
        }
        let started = Instant::now();
        grow(&db, org_id, &invoice_ids, size, target).await;
        size = target;
        let grown = started.elapsed();
        let due: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reminders WHERE status = 'pending' AND due_at <= $1",
        )
        .bind(to_millis(chrono::Utc::now()))
        .fetch_one(db.pool())
        .await
        .unwrap();
        let mut claims = Vec::new();
        let mut baseline = Vec::new();
        for _ in 0..40 {
            let started = Instant::now();
            sqlx::query("SELECT 1").execute(db.pool()).await.unwrap();
            baseline.push(started.elapsed());
            let started = Instant::now();
            let mut tx = db.begin().await.unwrap();
            let claimed = store::claim(
                &mut tx,
                "bench",
                chrono::Utc::now(),
                chrono::Duration::minutes(2),
                100,
            )
            .await
            .unwrap();
            let took = started.elapsed();
            assert_eq!(claimed.len(), 100);
            // Put them back: every round claims from the same table.
            tx.rollback().await.unwrap();
            claims.push(took);
        }
        let (c50, c95) = stats(claims);
        let (b50, b95) = stats(baseline);
        println!(
            "[{label}] claim 100 of {due:>6} due among {target:>9} reminders: p50 {c50:>6.2} ms  p95 {c95:>6.2} ms   (SELECT 1: p50 {b50:.2} ms, p95 {b95:.2} ms; grown in {:.1} s)",
            grown.as_secs_f64()
        );
    }

    // The calendar: 10,000 open invoices.
    let org_id = org(
        &db,
        "Calendar",
        BooksSize {
            customers: 2_000,
            invoices: 10_000,
        },
    )
    .await;
    sqlx::query(
        "UPDATE invoices SET status = 'overdue', balance_minor = total_minor WHERE org_id = $1",
    )
    .bind(org_id)
    .execute(db.pool())
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let started = Instant::now();
    let first = generate::generate(&db, org_id, now).await.unwrap();
    let generated = started.elapsed();
    let started = Instant::now();
    let again = generate::generate(&db, org_id, now).await.unwrap();
    let regenerated = started.elapsed();
    println!(
        "[{label}] generate reminders for 10,000 open invoices: {:.0} ms ({} created); again: {:.0} ms ({} changed)",
        ms(generated),
        first.created,
        ms(regenerated),
        again.created + again.cancelled + again.rescheduled
    );
    let mut runs = Vec::new();
    let mut planned = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let calendar = calendar::calendar_of(&db, org_id, 14, now).await.unwrap();
        runs.push(started.elapsed());
        planned = calendar.total_calls;
        assert_eq!(calendar.open_invoices, 10_000);
    }
    let (k50, k95) = stats(runs);
    println!(
        "[{label}] dry-run calendar, 14 days, 10,000 open invoices ({planned} calls planned): p50 {k50:.0} ms  p95 {k95:.0} ms"
    );
    db.close().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(support::on_each_backend(
        "duecall_reminders_bench",
        |label, url| async move { run(label, &url).await },
    ));
}
