//! Start-up and page-shell figures: run with `scripts/bench` (or `cargo bench -p server --bench
//! shell` after `cargo leptos build --release`).
//!
//! Prints:
//! - the release WASM size, raw and brotli-compressed, against the 450 KB brotli budget;
//! - server render time of the signed-in dashboard shell, p50/p95 over 1,000 requests, next to
//!   the same figures for `/healthz` as the in-run baseline (the ratio is what to watch);
//! - resident memory of the release binary right after start-up.
//!
//! Exits non-zero when the WASM budget is exceeded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Request, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

const WASM_BUDGET_BROTLI: usize = 450 * 1024;
const REQUESTS: usize = 1_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn wasm_sizes() -> Option<(usize, usize)> {
    let site = std::env::var("DUECALL_SITE_ROOT")
        .map_or_else(|_| root().join("target/site"), PathBuf::from);
    let wasm = std::fs::read(site.join("pkg/duecall.wasm")).ok()?;
    let mut compressed = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut compressed, 64 * 1024, 11, 22);
        writer.write_all(&wasm).ok()?;
    }
    Some((wasm.len(), compressed.len()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn timings(router: &axum::Router, path: &str, cookie: &str) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let request = Request::get(path)
            .header(header::HOST, "localhost")
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("request");
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        samples.push(started.elapsed());
        assert!(!body.is_empty());
    }
    samples.sort_unstable();
    (percentile(&samples, 0.50), percentile(&samples, 0.95))
}

async fn render_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let config = server::config::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "DUECALL_LOG" => Some("error".into()),
        _ => None,
    })
    .expect("config");
    let db = server::connect(&config).await.expect("database");
    server::demo::load(&db).await.expect("demo");
    let router = server::app(server::state(&config, db), &config);

    let body = format!(
        "email={}&password={}",
        server::demo::DEMO_EMAIL,
        server::demo::DEMO_PASSWORD
    );
    let request = Request::post("/api/accounts/sign_in")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("duecall_session="))
        .and_then(|c| c.split(';').next())
        .expect("signed in")
        .to_owned();

    // Warm up caches and the pool before measuring.
    let _ = timings(&router, "/", &cookie).await;
    let (base_p50, base_p95) = timings(&router, "/healthz", &cookie).await;
    let (p50, p95) = timings(&router, "/", &cookie).await;
    println!("dashboard shell render ({REQUESTS} requests, in process, SQLite):");
    println!(
        "  /         p50 {:>8.3} ms   p95 {:>8.3} ms",
        ms(p50),
        ms(p95)
    );
    println!(
        "  /healthz  p50 {:>8.3} ms   p95 {:>8.3} ms   (baseline)",
        ms(base_p50),
        ms(base_p95)
    );
    println!(
        "  ratio     p50 {:>8.1}x     p95 {:>8.1}x",
        ms(p50) / ms(base_p50).max(1e-6),
        ms(p95) / ms(base_p95).max(1e-6)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

fn rss_after_startup() -> Option<(u64, Duration)> {
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root().join("target"), PathBuf::from);
    let bin =
        std::env::var("DUECALL_BIN").map_or_else(|_| target.join("release/duecall"), PathBuf::from);
    if !bin.exists() {
        println!(
            "server RSS: skipped, {} not built (run cargo leptos build --release)",
            bin.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let started = Instant::now();
    let mut child = Command::new(&bin)
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/rss.db", dir.path().display()),
        )
        .env("DUECALL_ADDR", format!("127.0.0.1:{port}"))
        .env("DUECALL_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_ok(port, "/readyz") {
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready_after = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let _ = child.kill();
    let _ = child.wait();
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kb, ready_after))
}

fn main() {
    let mut over_budget = false;
    match wasm_sizes() {
        Some((raw, brotli)) => {
            over_budget = brotli > WASM_BUDGET_BROTLI;
            println!(
                "release WASM: {} raw, {} brotli (budget {}) {}",
                kib(raw),
                kib(brotli),
                kib(WASM_BUDGET_BROTLI),
                if over_budget { "OVER BUDGET" } else { "ok" }
            );
        }
        None => println!("release WASM: not found (run cargo leptos build --release first)"),
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(render_figures());

    if let Some((kb, ready_after)) = rss_after_startup() {
        println!(
            "server RSS after start-up: {:.1} MiB (ready in {} ms)",
            kb as f64 / 1024.0,
            ready_after.as_millis()
        );
    }
    if over_budget {
        std::process::exit(1);
    }
}
