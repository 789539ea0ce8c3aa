//! Receivables at scale: 20,000 customers and 100,000 invoices, on SQLite and (when reachable)
//! PostgreSQL. Run with `cargo bench -p server --bench receivables`.
//!
//! Prints, per backend: CSV import throughput (target: 100k invoices in ≤ 10 s), the invoices
//! list query and the rendered invoices page p50/p95 (target p95 ≤ 25 ms), customer search
//! p95, dashboard figures p95, and `/healthz` as the in-run baseline.
//! `BENCH_CUSTOMERS` / `BENCH_INVOICES` change the size.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Request, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use app::accounts::service::{self, SignUp};
use app::receivables::demo_books;
use app::receivables::import::import_csv;
use app::receivables::model::AgingBucket;
use app::receivables::queries;
use app::receivables::views::{CustomerFilter, InvoiceFilter, InvoiceSort};

const PASSWORD: &str = "benchmark password";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |p: f64| ms(samples[((samples.len() as f64 - 1.0) * p).round() as usize]);
    (at(0.50), at(0.95))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The generated books as the two CSV files a user would upload.
fn csv_files(customers: usize, invoices: usize) -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    let (customer_records, invoice_records) = demo_books::generate(customers, invoices, today, 11);
    let mut c = csv::Writer::from_writer(Vec::new());
    c.write_record([
        "customer_id",
        "display_name",
        "company_name",
        "email",
        "currency",
        "billing_country",
        "timezone",
        "contact_name",
        "contact_email",
        "contact_phone",
        "contact_mobile",
    ])
    .unwrap();
    for r in &customer_records {
        let contact = r.contacts.first().cloned().unwrap_or_default();
        c.write_record([
            &r.external_id,
            &r.display_name,
            &r.company_name,
            &r.email,
            r.currency.code(),
            &r.billing_country,
            &r.timezone,
            &contact.name,
            &contact.email,
            &contact.phone,
            &contact.mobile,
        ])
        .unwrap();
    }
    let mut i = csv::Writer::from_writer(Vec::new());
    i.write_record([
        "invoice_id",
        "customer_id",
        "invoice_number",
        "status",
        "issue_date",
        "due_date",
        "currency",
        "total",
        "balance",
    ])
    .unwrap();
    for r in &invoice_records {
        let digits = r.currency.minor_digits();
        let amount = |minor: i64| {
            if digits == 0 {
                minor.to_string()
            } else {
                let scale = 10_i64.pow(digits);
                format!(
                    "{}.{:0w$}",
                    minor / scale,
                    minor % scale,
                    w = digits as usize
                )
            }
        };
        i.write_record([
            &r.external_id,
            &r.customer_external_id,
            &r.number,
            r.status.as_str(),
            &r.issue_date,
            &r.due_date,
            r.currency.code(),
            &amount(r.total_minor),
            &amount(r.balance_minor),
        ])
        .unwrap();
    }
    (
        String::from_utf8(c.into_inner().unwrap()).unwrap(),
        String::from_utf8(i.into_inner().unwrap()).unwrap(),
    )
}

async fn samples<F, Fut, T>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples = Vec::with_capacity(runs);
    for n in 0..runs {
        let started = Instant::now();
        std::hint::black_box(f(n).await);
        samples.push(started.elapsed());
    }
    samples
}

async fn time<F, Fut, T>(runs: usize, f: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    stats(samples(runs, f).await)
}

