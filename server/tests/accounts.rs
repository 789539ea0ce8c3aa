//! Sign-up, sign-in, sessions, organizations and roles, on both backends.

mod common;

use common::{PASSWORD, TestApp};
use http::StatusCode;

both_backends! {
    async fn sign_up_creates_an_owner_and_a_secure_session(app: TestApp) {
        let mut client = app.client();
        let res = client
            .call(
                "/api/accounts/sign_up",
                &[("display_name", "Ana Owner"), ("email", " Ana@Example.com "), ("password", PASSWORD), ("org_name", "Acme Ltd")],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let cookie = res
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("duecall_session="))
            .expect("session cookie")
            .to_owned();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http must not set Secure: {cookie}");

        let session = client.session().await;
        assert_eq!(session["user"]["email"], "ana@example.com");
        assert_eq!(session["org"]["name"], "Acme Ltd");
        assert_eq!(session["org"]["role"], "owner");

        let page = client.get("/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Welcome, Ana"), "{}", page.body);
    }

    async fn sign_up_reports_every_bad_field_and_creates_nothing(app: TestApp) {
        let mut client = app.client();
        let res = client
            .call(
                "/api/accounts/sign_up",
                &[("display_name", " "), ("email", "not-an-email"), ("password", "short"), ("org_name", "")],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
        let fields: Vec<String> = res.json()["Validation"]
            .as_array()
            .expect("field errors")
            .iter()
            .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(fields, ["display_name", "email", "password", "org_name"]);
        assert!(client.cookie.is_none());
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(users, 0);
    }

    async fn a_taken_email_cannot_sign_up_again(app: TestApp) {
        app.signed_up("Ana", "ana@example.com", "Acme").await;
        let mut client = app.client();
        let res = client
            .call(
                "/api/accounts/sign_up",
                &[("display_name", "Eve"), ("email", "ANA@example.com"), ("password", "another password"), ("org_name", "Evil")],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
        let orgs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(orgs, 1, "the failed sign-up must not leave an organization behind");
    }

    async fn bad_credentials_get_one_generic_message(app: TestApp) {
        app.signed_up("Ana", "ana@example.com", "Acme").await;
        let mut client = app.client();
        let wrong_password = client
            .call("/api/accounts/sign_in", &[("email", "ana@example.com"), ("password", "wrong password")])
            .await;
        let unknown_email = client
            .call("/api/accounts/sign_in", &[("email", "nobody@example.com"), ("password", PASSWORD)])
            .await;
        assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
        assert_eq!(unknown_email.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong_password.body, unknown_email.body);
        assert!(client.cookie.is_none());

        let ok = client
            .call("/api/accounts/sign_in", &[("email", "ANA@example.com"), ("password", PASSWORD)])
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        assert_eq!(ok.header("location"), Some("/"));
        assert_eq!(client.session().await["user"]["email"], "ana@example.com");
    }

    async fn sign_out_ends_the_session_everywhere(app: TestApp) {
        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let stolen = client.clone();
        let res = client.call("/api/accounts/sign_out", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert!(client.cookie.is_none(), "the cookie is cleared");
        let mut stolen = stolen;
        assert_eq!(stolen.session().await, serde_json::Value::Null, "the old cookie is worthless");
        let page = stolen.get("/settings").await;
        assert_eq!(page.status, StatusCode::FOUND);
        assert_eq!(page.header("location"), Some("/sign-in?next=/settings"));
    }

    async fn sessions_survive_a_restart(app: TestApp) {
        let mut app = app;
        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        app.restart();
        let mut after = app.client();
        after.cookie = client.cookie.take();
        assert_eq!(after.session().await["user"]["email"], "ana@example.com");
    }

    async fn forged_and_expired_cookies_are_visitors(app: TestApp) {
        let mut forged = app.client();
        forged.cookie = Some("duecall_session=AAAAAAAAAAAAAAAAAAAAAA".to_owned());
        assert_eq!(forged.session().await, serde_json::Value::Null);
        forged.cookie = Some("duecall_session=%00'; DROP TABLE users;--".to_owned());
        let page = forged.get("/").await;
        assert_eq!(page.status, StatusCode::FOUND);
        assert_eq!(page.header("location"), Some("/sign-in"));

        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        sqlx::query("UPDATE sessions SET expires_at = 0").execute(app.db.pool()).await.unwrap();
        assert_eq!(client.session().await, serde_json::Value::Null);
    }

    async fn sign_in_is_rate_limited(app: TestApp) {
        let app = app;
        let _ = app;
        let limited = match app.backend {
            common::Backend::Sqlite => TestApp::with_config(common::Backend::Sqlite, &[("DUECALL_SIGN_IN_PER_MINUTE", "3")]).await,
            common::Backend::Postgres => TestApp::with_config(common::Backend::Postgres, &[("DUECALL_SIGN_IN_PER_MINUTE", "3")]).await,
        }
        .expect("backend available");
        let mut client = limited.client();
        for _ in 0..3 {
            let res = client.call("/api/accounts/sign_in", &[("email", "ana@example.com"), ("password", "guess")]).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        }
        let res = client.call("/api/accounts/sign_in", &[("email", "ana@example.com"), ("password", "guess")]).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        assert!(res.body.contains("RateLimited"));
    }

    async fn behind_a_proxy_the_limit_counts_client_addresses(app: TestApp) {
        let proxied = TestApp::with_config(
            app.backend,
            &[("DUECALL_SIGN_IN_PER_MINUTE", "1"), ("DUECALL_CLIENT_IP_HEADER", "x-forwarded-for")],
        )
        .await
        .expect("backend available");
        let attempt = |email: String, client: &'static str| {
            let mut visitor = proxied.client();
            async move {
                let request = http::Request::post("/api/accounts/sign_in")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/json")
                    .header("x-forwarded-for", format!("198.51.100.7, {client}"))
                    .body(axum::body::Body::from(common::form(&[("email", &email), ("password", "guess")])))
                    .unwrap();
                visitor.send(request).await.status
            }
        };
        // Four attempts per client address (four times the per-email quota of one).
        for i in 0..4 {
            assert_eq!(attempt(format!("user{i}@example.com"), "203.0.113.1").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(attempt("user9@example.com".into(), "203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(attempt("user9@example.com".into(), "203.0.113.2").await, StatusCode::UNAUTHORIZED, "another client is not blocked");
    }

    async fn members_can_belong_to_several_organizations_and_switch(app: TestApp) {
        let mut ana = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let acme = ana.org_id().await;
        let res = ana.call("/api/orgs/create", &[("name", "Second Business")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let session = ana.session().await;
        assert_eq!(session["org"]["name"], "Second Business");
        assert_eq!(session["orgs"].as_array().unwrap().len(), 2);

        let res = ana.call("/api/orgs/switch", &[("org_id", &acme.to_string())]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(ana.session().await["org"]["name"], "Acme");
    }

    async fn viewers_cannot_change_anything(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        app.signed_up("Vic", "vic@example.com", "Vic's own").await;
        let res = owner.call("/api/orgs/add_member", &[("email", "vic@example.com"), ("role", "viewer")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let acme = owner.org_id().await;

        let mut vic = app.signed_in("vic@example.com").await;
        let res = vic.call("/api/orgs/switch", &[("org_id", &acme.to_string())]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(vic.session().await["org"]["role"], "viewer");
        let before = app.snapshot("SELECT name, timezone FROM organizations WHERE id = $1", acme).await;
        let members_before = app.snapshot("SELECT user_id, role FROM memberships WHERE org_id = $1 ORDER BY user_id", acme).await;
        let owner_id = owner.user_id().await;

        for (path, fields) in [
            ("/api/orgs/update", vec![("name", "Hijacked"), ("timezone", "UTC")]),
            ("/api/orgs/add_member", vec![("email", "vic@example.com"), ("role", "owner")]),
            ("/api/orgs/change_role", vec![("user_id", owner_id.to_string().leak() as &str), ("role", "viewer")]),
            ("/api/orgs/remove_member", vec![("user_id", owner_id.to_string().leak() as &str)]),
        ] {
            let res = vic.call(path, &fields).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}: {}", res.body);
        }
        assert_eq!(app.snapshot("SELECT name, timezone FROM organizations WHERE id = $1", acme).await, before);
        assert_eq!(app.snapshot("SELECT user_id, role FROM memberships WHERE org_id = $1 ORDER BY user_id", acme).await, members_before);
        // Reading is fine.
        let res = vic.call("/api/orgs/members", &[]).await;
        assert_eq!(res.status, StatusCode::OK);
    }

    async fn an_organization_always_keeps_an_owner(app: TestApp) {
        let mut ana = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let ana_id = ana.user_id().await;
        let res = ana.call("/api/orgs/change_role", &[("user_id", &ana_id.to_string()), ("role", "admin")]).await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
        let res = ana.call("/api/orgs/remove_member", &[("user_id", &ana_id.to_string())]).await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);

        app.signed_up("Bo", "bo@example.com", "Bo's").await;
        ana.call("/api/orgs/add_member", &[("email", "bo@example.com"), ("role", "owner")]).await;
        let res = ana.call("/api/orgs/change_role", &[("user_id", &ana_id.to_string()), ("role", "admin")]).await;
        assert_eq!(res.status, StatusCode::OK, "with a second owner, the first may step down: {}", res.body);
    }

    async fn admins_cannot_touch_owners(app: TestApp) {
        let mut ana = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let ana_id = ana.user_id().await;
        app.signed_up("Adi", "adi@example.com", "Adi's").await;
        ana.call("/api/orgs/add_member", &[("email", "adi@example.com"), ("role", "admin")]).await;
        let acme = ana.org_id().await;
        let mut adi = app.signed_in("adi@example.com").await;
        adi.call("/api/orgs/switch", &[("org_id", &acme.to_string())]).await;
        let res = adi.call("/api/orgs/remove_member", &[("user_id", &ana_id.to_string())]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let adi_id = adi.user_id().await;
        let res = adi.call("/api/orgs/change_role", &[("user_id", &adi_id.to_string()), ("role", "owner")]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "admins cannot make themselves owners");
    }

    async fn settings_validate_the_time_zone(app: TestApp) {
        let mut ana = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let res = ana.call("/api/orgs/update", &[("name", "Acme Trading"), ("timezone", "Mars/Olympus")]).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ana.session().await["org"]["name"], "Acme");
        let res = ana.call("/api/orgs/update", &[("name", "Acme Trading"), ("timezone", "Europe/Berlin")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let session = ana.session().await;
        assert_eq!(session["org"]["name"], "Acme Trading");
        assert_eq!(session["org"]["timezone"], "Europe/Berlin");
        assert_eq!(session["org"]["locale"], "en-GB", "no locale given keeps the current one");
        let res = ana.call("/api/orgs/update", &[("name", "Acme Trading"), ("timezone", "Europe/Berlin"), ("locale", "xx-XX")]).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let res = ana.call("/api/orgs/update", &[("name", "Acme Trading"), ("timezone", "Europe/Berlin"), ("locale", "de-DE")]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(ana.session().await["org"]["locale"], "de-DE");
    }
}
