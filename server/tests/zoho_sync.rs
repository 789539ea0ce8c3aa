//! The Zoho Books integration against the local Zoho over real HTTP: the connect flow across
//! data centres, encrypted tokens, first and incremental syncs, a crash in the middle of a
//! pass, rate-limit storms, server errors, timeouts, a revoked token, key rotation, write-back
//! and the push endpoint — on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use http::StatusCode;
use http::header;

use common::{Backend, Client, TestApp};
use server::integrations::store;
use server::integrations::sync::{self, RunOutcome, StartedBy};
use server::integrations::zoho::api::{RetryPolicy, ZohoError};
use server::integrations::zoho::config::{ZohoConfig, local_data_centres};
use server::integrations::zoho::oauth::Accounts;
use server::integrations::{Settings, Zoho};
use server::zoho_fake::{
    DataCentre, FakeClient, FakeContact, FakeInvoiceStatus, FakeOptions, FakeZoho, Fault,
};

const CLIENT_ID: &str = "1000.DUECALLSYNC";
const CLIENT_SECRET: &str = "sync-secret";
const REDIRECT: &str = "http://localhost/integrations/zoho/callback";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const NEW_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const ZOHO_USER: &str = "owner@books.example";

struct Harness {
    app: TestApp,
    fake: FakeZoho,
    zoho: Zoho,
    http: reqwest::Client,
    browser: Client,
    org_id: i64,
    books_org: String,
}

fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_millis(800),
        transient_retries: 3,
        transient_min_delay: Duration::from_millis(10),
        transient_max_delay: Duration::from_millis(50),
        rate_limit_waits: 4,
        max_rate_wait: Duration::from_millis(50),
    }
}

fn zoho_for(app: &TestApp, fake: &FakeZoho, keyring: app::integrations::crypto::Keyring) -> Zoho {
    let dcs = local_data_centres(&fake.base_url());
    let config = ZohoConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.to_owned().into(),
        redirect_url: REDIRECT.into(),
        accounts_start: fake.accounts_url(DataCentre::Us),
        data_centres: dcs,
    };
    let settings = Settings {
        requests_per_minute: std::num::NonZeroU32::new(100_000).unwrap(),
        retry: quick_policy(),
        detail_calls_per_run: 10_000,
        ..Settings::default()
    };
    Zoho::new(
        app.db.clone(),
        keyring,
        Accounts::new(config).unwrap(),
        settings,
    )
    .unwrap()
}

fn keyring(current: (&str, &str), previous: &str) -> app::integrations::crypto::Keyring {
    app::integrations::crypto::Keyring::new(
        current.0,
        current.1,
        previous,
        ["ID", "KEY", "PREVIOUS"],
    )
    .unwrap()
}

fn location(response: &common::TestResponse) -> String {
    response.header("location").expect("a redirect").to_owned()
}

impl Harness {
    /// An app on `backend`, a local Zoho whose user lives in the EU, with one Books
    /// organization of `customers` / `invoices` demo books, and a signed-in Duecall owner.
    async fn new(backend: Backend, customers: usize, invoices: usize) -> Option<Self> {
        let (fake, _) = FakeZoho::spawn(FakeOptions {
            clients: vec![FakeClient::new(
                CLIENT_ID,
                CLIENT_SECRET,
                "Duecall",
                [REDIRECT],
            )],
            start_time: Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap(),
            ..FakeOptions::default()
        })
        .await
        .unwrap();
        fake.add_user(ZOHO_USER, DataCentre::Eu);
        let books_org = fake
            .add_organization(ZOHO_USER, "Northwind Traders", "USD", "Europe/London", true)
            .unwrap();
        fake.add_organization(ZOHO_USER, "Northwind Labs", "EUR", "Europe/Berlin", false)
            .unwrap();
        if customers > 0 {
            fake.seed_demo_books(&books_org, customers, invoices, 3)
                .unwrap();
        }
        let mut app = TestApp::with_config(
            backend,
            &[
                ("DUECALL_ZOHO_CLIENT_ID", CLIENT_ID),
                ("DUECALL_ZOHO_CLIENT_SECRET", CLIENT_SECRET),
                ("DUECALL_ENCRYPTION_KEY", KEY),
                ("DUECALL_PUBLIC_URL", "http://localhost"),
            ],
        )
        .await?;
        let zoho = zoho_for(&app, &fake, keyring(("k1", KEY), ""));
        app.router = server::app_with(
            server::state(&app.config, app.db.clone()),
            &app.config,
            &server::Integrations {
                zoho: Some(zoho.clone()),
                local_zoho: None,
            },
        );
        let mut browser = app
            .signed_up("Owner", "owner@duecall.example", "Northwind")
            .await;
        let org_id = browser.org_id().await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Some(Self {
            app,
            fake,
            zoho,
            http,
            browser,
            org_id,
            books_org,
        })
    }

