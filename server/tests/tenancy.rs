//! The tenancy sweep: a member of organization A calls every server function and opens every
//! page, aiming at organization B's data. Nothing of B may appear in any answer, and B's rows
//! must be byte-for-byte the same afterwards.
//!
//! B is created first, so a query that lost its organization filter tends to find B's rows
//! before A's, and the sweep notices.

mod common;

use std::collections::BTreeSet;

use common::{Client, TestApp, TestResponse};
use http::StatusCode;

/// Text that only organization B's data contains.
const MARKER: &str = "zqbsecret";

/// Everything of B's, read straight from the database.
async fn snapshot_b(app: &TestApp, b: i64) -> Vec<Vec<String>> {
    vec![
        app.snapshot("SELECT id, name, timezone, default_currency, is_demo, created_at FROM organizations WHERE id = $1", b).await,
        app.snapshot("SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = $1 ORDER BY user_id", b).await,
        app.snapshot("SELECT id, org_id, actor_user_id, action, detail, created_at FROM audit_events WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot(
            "SELECT u.id, u.email, u.display_name, u.password_hash FROM users u \
             JOIN memberships m ON m.user_id = u.id WHERE m.org_id = $1 ORDER BY u.id",
            b,
        )
        .await,
        app.snapshot("SELECT * FROM customers WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot("SELECT * FROM contact_persons WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot("SELECT * FROM invoices WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot("SELECT * FROM business_profiles WHERE org_id = $1", b).await,
        app.snapshot("SELECT * FROM reminders WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot("SELECT * FROM reminder_events WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot("SELECT * FROM call_attempts WHERE org_id = $1 ORDER BY id", b).await,
        app.snapshot("SELECT * FROM webhook_events WHERE org_id = $1 ORDER BY id", b).await,
    ]
}

fn assert_no_leak(path: &str, res: &TestResponse) {
    assert!(
        !res.body.to_lowercase().contains(MARKER),
        "{path} leaked organization B's data: {}",
        res.body
    );
}

struct Sweep {
    covered: BTreeSet<String>,
}

impl Sweep {
    async fn upload(
        &mut self,
        client: &mut Client,
        path: &str,
        files: &[(&str, &str, &[u8])],
    ) -> TestResponse {
        self.covered.insert(path.to_owned());
        let res = client.call_multipart(path, files).await;
        assert_no_leak(path, &res);
        res
    }

    async fn call(
        &mut self,
        client: &mut Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        self.covered.insert(path.to_owned());
        let res = client.call(path, fields).await;
        assert_no_leak(path, &res);
        res
    }
}

both_backends! {
    async fn a_member_of_a_can_neither_see_nor_change_b(app: TestApp) {
        // Organization B, first: an owner and a member, names carrying the marker.
        let mut b_owner = app.signed_up("Zqbsecret Owner", "owner@zqbsecret.example", "Zqbsecret Holdings").await;
        let b = b_owner.org_id().await;
        let b_owner_id = b_owner.user_id().await;
        app.signed_up("Zqbsecret Member", "member@zqbsecret.example", "Zqbsecret Member's own").await;
        let res = b_owner.call("/api/orgs/add_member", &[("email", "member@zqbsecret.example"), ("role", "member")]).await;
        assert_eq!(res.status, StatusCode::OK);
        let mut b_member = app.signed_in("member@zqbsecret.example").await;
        let b_member_id = b_member.user_id().await;
        b_owner.call("/api/orgs/update", &[("name", "Zqbsecret Holdings"), ("timezone", "Asia/Tokyo")]).await;
        // B's receivables, with the marker in every text a page could show.
        let b_member_ctx = app::accounts::service::switch_org(&app.db, b_owner_id, b).await.unwrap();
        app::receivables::import::import_csv(
            &app.db,
            b_member_ctx,
            Some(b"customer_id,display_name,company_name,email,currency,billing_country,contact_name,contact_mobile\n\
                   ZQB-1,Zqbsecret Customer,Zqbsecret Co,pay@zqbsecret.example,GBP,GB,Zqbsecret Contact,07911 123456\n"),
            Some(b"invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance\n\
                   ZQB-I1,ZQB-1,ZQBSECRET-001,overdue,2026-01-01,2026-02-01,GBP,990.00,990.00\n"),
        )
        .await
        .unwrap();

        // B's calling rules (named with the marker) and its reminders.
        let mut b_rules = app::reminders::service::profile(&app.db, b_member_ctx).await.unwrap();
        b_rules.caller_identity = "Zqbsecret Calls".into();
        b_rules.sequence = vec![app::reminders::profile::SequenceStep { offset_days: 35, channel: app::reminders::profile::Channel::Call }];
        app::reminders::service::save_profile(&app.db, b_member_ctx, &b_rules).await.unwrap();
        app::reminders::generate::generate(&app.db, b, chrono::Utc::now()).await.unwrap();

        // Organization A: one owner (the attacker) and one colleague.
        let mut a = app.signed_up("Alice Attacker", "alice@a.example", "Alpha Trading").await;
        let a_org = a.org_id().await;
        let alice = a.user_id().await;
        app.signed_up("Carl Colleague", "carl@a.example", "Carl's own").await;
        a.call("/api/orgs/add_member", &[("email", "carl@a.example"), ("role", "member")]).await;
        // The Zqbsecret member's own organization must not be confused with B either.
        let _ = b_member.call("/api/orgs/switch", &[("org_id", &b.to_string())]).await;

        let before = snapshot_b(&app, b).await;
        let mut sweep = Sweep { covered: BTreeSet::new() };
        let b_id = b.to_string();
        let b_owner_s = b_owner_id.to_string();
        let b_member_s = b_member_id.to_string();

        // Reading: only A's data comes back.
        let res = sweep.call(&mut a, "/api/accounts/session", &[]).await;
        assert_eq!(res.json()["org"]["id"], a_org);
        let orgs: Vec<i64> = res.json()["orgs"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
        assert_eq!(orgs, vec![a_org]);
        let res = sweep.call(&mut a, "/api/orgs/members", &[]).await;
        let mut ids: Vec<i64> = res.json().as_array().unwrap().iter().map(|m| m["user_id"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids.len(), 2, "only Alice and Carl: {}", res.body);
        assert!(ids.contains(&alice));

        // Switching into B is refused and the session stays in A.
        let res = sweep.call(&mut a, "/api/orgs/switch", &[("org_id", &b_id)]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(a.org_id().await, a_org);

        // B's people cannot be managed from A.
        for (path, fields) in [
            ("/api/orgs/change_role", vec![("user_id", b_owner_s.as_str()), ("role", "viewer")]),
            ("/api/orgs/change_role", vec![("user_id", b_member_s.as_str()), ("role", "owner")]),
            ("/api/orgs/remove_member", vec![("user_id", b_owner_s.as_str())]),
            ("/api/orgs/remove_member", vec![("user_id", b_member_s.as_str())]),
        ] {
            let res = sweep.call(&mut a, path, &fields).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{path} {fields:?}: {}", res.body);
        }

        // A's last owner cannot step down, however many owners B has.
        let res = sweep.call(&mut a, "/api/orgs/change_role", &[("user_id", &alice.to_string()), ("role", "admin")]).await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);

        // Someone who belongs to both: changes in A leave their B membership alone.
        let res = sweep.call(&mut a, "/api/orgs/add_member", &[("email", "member@zqbsecret.example"), ("role", "viewer")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = sweep.call(&mut a, "/api/orgs/change_role", &[("user_id", &b_member_s), ("role", "admin")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = sweep.call(&mut a, "/api/orgs/remove_member", &[("user_id", &b_member_s)]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);

        // Settings and new organizations touch A (or nothing else) only.
        let res = sweep.call(&mut a, "/api/orgs/update", &[("name", "Alpha Trading Ltd"), ("timezone", "Europe/Paris")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = sweep.call(&mut a, "/api/orgs/create", &[("name", "Alpha Two")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = sweep.call(&mut a, "/api/orgs/switch", &[("org_id", &a_org.to_string())]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = sweep.call(&mut a, "/api/preferences/theme", &[("theme", "dark")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);

        // Account endpoints aimed at B's people.
        let mut visitor = app.client();
        let res = sweep.call(&mut visitor, "/api/accounts/sign_in", &[("email", "owner@zqbsecret.example"), ("password", "guessing wrong")]).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        let res = sweep
            .call(
                &mut visitor,
                "/api/accounts/sign_up",
                &[("display_name", "Mallory"), ("email", "owner@zqbsecret.example"), ("password", "takeover attempt"), ("org_name", "Mal")],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);

        // Receivables: lists, details, dashboard and import, aimed at B's records.
        let b_customer: i64 = sqlx::query_scalar("SELECT id FROM customers WHERE org_id = $1").bind(b).fetch_one(app.db.pool()).await.unwrap();
        let b_invoice: i64 = sqlx::query_scalar("SELECT id FROM invoices WHERE org_id = $1").bind(b).fetch_one(app.db.pool()).await.unwrap();
        let (b_customer_s, b_invoice_s) = (b_customer.to_string(), b_invoice.to_string());
        for fields in [vec![("filter[q]", "")], vec![("filter[q]", "zqbsecret")], vec![("filter[country]", "GB"), ("filter[overdue_only]", "true")]] {
            let res = sweep.call(&mut a, "/api/receivables/customers", &fields).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(res.json()["rows"], serde_json::json!([]));
            assert_eq!(res.json()["countries"], serde_json::json!([]), "B's countries");
        }
        for fields in [vec![("filter[sort]", "balance")], vec![("filter[customer_id]", b_customer_s.as_str())], vec![("filter[q]", "ZQBSECRET-001")]] {
            let res = sweep.call(&mut a, "/api/receivables/invoices", &fields).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(res.json()["rows"], serde_json::json!([]));
            assert_eq!(res.json()["totals"], serde_json::json!([]), "B's totals");
            assert_eq!(res.json()["currencies"], serde_json::json!([]), "B's currencies");
        }
        let res = sweep.call(&mut a, "/api/receivables/customer", &[("id", &b_customer_s)]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        let res = sweep.call(&mut a, "/api/receivables/invoice", &[("id", &b_invoice_s)]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        let res = sweep.call(&mut a, "/api/receivables/dashboard", &[]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json()["customers"], 0);
        assert_eq!(res.json()["currencies"], serde_json::json!([]));
        assert_eq!(res.json()["top_overdue"], serde_json::json!([]));
        // Reminders: A sees and moves only its own.
        let b_reminder: i64 = sqlx::query_scalar("SELECT id FROM reminders WHERE org_id = $1").bind(b).fetch_one(app.db.pool()).await.unwrap();
        let b_reminder_s = b_reminder.to_string();
        for status in ["", "all", "pending"] {
            let res = sweep.call(&mut a, "/api/reminders/list", &[("filter[status]", status)]).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(res.json()["rows"], serde_json::json!([]));
            assert_eq!(res.json()["counts"], serde_json::json!([]), "B's counts");
        }
        let res = sweep.call(&mut a, "/api/reminders/get", &[("id", &b_reminder_s)]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        for action in ["pause", "cancel", "call_now", "dispute", "opt_out"] {
            let res = sweep.call(&mut a, "/api/reminders/act", &[("id", &b_reminder_s), ("action", action), ("reason", "x")]).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{action}: {}", res.body);
        }
        let res = sweep.call(&mut a, "/api/reminders/calendar", &[("days", "30")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["open_invoices"], 0);
        let res = sweep.call(&mut a, "/api/reminders/rules", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["business_name"], "Alpha Trading Ltd");
        let rules: Vec<(String, String)> = app::reminders::profile::ProfileForm::from_profile(
            &app::reminders::profile::BusinessProfile::new("Alpha Trading", "Europe/London"),
        )
        .fields()
        .into_iter()
        .map(|(k, v)| (format!("form[{k}]"), if k == "caller_identity" { "Alpha calls".to_owned() } else { v }))
        .collect();
        let fields: Vec<(&str, &str)> = rules.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = sweep.call(&mut a, "/api/reminders/save_rules", &fields).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let res = sweep.call(&mut a, "/api/reminders/switch", &[("enabled", "true")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);

        // Calls: B's call (a dispute, in the needs-a-human queue) stays B's.
        assert_eq!(snapshot_b(&app, b).await, before, "organization B's data changed");
        let b_attempt: i64 = sqlx::query_scalar(
            "INSERT INTO call_attempts (org_id, reminder_id, invoice_id, customer_id, attempt_no, phone_e164, \
               status, connected, dialled_at, ended_at, outcome, response, notes, provider, context) \
             VALUES ($1, $2, $3, $4, 1, '+447911123456', 'completed', 1, $5, $5, 'dispute', 'dispute', \
               'Zqbsecret notes', 'simulator', '{\"script\":\"Zqbsecret script\",\"balance_minor\":99000}') RETURNING id",
        )
        .bind(b)
        .bind(b_reminder)
        .bind(b_invoice)
        .bind(b_customer)
        .bind(app::db::time::now_millis())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        sqlx::query("UPDATE invoices SET review = 'dispute', review_note = 'Zqbsecret dispute', review_at = 1 WHERE id = $1")
            .bind(b_invoice)
            .execute(app.db.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO webhook_events (source, delivery_key, org_id, reminder_id, attempt_id, event_type, status_code, result, headers, body, received_at) \
             VALUES ('call_status', 'id:zqb', $1, $2, $3, 'call_completed', 200, 'Zqbsecret result', '{}', '{\"notes\":\"zqbsecret\"}', 1)",
        )
        .bind(b)
        .bind(b_reminder)
        .bind(b_attempt)
        .execute(app.db.pool())
        .await
        .unwrap();
        let before = snapshot_b(&app, b).await;
        let b_attempt_s = b_attempt.to_string();
        for fields in [vec![("filter[outcome]", "")], vec![("filter[outcome]", "dispute")], vec![("filter[outcome]", "live")], vec![("filter[from]", "2020-01-01"), ("filter[to]", "2030-01-01")]] {
            let res = sweep.call(&mut a, "/api/calls/list", &fields).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert_eq!(res.json()["rows"], serde_json::json!([]));
            assert_eq!(res.json()["live"], 0);
        }
        let res = sweep.call(&mut a, "/api/calls/list", &[("filter[customer]", &b_customer_s)]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
        let res = sweep.call(&mut a, "/api/calls/get", &[("id", &b_attempt_s)]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        let res = sweep.call(&mut a, "/api/calls/review", &[]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json(), serde_json::json!([]));
        for action in ["settled", "upheld", "confirmed", "not_paid"] {
            let res = sweep.call(&mut a, "/api/calls/resolve", &[("invoice_id", &b_invoice_s), ("action", action)]).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{action}: {}", res.body);
        }
        let res = sweep.call(&mut a, "/api/calls/kpis", &[]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!((res.json()["calls_today"].clone(), res.json()["needs_human"].clone(), res.json()["promises"].clone()), (0.into(), 0.into(), 0.into()));
        for page in [format!("/calls/{b_attempt}")] {
            let res = a.get(&page).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{page}");
            assert_no_leak(&page, &res);
        }
        for page in ["/calls/review".to_owned(), format!("/calls?customer={b_customer}"), "/calls?outcome=dispute".to_owned()] {
            let res = a.get(&page).await;
            assert_no_leak(&page, &res);
        }

        // B's Zoho Books connection (and a sync run) stays B's.
        sqlx::query(
            "INSERT INTO integration_connections (org_id, provider, status, location, accounts_server, api_domain, \
               external_org_id, external_org_name, available_orgs, refresh_token, push_secret, created_at, updated_at) \
             VALUES ($1, 'zoho_books', 'connected', 'eu', 'https://accounts.zoho.eu', 'https://www.zohoapis.eu', \
               '9001', 'Zqbsecret Books', '[{\"id\":\"9001\",\"name\":\"Zqbsecret Books\",\"currency\":\"GBP\",\"is_default\":true}]', \
               'v1.k1.zqbsecret', 'v1.k1.zqbsecret', 0, 0)",
        )
        .bind(b)
        .execute(app.db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO sync_runs (org_id, provider, started_by, status, error, started_at, heartbeat_at) \
             VALUES ($1, 'zoho_books', 'manual', 'failed', 'Zqbsecret failure', 0, 0)",
        )
        .bind(b)
        .execute(app.db.pool())
        .await
        .unwrap();
        let res = sweep.call(&mut a, "/api/integrations/zoho", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["connection"], serde_json::Value::Null);
        // Importing B's external ids into A creates A's own records.
        let res = sweep
            .upload(&mut a, "/api/receivables/import", &[(
                "customers",
                "customers.csv",
                b"customer_id,display_name,currency\nZQB-1,Alpha's customer,GBP\n",
            )])
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.json()["customers"]["new"], 1);
        for page in [format!("/customers/{b_customer}"), format!("/invoices/{b_invoice}"), format!("/reminders/{b_reminder}")] {
            let res = a.get(&page).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{page}");
            assert_no_leak(&page, &res);
        }

        // The CSV downloads: A's exports hold none of B's rows, whatever the filter.
        for path in [
            "/export/customers.csv".to_owned(),
            "/export/customers.csv?q=zqbsecret&country=GB".to_owned(),
            "/export/invoices.csv".to_owned(),
            format!("/export/invoices.csv?customer={b_customer}"),
            "/export/invoices.csv?q=ZQBSECRET-001".to_owned(),
        ] {
            let res = a.get(&path).await;
            assert_eq!(res.status, StatusCode::OK, "{path}");
            assert_eq!(res.header("content-type"), Some("text/csv; charset=utf-8"));
            assert_no_leak(&path, &res);
        }
        for path in ["/import/templates/customers.csv", "/import/templates/invoices.csv"] {
            let res = a.get(path).await;
            assert_eq!(res.status, StatusCode::OK, "{path}");
            assert_no_leak(path, &res);
        }
        let res = app.client().get("/export/invoices.csv").await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "a visitor is sent to sign in");
        assert_eq!(res.header("location"), Some("/sign-in?next=/invoices"));

        // Every page, as A.
        for page in ["/", "/customers", "/invoices", "/reminders", "/reminders/calendar", "/settings/calling", "/calls", "/analytics", "/assistant", "/integrations", "/settings"] {
            let res = a.get(page).await;
            assert_eq!(res.status, StatusCode::OK, "{page}");
            assert_no_leak(page, &res);
        }
        let res = sweep.call(&mut a, "/api/accounts/sign_out", &[]).await;
        assert_eq!(res.status, StatusCode::OK);

        assert_eq!(snapshot_b(&app, b).await, before, "organization B's data changed");

        // The sweep covers every server function there is: a new one must be added here.
        let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
            .map(|(path, _)| path.to_owned())
            .collect();
        let missing: Vec<_> = registered.difference(&sweep.covered).collect();
        assert!(missing.is_empty(), "server functions not covered by the tenancy sweep: {missing:?}");
    }
}
