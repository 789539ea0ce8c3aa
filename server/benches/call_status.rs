//! The call-status webhook under load, on SQLite and (when reachable) PostgreSQL. Run with
//! `cargo bench -p server --bench call_status` (an optimised build of the real server).
//!
//! The real router is served on a local port; a load generator in the same process (the same
//! two cores) sends signed `call_answered` / `call_completed` reports to distinct reminders at
//! fixed rates (open loop: requests leave on schedule whether or not earlier ones returned, and
//! latency counts from the scheduled time, so a stall is not hidden). Beside each run, the same
//! rate against the bare `/healthz` endpoint of the same server measures what the HTTP stack
//! alone costs. Prints, per rate: achieved requests per second, p50 / p99 latency, errors, and
//! the webhook's throughput as a share of the bare endpoint's.
//!
//! Targets (2 cores, load generator included): ≥ 50% of the bare endpoint's throughput,
//! ≥ 5,000 requests/s with p99 < 10 ms on SQLite, 0 errors.
//!
//! `BENCH_SECONDS` (default 60) per run, `BENCH_RATES` (default `1000,2500,5000`);
//! `BENCH_TIMELINE=1` also prints the worst latency of each second (where a stall happened);
//! `BENCH_ONLY` / `BENCH_KEEP`: see `support`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use app::accounts::service::{self, SignUp};
use app::db::Db;
use app::db::time::to_millis;
use app::reminders::profile::BusinessProfile;
use secrecy::SecretString;
use server::demo::{BooksSize, load_books};
use server::webhooks::CALL_STATUS_PATH;
use server::webhooks::signature::sign_standard;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An organization whose every invoice has a reminder with a call under way, ready for reports.
async fn seed(db: &Db, invoices: usize) -> Vec<(i64, i64)> {
    let member = service::sign_up(
        db,
        SignUp {
            display_name: "Bench".into(),
            email: "bench@bench.example".into(),
            password: "benchmark password".into(),
            org_name: "Bench Calls".into(),
        },
    )
    .await
    .expect("sign up");
    let org = member.org_id;
    load_books(
        db,
        org,
        BooksSize {
            customers: invoices.min(20_000),
            invoices,
        },
        5,
    )
    .await
    .expect("books");
    let mut profile = BusinessProfile::new("Bench Calls", "Europe/London");
    profile.calls_enabled = true;
    sqlx::query(
        "INSERT INTO business_profiles (org_id, profile, calls_enabled, updated_at) VALUES ($1, $2, 1, 0)",
    )
    .bind(org)
    .bind(serde_json::to_string(&profile).unwrap())
    .execute(db.pool())
    .await
    .unwrap();
    let now = to_millis(chrono::Utc::now());
    let far = now + 86_400_000;
    sqlx::query(
        "INSERT INTO reminders (org_id, invoice_id, customer_id, step_offset_days, step_date, status, \
           attempts, max_attempts, dialled, due_at, claimed_by, lease_until, created_at, updated_at) \
         SELECT org_id, id, customer_id, 0, due_date, 'in_progress', 1, 3, 1, $2, 'bench', $3, $2, $2 \
         FROM invoices WHERE org_id = $1",
    )
    .bind(org)
    .bind(now)
    .bind(far)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO call_attempts (org_id, reminder_id, invoice_id, customer_id, attempt_no, \
           phone_e164, status, dialled_at, provider, context) \
         SELECT org_id, id, invoice_id, customer_id, 1, '+442079460000', 'dialling', $2, 'bench', \
           '{\"balance_minor\":1000}' FROM reminders WHERE org_id = $1",
    )
    .bind(org)
    .bind(now)
    .execute(db.pool())
    .await
    .unwrap();
    db.refresh_statistics(&["reminders", "call_attempts", "invoices"])
        .await
        .unwrap();
    sqlx::query_as("SELECT reminder_id, id FROM call_attempts WHERE org_id = $1 ORDER BY id")
        .bind(org)
        .fetch_all(db.pool())
        .await
        .unwrap()
}