    /// "Connect Zoho Books", consent at Zoho (redirected to the user's DC), back to Duecall.
    /// Returns where Duecall sent the browser at the end.
    async fn connect(&mut self) -> String {
        let started = self
            .browser
            .post_html_form(
                "/integrations/zoho/connect",
                &[],
                "http://localhost/integrations",
            )
            .await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let authorize = location(&started);
        assert!(
            authorize.starts_with(&self.fake.accounts_url(DataCentre::Us)),
            "{authorize}"
        );
        assert!(authorize.contains("access_type=offline"), "{authorize}");
        // Zoho sends an EU user to the EU accounts server.
        let hop = self.http.get(&authorize).send().await.unwrap();
        assert_eq!(hop.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        let eu = hop.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            eu.starts_with(&self.fake.accounts_url(DataCentre::Eu)),
            "{eu}"
        );
        let page = self
            .http
            .get(&eu)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (action, fields) = common::consent::consent_form(&page, "accept");
        let consent = self.http.post(&action).form(&fields).send().await.unwrap();
        let back = consent.headers()["location"].to_str().unwrap().to_owned();
        let back = back
            .strip_prefix("http://localhost")
            .expect("back to Duecall")
            .to_owned();
        let done = self.browser.get(&back).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        location(&done)
    }

    async fn choose(&mut self, books_org: &str) -> String {
        let chosen = self
            .browser
            .post_html_form(
                "/integrations/zoho/organization",
                &[("organization_id", books_org)],
                "http://localhost/integrations",
            )
            .await;
        assert_eq!(chosen.status, StatusCode::SEE_OTHER, "{}", chosen.body);
        location(&chosen)
    }

    async fn connected(backend: Backend, customers: usize, invoices: usize) -> Option<Self> {
        let mut h = Self::new(backend, customers, invoices).await?;
        assert_eq!(h.connect().await, "/integrations?zoho=choose");
        let books_org = h.books_org.clone();
        assert_eq!(h.choose(&books_org).await, "/integrations?zoho=syncing");
        Some(h)
    }

    async fn sync(&self) -> RunOutcome {
        sync::run(&self.zoho, self.org_id, StartedBy::Manual)
            .await
            .unwrap()
    }