async fn run(label: &str, url: &str, files: &(String, String), customers: usize, invoices: usize) {
    let config = server::config::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.to_owned()),
        "DUECALL_LOG" => Some("error".into()),
        "DUECALL_SIGN_IN_PER_MINUTE" => Some("1000".into()),
        _ => None,
    })
    .expect("config");
    let db = server::connect(&config).await.expect("database");
    let member = service::sign_up(
        &db,
        SignUp {
            display_name: "Bench".into(),
            email: "bench@example.com".into(),
            password: PASSWORD.into(),
            org_name: "Bench Ltd".into(),
        },
    )
    .await
    .expect("sign up");

    let started = Instant::now();
    let summary = import_csv(
        &db,
        member,
        Some(files.0.as_bytes()),
        Some(files.1.as_bytes()),
    )
    .await
    .expect("import");
    let took = started.elapsed();
    assert_eq!(summary.invoices.new as usize, invoices);
    let rows = customers + invoices;
    println!(
        "[{label}] CSV import: {customers} customers + {invoices} invoices in {:.2} s ({:.0} rows/s)",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    let started = Instant::now();
    let again = import_csv(
        &db,
        member,
        Some(files.0.as_bytes()),
        Some(files.1.as_bytes()),
    )
    .await
    .expect("re-import");
    assert_eq!(again.invoices.unchanged as usize, invoices);
    println!(
        "[{label}] re-import of the same files (all unchanged): {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let router = server::app(server::state(&config, db.clone()), &config);
    let request = Request::post("/api/accounts/sign_in")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(format!(
            "email=bench%40example.com&password={}",
            PASSWORD.replace(' ', "+")
        )))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|p| p.starts_with("duecall_session="))
        })
        .expect("signed in")
        .to_owned();
    let get = |path: String| {
        let router = router.clone();
        let cookie = cookie.clone();
        async move {
            let request = Request::get(&path)
                .header(header::HOST, "localhost")
                .header(header::ACCEPT, "text/html")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .len()
        }
    };

    let filters = [
        InvoiceFilter::default(),
        InvoiceFilter {
            bucket: Some(AgingBucket::Days31To60),
            sort: InvoiceSort::DaysOverdue,
            ..Default::default()
        },
        InvoiceFilter {
            sort: InvoiceSort::Balance,
            currency: "GBP".into(),
            ..Default::default()
        },
        InvoiceFilter {
            q: "inv-2026-0004".into(),
            ..Default::default()
        },
    ];
    let pages = [
        "/invoices",
        "/invoices?bucket=31-60&sort=days_overdue",
        "/invoices?sort=balance&currency=GBP",
        "/invoices?q=inv-2026-0004",
    ];
    let searches = [
        "northwind",
        "smith",
        "billing@",
        "7911",
        "pharmacy",
        "zzz-nobody",
    ];

    let (b50, b95) = time(200, |_| get("/healthz".into())).await;
    // Each filter on its own (query, then rendered page), and all of them together.
    let mut query_samples = Vec::new();
    let mut page_samples = Vec::new();
    for (filter, page) in filters.iter().zip(pages) {
        let query = samples(60, |_| queries::list_invoices(&db, member, filter)).await;
        let render = samples(60, |_| get(page.to_owned())).await;
        let ((q50, q95), (r50, r95)) = (stats(query.clone()), stats(render.clone()));
        println!(
            "[{label}]   {page:<44} query p50 {q50:>6.2} p95 {q95:>6.2} ms · page p50 {r50:>6.2} p95 {r95:>6.2} ms"
        );
        query_samples.extend(query);
        page_samples.extend(render);
    }
    let (q50, q95) = stats(query_samples);
    let (r50, r95) = stats(page_samples);
    let search_filters: Vec<CustomerFilter> = searches
        .iter()
        .map(|q| CustomerFilter {
            q: (*q).into(),
            ..Default::default()
        })
        .collect();
    let (s50, s95) = time(200, |n| {
        queries::list_customers(&db, member, &search_filters[n % search_filters.len()])
    })
    .await;
    let (d50, d95) = time(100, |_| queries::dashboard(&db, member)).await;
    let (c50, c95) = time(100, |_| get("/customers?overdue=1&sort=outstanding".into())).await;
    println!(
        "[{label}] {:<34} p50 {:>7.2} ms   p95 {:>7.2} ms",
        "/healthz (baseline)", b50, b95
    );
    println!(
        "[{label}] {:<34} p50 {:>7.2} ms   p95 {:>7.2} ms   (target p95 ≤ 25 ms)",
        "invoices list query", q50, q95
    );
    println!(
        "[{label}] {:<34} p50 {:>7.2} ms   p95 {:>7.2} ms   (target p95 ≤ 25 ms)",
        "invoices page render", r50, r95
    );
    println!(
        "[{label}] {:<34} p50 {:>7.2} ms   p95 {:>7.2} ms",
        "customer search", s50, s95
    );
    println!(
        "[{label}] {:<34} p50 {:>7.2} ms   p95 {:>7.2} ms",
        "customers page render", c50, c95
    );
    println!(
        "[{label}] {:<34} p50 {:>7.2} ms   p95 {:>7.2} ms",
        "dashboard figures", d50, d95
    );
    db.close().await;
}

fn main() {
    let customers = env_usize("BENCH_CUSTOMERS", 20_000);
    let invoices = env_usize("BENCH_INVOICES", 100_000);
    let files = csv_files(customers, invoices);
    println!(
        "books: {customers} customers ({:.1} MB CSV), {invoices} invoices ({:.1} MB CSV)",
        files.0.len() as f64 / 1e6,
        files.1.len() as f64 / 1e6
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // BENCH_ONLY / BENCH_KEEP: see `support`.
    // BENCH_TRACE=1 prints how long each instrumented step of the import took.
    if std::env::var("BENCH_TRACE").is_ok_and(|v| v == "1") {
        tracing_subscriber::fmt()
            .with_env_filter("app=info")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .init();
    }
    runtime.block_on(support::on_each_backend("duecall_bench", |label, url| {
        let files = &files;
        async move { run(label, &url, files, customers, invoices).await }
    }));
}
