//! Zoho Books sync figures against the local Zoho (no rate limit): the initial sync of
//! 10,000 contacts and 50,000 invoices (wall time, rows/s), then the API calls of an
//! incremental sync with nothing changed (target: at most 2 list calls per entity) and with
//! 1% changed — on SQLite and PostgreSQL.
//!
//! `cargo bench -p server --bench zoho_sync` (`BENCH_CONTACTS` / `BENCH_INVOICES` resize it).

mod support;

use std::time::Instant;

#[path = "../tests/common/consent.rs"]
mod consent;

use chrono::Duration;

use app::accounts::service::{self, SignUp};
use server::integrations::store;
use server::integrations::sync::{self, RunOutcome, StartedBy};
use server::integrations::zoho::config::{ZohoConfig, local_data_centres};
use server::integrations::zoho::oauth::Accounts;
use server::integrations::{Settings, Zoho};
use server::zoho_fake::{DataCentre, FakeClient, FakeOptions, FakeZoho};

const CLIENT_ID: &str = "1000.BENCH";
const CLIENT_SECRET: &str = "bench-secret";
const REDIRECT: &str = "http://127.0.0.1:9/integrations/zoho/callback";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const USER: &str = "owner@books.example";

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A consent at the fake, as a browser would give it: the authorization code.
async fn grant_code(fake: &FakeZoho) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!(
        "{}/oauth/v2/auth?client_id={CLIENT_ID}&response_type=code&redirect_uri={REDIRECT}\
         &scope=ZohoBooks.contacts.READ,ZohoBooks.invoices.READ,ZohoBooks.invoices.CREATE,ZohoBooks.settings.READ\
         &access_type=offline&prompt=consent&state=bench",
        fake.accounts_url(DataCentre::Us)
    );
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    let (action, fields) = consent::consent_form(&page, "accept");
    let answer = http.post(&action).form(&fields).send().await.unwrap();
    let back = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

fn finished(outcome: RunOutcome) -> sync::RunReport {
    match outcome {
        RunOutcome::Finished(report) => report,
        other => panic!("the sync did not finish: {other:?}"),
    }
}

async fn run(label: &str, url: &str, contacts: usize, invoices: usize) {
    let (fake, _) = FakeZoho::spawn(FakeOptions {
        clients: vec![FakeClient::new(
            CLIENT_ID,
            CLIENT_SECRET,
            "Duecall",
            [REDIRECT],
        )],
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    fake.add_user(USER, DataCentre::Us);
    let books = fake
        .add_organization(USER, "Bench Books", "USD", "UTC", true)
        .unwrap();
    let seeded = Instant::now();
    fake.seed_demo_books(&books, contacts, invoices, 5).unwrap();
    let zoho_invoices = fake.invoices(&books).len();
    let zoho_contacts = fake.contacts(&books).len();
    println!(
        "[{label}] local Zoho seeded with {zoho_contacts} contacts and {zoho_invoices} invoices in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let config = server::config::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.to_owned()),
        "DUECALL_LOG" => Some("error".into()),
        _ => None,
    })
    .unwrap();
    let db = server::connect(&config).await.unwrap();
    let member = service::sign_up(
        &db,
        SignUp {
            display_name: "Bench".into(),
            email: "bench@example.com".into(),
            password: "correct horse battery".into(),
            org_name: "Bench Ltd".into(),
        },
    )
    .await
    .unwrap();
    let keyring =
        app::integrations::crypto::Keyring::new("k1", KEY, "", ["ID", "KEY", "PREVIOUS"]).unwrap();
    let dcs = local_data_centres(&fake.base_url());
    let accounts = Accounts::new(ZohoConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.to_owned().into(),
        redirect_url: REDIRECT.into(),
        accounts_start: fake.accounts_url(DataCentre::Us),
        data_centres: dcs.clone(),
    })
    .unwrap();
    let dc = dcs.iter().find(|dc| dc.location == "us").unwrap().clone();
    let tokens = accounts
        .exchange(&dc, &grant_code(&fake).await)
        .await
        .unwrap();
    store::save_authorization(&db, &keyring, member.org_id, member.user_id, &dc, &tokens)
        .await
        .unwrap();
    store::choose_organization(&db, member.org_id, &books, "Bench Books")
        .await
        .unwrap();
    let zoho = Zoho::new(
        db.clone(),
        keyring,
        accounts,
        Settings {
            requests_per_minute: std::num::NonZeroU32::new(1_000_000).unwrap(),
            detail_calls_per_run: usize::MAX,
            ..Settings::default()
        },
    )
    .unwrap();

    fake.reset_counters();
    let started = Instant::now();
    let report = finished(
        sync::run(&zoho, member.org_id, StartedBy::Connect)
            .await
            .unwrap(),
    );
    let took = started.elapsed().as_secs_f64();
    let rows = report.customers.new + report.invoices.new;
    assert_eq!(report.invoices.new as usize, zoho_invoices);
    println!(
        "[{label}] initial sync: {} customers + {} invoices in {took:.2} s ({:.0} rows/s), {} API calls \
         ({} contact list, {} contact details, {} invoice list)",
        report.customers.new,
        report.invoices.new,
        rows as f64 / took,
        report.api_calls,
        fake.calls("contacts.list"),
        fake.calls("contacts.get"),
        fake.calls("invoices.list"),
    );

    fake.advance_clock(Duration::minutes(10));
    fake.reset_counters();
    let started = Instant::now();
    let report = finished(
        sync::run(&zoho, member.org_id, StartedBy::Schedule)
            .await
            .unwrap(),
    );
    println!(
        "[{label}] incremental sync, nothing changed: {} contact list + {} invoice list calls ({} API calls in all, {:.2} s, {} rows written)",
        fake.calls("contacts.list"),
        fake.calls("invoices.list"),
        report.api_calls,
        started.elapsed().as_secs_f64(),
        report.customers.new
            + report.customers.updated
            + report.invoices.new
            + report.invoices.updated,
    );

    // 1% of each changes at Zoho.
    fake.advance_clock(Duration::minutes(10));
    let all_invoices = fake.invoices(&books);
    for invoice in all_invoices.iter().step_by(100) {
        fake.update_invoice(&books, &invoice.invoice_id, |i| {
            i.balance_minor = (i.balance_minor / 2).max(0);
        })
        .unwrap();
    }
    let all_contacts = fake.contacts(&books);
    for contact in all_contacts.iter().step_by(100) {
        fake.update_contact(&books, &contact.contact_id, |c| {
            c.notes = "changed".into();
        })
        .unwrap();
    }
    fake.reset_counters();
    let started = Instant::now();
    let report = finished(
        sync::run(&zoho, member.org_id, StartedBy::Schedule)
            .await
            .unwrap(),
    );
    println!(
        "[{label}] incremental sync, 1% changed: {} contact list + {} contact details + {} invoice list calls ({} API calls, {:.2} s; {} customers and {} invoices updated)",
        fake.calls("contacts.list"),
        fake.calls("contacts.get"),
        fake.calls("invoices.list"),
        report.api_calls,
        started.elapsed().as_secs_f64(),
        report.customers.updated,
        report.invoices.updated,
    );
    db.close().await;
}

fn main() {
    let contacts = size("BENCH_CONTACTS", 10_000);
    let invoices = size("BENCH_INVOICES", 50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(support::on_each_backend(
        "duecall_zoho_bench",
        |label, url| async move { run(label, &url, contacts, invoices).await },
    ));
}