    async fn finished(&self) -> sync::RunReport {
        match self.sync().await {
            RunOutcome::Finished(report) => report,
            other => panic!("expected a finished run, got {other:?}"),
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(self.org_id)
            .fetch_one(self.app.db.pool())
            .await
            .unwrap()
    }

    async fn local_invoices(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM invoices WHERE org_id = $1 AND source = 'zoho'")
            .await
    }

    async fn local_customers(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM customers WHERE org_id = $1 AND source = 'zoho'")
            .await
    }

    async fn connection(&self) -> store::Connection {
        store::connection(&self.app.db, self.org_id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Every stored invoice as `external id|number|status|balance`, sorted.
    async fn invoice_rows(&self) -> Vec<String> {
        self.app
            .snapshot(
                "SELECT external_id, number, status, balance_minor FROM invoices \
                 WHERE org_id = $1 AND source = 'zoho' ORDER BY external_id",
                self.org_id,
            )
            .await
    }

    /// The fake's invoices the same way (customers only).
    fn zoho_rows(&self) -> Vec<String> {
        let mut rows: Vec<String> = self
            .fake
            .invoices(&self.books_org)
            .into_iter()
            .map(|i| {
                let status = match i.status {
                    FakeInvoiceStatus::Draft => "draft",
                    FakeInvoiceStatus::Sent | FakeInvoiceStatus::Viewed => "sent",
                    FakeInvoiceStatus::Overdue => "overdue",
                    FakeInvoiceStatus::PartiallyPaid => "partially_paid",
                    FakeInvoiceStatus::Paid => "paid",
                    FakeInvoiceStatus::Void => "void",
                };
                format!(
                    "{}|{}|{}|{}",
                    i.invoice_id, i.invoice_number, status, i.balance_minor
                )
            })
            .collect();
        rows.sort();
        rows
    }
}

macro_rules! zoho_test {
    ($name:ident, $customers:expr, $invoices:expr, |$h:ident| $body:block) => {
        mod $name {
            use super::*;

            #[allow(unused_mut, reason = "some bodies drive the browser")]
            async fn body(mut $h: Harness) $body

            #[tokio::test]
            async fn sqlite() {
                body(Harness::connected(Backend::Sqlite, $customers, $invoices).await.unwrap()).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(h) = Harness::connected(Backend::Postgres, $customers, $invoices).await {
                    body(h).await;
                }
            }
        }
    };
}

zoho_test!(connect_and_first_sync, 250, 600, |h| {
    let connection = h.connection().await;
    assert_eq!(connection.status, "connected");
    assert_eq!(
        connection.location, "eu",
        "the callback's data centre is used"
    );
    assert_eq!(connection.api_domain, h.fake.api_domain(DataCentre::Eu));
    assert_eq!(connection.external_org_name, "Northwind Traders");
    // Tokens are stored encrypted, never as the tokens themselves.
    for sealed in [
        &connection.refresh_token,
        &connection.access_token,
        &connection.push_secret,
    ] {
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
    }
    let raw: String = sqlx::query_scalar(
        "SELECT refresh_token || access_token FROM integration_connections WHERE org_id = $1",
    )
    .bind(h.org_id)
    .fetch_one(h.app.db.pool())
    .await
    .unwrap();
    assert!(!raw.contains("1000."), "no plain token in the database");

    let report = h.finished().await;
    assert_eq!(
        report.invoices.new as usize,
        h.fake.invoices(&h.books_org).len()
    );
    assert_eq!(
        h.invoice_rows().await,
        h.zoho_rows(),
        "every invoice, as Zoho has it"
    );
    assert_eq!(
        h.local_customers().await as usize,
        h.fake
            .contacts(&h.books_org)
            .iter()
            .filter(|c| c.contact_type == server::zoho_fake::FakeContactType::Customer)
            .count()
    );
    assert_eq!(report.details_pending, 0);
    // Customers who owe money have their contact persons and billing country.
    let owing_without_country = h
        .count("SELECT COUNT(*) FROM customers WHERE org_id = $1 AND source = 'zoho' AND outstanding_minor > 0 AND billing_country = ''")
        .await;
    assert_eq!(owing_without_country, 0);
    // The Integrations page shows the connection healthy.
    let status = h.browser.call("/api/integrations/zoho", &[]).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert_eq!(status.json()["connection"]["health"], "Ok");
    let page = h.browser.get("/integrations").await;
    assert!(
        page.body.contains("data-test=\"zoho-health\""),
        "{}",
        page.body
    );

    // The first sync read every invoice: no reconciliation list on top.
    assert_eq!(
        h.fake.calls("invoices.list") as usize,
        h.fake.invoices(&h.books_org).len().div_ceil(200)
    );

    // Nothing changed: one list call per entity, nothing written.
    h.fake.reset_counters();
    let again = h.finished().await;
    assert_eq!(h.fake.calls("contacts.list"), 1);
    assert_eq!(h.fake.calls("invoices.list"), 1);
    assert_eq!(h.fake.calls("contacts.get"), 0);
    assert_eq!(again.invoices.new + again.invoices.updated, 0);
    assert_eq!(again.customers.new + again.customers.updated, 0);
});

zoho_test!(
    incremental_sync_applies_edits_and_settles_invoices,
    30,
    200,
    |h| {
        h.finished().await;
        let mut events = h.zoho.subscribe();
        h.fake.advance_clock(chrono::Duration::minutes(5));
        let invoices = h.fake.invoices(&h.books_org);
        let open = invoices
            .iter()
            .find(|i| i.status == FakeInvoiceStatus::Overdue)
            .expect("an overdue invoice")
            .clone();
        h.fake
            .update_invoice(&h.books_org, &open.invoice_id, |i| {
                i.status = FakeInvoiceStatus::Paid;
                i.balance_minor = 0;
            })
            .unwrap();
        let customer = h.fake.contacts(&h.books_org)[0].contact_id.clone();
        h.fake
            .update_contact(&h.books_org, &customer, |c| {
                c.contact_name = "Renamed Ltd".into()
            })
            .unwrap();
        let fresh = h
            .fake
            .add_contact(&h.books_org, FakeContact::customer("Brand New Co", "USD"))
            .unwrap();
        h.fake.reset_counters();
        let report = h.finished().await;
        assert_eq!(report.invoices.updated, 1);
        assert!(
            report.customers.new >= 1 && report.customers.updated >= 1,
            "{report:?}"
        );
        assert!(h.fake.calls("invoices.list") <= 2 && h.fake.calls("contacts.list") <= 2);
        assert_eq!(h.invoice_rows().await, h.zoho_rows());
        let name: String = sqlx::query_scalar(
            "SELECT display_name FROM customers WHERE org_id = $1 AND external_id = $2",
        )
        .bind(h.org_id)
        .bind(&customer)
        .fetch_one(h.app.db.pool())
        .await
        .unwrap();
        assert_eq!(name, "Renamed Ltd");
        assert_eq!(
            h.count(&format!(
                "SELECT COUNT(*) FROM customers WHERE org_id = $1 AND external_id = '{fresh}'"
            ))
            .await,
            1
        );
        match events.try_recv() {
            Ok(server::integrations::SyncEvent::InvoicesSettled {
                org_id,
                invoice_ids,
            }) => {
                assert_eq!(org_id, h.org_id);
                assert_eq!(invoice_ids.len(), 1);
            }
            other => panic!("expected a settled event, got {other:?}"),
        }
    }
);

zoho_test!(
    invoices_deleted_in_books_are_removed_by_the_daily_reconciliation,
    30,
    200,
    |h| {
        h.finished().await;
        let mut events = h.zoho.subscribe();
        let doomed = h
            .fake
            .invoices(&h.books_org)
            .into_iter()
            .find(|i| i.status == FakeInvoiceStatus::Overdue)
            .expect("an overdue invoice");
        let local_id: i64 =
            sqlx::query_scalar("SELECT id FROM invoices WHERE org_id = $1 AND external_id = $2")
                .bind(h.org_id)
                .bind(&doomed.invoice_id)
                .fetch_one(h.app.db.pool())
                .await
                .unwrap();
        h.fake
            .delete_invoice(&h.books_org, &doomed.invoice_id)
            .unwrap();

        // Books reports modifications only: an incremental run cannot see the deletion...
        let report = h.finished().await;
        assert_eq!(report.invoices_deleted, 0);
        assert_eq!(
            h.local_invoices().await as usize,
            h.fake.invoices(&h.books_org).len() + 1
        );

        // ...the run after a day compares the open invoices and removes it.
        sqlx::query("UPDATE integration_connections SET reconciled_at = 0 WHERE org_id = $1")
            .bind(h.org_id)
            .execute(h.app.db.pool())
            .await
            .unwrap();
        h.fake.reset_counters();
        let report = h.finished().await;
        assert_eq!(report.invoices_deleted, 1);
        assert_eq!(
            h.fake.calls("invoices.get"),
            1,
            "only the missing invoice is fetched"
        );
        assert_eq!(h.invoice_rows().await, h.zoho_rows());
        // The customer's figures no longer count it.
        let stale_totals = h
            .count(
                "SELECT COUNT(*) FROM customers c WHERE c.org_id = $1 AND c.outstanding_minor <> \
                 (SELECT COALESCE(SUM(i.balance_minor), 0) FROM invoices i WHERE i.customer_id = c.id \
                  AND i.status IN ('sent', 'overdue', 'partially_paid') AND i.currency = c.currency)",
            )
            .await;
        assert_eq!(stale_totals, 0);
        match events.try_recv() {
            Ok(server::integrations::SyncEvent::InvoicesSettled {
                org_id,
                invoice_ids,
            }) => {
                assert_eq!((org_id, invoice_ids), (h.org_id, vec![local_id]));
            }
            other => panic!("expected a settled event, got {other:?}"),
        }

        // The next run within the day lists nothing extra.
        h.fake.reset_counters();
        h.finished().await;
        assert_eq!(h.fake.calls("invoices.list"), 1);
    }
);

zoho_test!(a_local_opt_out_survives_syncs, 10, 20, |h| {
    h.finished().await;
    let customer = h.fake.contacts(&h.books_org)[0].contact_id.clone();
    sqlx::query("UPDATE customers SET opted_out = 1 WHERE org_id = $1 AND external_id = $2")
        .bind(h.org_id)
        .bind(&customer)
        .execute(h.app.db.pool())
        .await
        .unwrap();
    h.fake.advance_clock(chrono::Duration::minutes(5));
    h.fake
        .update_contact(&h.books_org, &customer, |c| {
            c.contact_name = "Renamed Ltd".into()
        })
        .unwrap();
    let report = h.finished().await;
    assert!(report.customers.updated >= 1, "{report:?}");
    let (name, opted_out): (String, i64) = sqlx::query_as(
        "SELECT display_name, opted_out FROM customers WHERE org_id = $1 AND external_id = $2",
    )
    .bind(h.org_id)
    .bind(&customer)
    .fetch_one(h.app.db.pool())
    .await
    .unwrap();
    assert_eq!((name.as_str(), opted_out), ("Renamed Ltd", 1));
});

zoho_test!(
    a_crash_mid_pass_resumes_without_loss_or_duplicates,
    30,
    700,
    |h| {
        // The fourth invoices page fails for good: the run stops after committing three pages.
        h.fake.reset_counters();
        // contacts.list (1) + details + invoices pages: fail the invoice page after three pages by
        // letting calls through and faulting once the first three invoice pages are in.
        let zoho = h.zoho.clone();
        let org = h.org_id;
        let fake = h.fake.clone();
        let watcher = tokio::spawn(async move {
            loop {
                if fake.calls("invoices.list") >= 3 {
                    for _ in 0..10 {
                        fake.inject(Fault::InternalError);
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let first = sync::run(&zoho, org, StartedBy::Manual).await.unwrap();
        watcher.await.unwrap();
        assert!(
            matches!(
                first,
                RunOutcome::Failed {
                    error: ZohoError::Unavailable(_),
                    ..
                }
            ),
            "{first:?}"
        );
        let stored = h.local_invoices().await as usize;
        assert!(
            stored > 0 && stored < 700,
            "part of the invoices are in ({stored})"
        );
        let connection = h.connection().await;
        assert!(
            connection.invoices_pass_page > 1,
            "the pass position is kept"
        );
        assert_eq!(
            connection.invoices_watermark, None,
            "no watermark before a whole pass"
        );
        h.fake.clear_faults();
        let second = h.finished().await;
        assert_eq!(
            h.invoice_rows().await,
            h.zoho_rows(),
            "nothing lost, nothing twice"
        );
        assert!(second.invoices.new as usize >= 700 - stored);
        let status = h.browser.call("/api/integrations/zoho", &[]).await;
        assert_eq!(status.json()["connection"]["health"], "Ok");
    }
);

zoho_test!(
    rate_limits_server_errors_and_timeouts_are_ridden_out,
    10,
    80,
    |h| {
        for _ in 0..3 {
            h.fake.inject(Fault::PerMinuteLimit { reset_seconds: 0 });
        }
        h.fake.inject(Fault::Concurrency { reset_seconds: 0 });
        h.fake.inject(Fault::InternalError);
        h.fake.inject(Fault::Slow(Duration::from_millis(1500)));
        h.fake.inject(Fault::InternalError);
        h.finished().await;
        assert_eq!(h.invoice_rows().await, h.zoho_rows());

        // A storm longer than the policy allows fails the run, keeps the data, and is retried.
        for _ in 0..20 {
            h.fake.inject(Fault::PerMinuteLimit { reset_seconds: 0 });
        }
        match h.sync().await {
            RunOutcome::Failed { error, .. } => assert_eq!(error, ZohoError::RateLimited),
            other => panic!("{other:?}"),
        }
        let status = h.browser.call("/api/integrations/zoho", &[]).await;
        assert_eq!(status.json()["connection"]["health"], "Failing");
        h.fake.clear_faults();
        h.finished().await;
        assert_eq!(h.invoice_rows().await, h.zoho_rows());
    }
);

zoho_test!(the_daily_limit_pauses_until_tomorrow, 5, 20, |h| {
    h.fake.inject(Fault::DailyLimit {
        reset_seconds: 3600,
    });
    match h.sync().await {
        RunOutcome::Failed {
            error: ZohoError::DailyLimit { .. },
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(h.connection().await.paused_until > app::db::time::now_millis());
    assert_eq!(
        h.sync().await,
        RunOutcome::NotReady,
        "no calls while paused"
    );
    let status = h.browser.call("/api/integrations/zoho", &[]).await;
    assert_eq!(status.json()["connection"]["health"], "Paused");
});

zoho_test!(
    expired_tokens_refresh_once_and_revoked_tokens_need_a_reconnect,
    5,
    20,
    |h| {
        h.finished().await;
        h.fake.expire_access_tokens();
        let before = h.fake.token_requests();
        h.finished().await;
        assert_eq!(
            h.fake.token_requests() - before,
            1,
            "one refresh for the whole run"
        );

        h.fake.revoke_all_tokens();
        match h.sync().await {
            RunOutcome::Failed { error, .. } => assert_eq!(error, ZohoError::Unauthorized),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.connection().await.status, "needs_reconnect");
        let status = h.browser.call("/api/integrations/zoho", &[]).await;
        assert_eq!(status.json()["connection"]["health"], "NeedsReconnect");
        assert_eq!(h.sync().await, RunOutcome::NotReady);
        // Reconnecting resumes with the organization already chosen.
        assert_eq!(h.connect().await, "/integrations?zoho=reconnected");
        h.finished().await;
    }
);

zoho_test!(keys_rotate_and_tenants_stay_apart, 5, 20, |h| {
    h.finished().await;
    // Rotate: a new current key, the old one kept for reading.
    let rotated = zoho_for(
        &h.app,
        &h.fake,
        keyring(("k2", NEW_KEY), &format!("k1:{KEY}")),
    );
    h.fake.expire_access_tokens();
    match sync::run(&rotated, h.org_id, StartedBy::Manual)
        .await
        .unwrap()
    {
        RunOutcome::Finished(_) => {}
        other => panic!("{other:?}"),
    }
    let connection = h.connection().await;
    assert!(
        connection.refresh_token.starts_with("v1.k2."),
        "re-sealed on write"
    );
    assert!(connection.access_token.starts_with("v1.k2."));
    // Without the old key the new ring still works (everything was re-sealed).
    let only_new = zoho_for(&h.app, &h.fake, keyring(("k2", NEW_KEY), ""));
    assert!(matches!(
        sync::run(&only_new, h.org_id, StartedBy::Manual)
            .await
            .unwrap(),
        RunOutcome::Finished(_)
    ));

    // Another organization's connection row swapped in does not decrypt for this one.
    let mut other = h
        .app
        .signed_up("Other", "other@duecall.example", "Other Ltd")
        .await;
    let other_org = other.org_id().await;
    sqlx::query(
        "INSERT INTO integration_connections (org_id, provider, status, location, accounts_server, \
           api_domain, external_org_id, refresh_token, access_token, access_expires_at, push_secret, created_at, updated_at) \
         SELECT $2, provider, status, location, accounts_server, api_domain, external_org_id, refresh_token, \
           access_token, access_expires_at, push_secret, created_at, updated_at \
         FROM integration_connections WHERE org_id = $1",
    )
    .bind(h.org_id)
    .bind(other_org)
    .execute(h.app.db.pool())
    .await
    .unwrap();
    let calls = h.fake.api_calls().values().sum::<u64>();
    match sync::run(&only_new, other_org, StartedBy::Manual)
        .await
        .unwrap()
    {
        RunOutcome::Failed { error, .. } => assert_eq!(error, ZohoError::Unauthorized),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.fake.api_calls().values().sum::<u64>(),
        calls,
        "no call made with another org's token"
    );
    // The other organization sees nothing of this one's connection.
    let status = other.call("/api/integrations/zoho", &[]).await;
    assert_eq!(status.json()["connection"]["status"], "needs_reconnect");
});

zoho_test!(
    write_back_survives_outages_and_push_triggers_a_sync,
    5,
    20,
    |h| {
        h.finished().await;
        let invoice_id: i64 = sqlx::query_scalar(
            "SELECT id FROM invoices WHERE org_id = $1 AND source = 'zoho' ORDER BY id LIMIT 1",
        )
        .bind(h.org_id)
        .fetch_one(h.app.db.pool())
        .await
        .unwrap();
        let external: String = sqlx::query_scalar("SELECT external_id FROM invoices WHERE id = $1")
            .bind(invoice_id)
            .fetch_one(h.app.db.pool())
            .await
            .unwrap();
        let job = server::integrations::writeback::enqueue_now(
            &h.app.db,
            h.org_id,
            invoice_id,
            "Call: customer promised to pay on the 30th.",
            chrono::NaiveDate::from_ymd_opt(2026, 3, 30),
        )
        .await
        .unwrap();
        for _ in 0..10 {
            h.fake.inject(Fault::InternalError);
        }
        assert_eq!(
            server::integrations::writeback::deliver_due(&h.zoho)
                .await
                .unwrap(),
            0
        );
        let (status, attempts): (String, i64) =
            sqlx::query_as("SELECT status, attempts FROM writeback_jobs WHERE id = $1")
                .bind(job)
                .fetch_one(h.app.db.pool())
                .await
                .unwrap();
        assert_eq!(
            (status.as_str(), attempts),
            ("pending", 1),
            "kept for a retry"
        );
        h.fake.clear_faults();
        sqlx::query("UPDATE writeback_jobs SET next_attempt_at = 0 WHERE id = $1")
            .bind(job)
            .execute(h.app.db.pool())
            .await
            .unwrap();
        assert_eq!(
            server::integrations::writeback::deliver_due(&h.zoho)
                .await
                .unwrap(),
            1
        );
        let comments = h.fake.comments(&h.books_org, &external);
        assert_eq!(comments.len(), 1);
        assert!(comments[0].description.contains("promised"));
        assert_eq!(
            h.fake
                .invoice(&h.books_org, &external)
                .unwrap()
                .payment_expected_date,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 30)
        );

        // Push: the wrong secret is refused, the right one queues a sync.
        let secret = h
            .zoho
            .keyring
            .open(
                h.org_id,
                store::PUSH_SECRET,
                &h.connection().await.push_secret,
            )
            .unwrap()
            .secret;
        let path = format!("/webhooks/zoho/{}", h.org_id);
        let mut anonymous = h.app.client();
        let wrong = anonymous
            .send(
                http::Request::post(&path)
                    .header("x-duecall-secret", "nope")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        sqlx::query(
            "UPDATE integration_connections SET next_sync_at = 9999999999999 WHERE org_id = $1",
        )
        .bind(h.org_id)
        .execute(h.app.db.pool())
        .await
        .unwrap();
        use secrecy::ExposeSecret;
        let right = anonymous
            .send(
                http::Request::post(&path)
                    .header("x-duecall-secret", secret.expose_secret())
                    .header(header::CONTENT_LENGTH, 0)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(right.status, StatusCode::ACCEPTED, "{}", right.body);
        let connection = h.connection().await;
        assert_eq!(connection.next_sync_at, 0, "a sync is due now");

        // Disconnect revokes at Zoho and forgets the tokens; synced data stays.
        let gone = h
            .browser
            .post_html_form(
                "/integrations/zoho/disconnect",
                &[],
                "http://localhost/integrations",
            )
            .await;
        assert_eq!(location(&gone), "/integrations?zoho=disconnected");
        assert!(
            store::connection(&h.app.db, h.org_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(h.local_invoices().await > 0);
    }
);

zoho_test!(
    a_stale_sync_refreshes_the_invoice_before_a_call,
    20,
    80,
    |h| {
        h.finished().await;
        let paid = h
            .fake
            .invoices(&h.books_org)
            .into_iter()
            .find(|i| i.status == FakeInvoiceStatus::Overdue)
            .expect("an overdue invoice");
        let local_id: i64 =
            sqlx::query_scalar("SELECT id FROM invoices WHERE org_id = $1 AND external_id = $2")
                .bind(h.org_id)
                .bind(&paid.invoice_id)
                .fetch_one(h.app.db.pool())
                .await
                .unwrap();
        // Paid in Books after the last sync.
        h.fake
            .update_invoice(&h.books_org, &paid.invoice_id, |i| {
                i.status = FakeInvoiceStatus::Paid;
                i.balance_minor = 0;
            })
            .unwrap();
        // A fresh sync is trusted: nothing is fetched.
        h.fake.reset_counters();
        assert!(
            !sync::refresh_invoice(&h.zoho, h.org_id, local_id)
                .await
                .unwrap()
        );
        assert_eq!(h.fake.calls("invoices.get"), 0);
        // Once the last sync is older than the threshold, the invoice is fetched and stored.
        sqlx::query("UPDATE integration_connections SET last_success_at = $2 WHERE org_id = $1")
            .bind(h.org_id)
            .bind(app::db::time::now_millis() - sync::FRESH_FOR.as_millis() as i64 - 1_000)
            .execute(h.app.db.pool())
            .await
            .unwrap();
        assert!(
            sync::refresh_invoice(&h.zoho, h.org_id, local_id)
                .await
                .unwrap()
        );
        assert_eq!(h.fake.calls("invoices.get"), 1);
        let status: String = sqlx::query_scalar("SELECT status FROM invoices WHERE id = $1")
            .bind(local_id)
            .fetch_one(h.app.db.pool())
            .await
            .unwrap();
        assert_eq!(status, "paid");
        // Books down: the refresh fails, and the scheduler holds the call on that (its test is
        // in the scheduler tests); here, the error is Zoho's.
        h.fake.inject_n(server::zoho_fake::Fault::InternalError, 10);
        assert!(
            sync::refresh_invoice(&h.zoho, h.org_id, local_id)
                .await
                .is_err()
        );
    }
);