struct Run {
    sent: usize,
    /// Failed requests by kind: an HTTP status, or the client's error.
    errors: std::collections::BTreeMap<String, usize>,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// The worst latency of each second, in order (a stall shows where it happened).
    worst_by_second: Vec<Duration>,
}

impl Run {
    fn failed(&self) -> usize {
        self.errors.values().sum()
    }

    fn throughput(&self) -> f64 {
        (self.sent - self.failed()) as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let at = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[at].as_secs_f64() * 1000.0
    }
}

/// Sends `rate` requests a second for `seconds`, each built by `request(i)`, on schedule.
async fn open_loop<F>(rate: u32, seconds: u64, request: F) -> Run
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let total = rate as usize * seconds as usize;
    let request = Arc::new(request);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let failure = match request(i).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.bytes().await;
                    match (status.is_success(), body) {
                        (true, Ok(_)) => None,
                        (true, Err(err)) => Some(format!("body: {err}")),
                        (false, Ok(body)) => Some(format!(
                            "{} {}",
                            status.as_u16(),
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(120)
                                .collect::<String>()
                        )),
                        (false, Err(_)) => Some(status.as_u16().to_string()),
                    }
                }
                Err(err) if err.is_timeout() => Some("client timeout".into()),
                Err(err) if err.is_connect() => Some("connect".into()),
                Err(err) => Some(format!("client: {err}")),
            };
            (due.elapsed(), failure)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = std::collections::BTreeMap::new();
    let mut worst_by_second = vec![Duration::ZERO; seconds as usize];
    for (i, task) in tasks.into_iter().enumerate() {
        let (latency, failure) = task.await.unwrap();
        let second = &mut worst_by_second[i / rate as usize];
        *second = (*second).max(latency);
        latencies.push(latency);
        if let Some(kind) = failure {
            *errors.entry(kind).or_insert(0) += 1;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Run {
        sent: total,
        errors,
        elapsed,
        latencies,
        worst_by_second,
    }
}

fn line(label: &str, rate: u32, run: &Run) {
    println!(
        "  {label:<8} {rate:>6}/s offered  {:>8.0}/s done  p50 {:>6.2} ms  p99 {:>7.2} ms  errors {}",
        run.throughput(),
        run.percentile(0.50),
        run.percentile(0.99),
        run.failed()
    );
    for (kind, count) in &run.errors {
        println!("           {count:>7} × {kind}");
    }
    if std::env::var("BENCH_TIMELINE").is_ok_and(|v| v == "1") {
        let worst = run
            .worst_by_second
            .iter()
            .map(|worst| format!("{:.0}", worst.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ");
        println!("           worst latency of each second (ms): {worst}");
    }
}

fn main() {
    // Warnings of the webhook path (a batch rolled back, say) show beside the figures.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BENCH_LOG")
                .unwrap_or_else(|_| "server::webhooks=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let seconds: u64 = env_or("BENCH_SECONDS", 60);
        let rates: Vec<u32> = std::env::var("BENCH_RATES")
            .unwrap_or_else(|_| "1000,2500,5000".into())
            .split(',')
            .filter_map(|r| r.trim().parse().ok())
            .collect();
        // Two reports per reminder (answered, then completed); every run has its own.
        let requests: usize = rates.iter().map(|&rate| rate as usize * seconds as usize).sum();
        let reminders = requests.div_ceil(2) + 1;
        support::on_each_backend("duecall_bench_webhook", |backend, url| {
            let rates = rates.clone();
            async move {
                let config = server::config::Config::from_lookup(|name| match name {
                    "DATABASE_URL" => Some(url.clone()),
                    "DATABASE_MAX_CONNECTIONS" => Some("16".into()),
                    "DUECALL_WEBHOOK_SECRETS" => Some(SECRET.into()),
                    "DUECALL_LOG" => Some("error".into()),
                    _ => None,
                })
                .unwrap();
                let db = server::connect(&config).await.unwrap();
                let started = Instant::now();
                let calls = Arc::new(seed(&db, reminders).await);
                println!(
                    "[{backend}] {} reminders with a call under way (seeded in {:.1} s); {seconds} s per run",
                    calls.len(),
                    started.elapsed().as_secs_f64()
                );
                // The database alone: transactions of one single-row UPDATE and one INSERT, one
                // after another on the writing connection, as fast as they go.
                let baseline_started = Instant::now();
                let mut done = 0_u32;
                while baseline_started.elapsed() < Duration::from_secs(3) {
                    let (reminder, _) = calls[done as usize % calls.len()];
                    let mut tx = db.begin().await.unwrap();
                    sqlx::query("UPDATE reminders SET updated_at = updated_at + 1 WHERE id = $1")
                        .bind(reminder)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(
                        "INSERT INTO reminder_events (org_id, reminder_id, at, transition, from_status, to_status, actor) \
                         SELECT org_id, id, 0, 'bench', status, status, 'bench' FROM reminders WHERE id = $1",
                    )
                    .bind(reminder)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                    done += 1;
                }
                println!(
                    "[{backend}] baseline: {:.0} transactions/s (one UPDATE + one INSERT each, through the same pool)",
                    f64::from(done) / baseline_started.elapsed().as_secs_f64()
                );
                let router = server::app(server::state(&config, db.clone()), &config);
                let listener = server::listen(([127, 0, 0, 1], 0).into()).unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                let server = tokio::spawn(async move {
                    axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                    )
                    .await
                    .unwrap();
                });
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1024)
                    .build()
                    .unwrap();
                let secret = SecretString::from(SECRET);
                // Each run uses its own reminders: every request is a first report.
                let next = Arc::new(AtomicUsize::new(0));
                for rate in rates {
                    let bare_client = client.clone();
                    let bare_url = format!("{base}/healthz");
                    let bare = open_loop(rate, seconds, move |_| bare_client.get(&bare_url)).await;
                    let (client, calls, secret, next) =
                        (client.clone(), calls.clone(), secret.clone(), next.clone());
                    let url = format!("{base}{CALL_STATUS_PATH}");
                    let first = next.fetch_add(rate as usize * seconds as usize, Ordering::SeqCst);
                    let hook = open_loop(rate, seconds, move |i| {
                        let n = first + i;
                        let (reminder, attempt) = calls[(n / 2) % calls.len()];
                        let event = if n % 2 == 0 { "call_answered" } else { "call_completed" };
                        let body = if n % 2 == 0 {
                            format!(r#"{{"reminder_id":{reminder},"attempt_id":{attempt},"event_type":"{event}"}}"#)
                        } else {
                            format!(
                                r#"{{"reminder_id":{reminder},"attempt_id":{attempt},"event_type":"{event}","outcome":{{"connected":true,"duration":60,"customer_response":"will_pay_today"}}}}"#
                            )
                        };
                        let id = format!("bench_{attempt}_{event}");
                        let headers =
                            sign_standard(&secret, &id, chrono::Utc::now().timestamp(), body.as_bytes())
                                .unwrap();
                        let mut request = client
                            .post(&url)
                            .header("content-type", "application/json");
                        for (name, value) in headers {
                            request = request.header(name, value);
                        }
                        request.body(body)
                    })
                    .await;
                    println!("[{backend}] {rate} requests/s for {seconds} s");
                    line("bare", rate, &bare);
                    line("webhook", rate, &hook);
                    println!(
                        "  webhook throughput = {:.0}% of the bare endpoint's",
                        100.0 * hook.throughput() / bare.throughput()
                    );
                }
                server.abort();
                db.close().await;
            }
        })
        .await;
    });
}
