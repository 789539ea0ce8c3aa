//! The HTTP surface: probes, security headers, and bad input of every kind: each gets a clear
//! 4xx or a friendly page and changes nothing.

mod common;

use axum::body::Body;
use common::{PASSWORD, TestApp, form};
use http::{Request, StatusCode, header};

/// A body of unknown length, as a chunked upload has.
fn futures_chunks(text: String) -> Body {
    let chunks: Vec<Result<String, std::io::Error>> = text
        .as_bytes()
        .chunks(8192)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    Body::from_stream(tokio_stream_iter(chunks))
}

fn tokio_stream_iter<T>(items: Vec<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::iter(items)
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

both_backends! {
    async fn probes_report_process_and_database(app: TestApp) {
        let mut client = app.client();
        let res = client.get("/healthz").await;
        assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "ok"));
        let res = client.get("/readyz").await;
        assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "ready"));
        app.db.close().await;
        let res = client.get("/readyz").await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(client.get("/healthz").await.status, StatusCode::OK);
    }

    async fn internal_errors_stay_on_the_server(app: TestApp) {
        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        app.db.close().await;
        let res = client.call("/api/orgs/members", &[]).await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.body, "\"Internal\"", "no database detail reaches the browser");
    }

    async fn pages_carry_security_headers_and_a_matching_nonce(app: TestApp) {
        let mut client = app.client();
        let res = client.get("/sign-in").await;
        assert_eq!(res.status, StatusCode::OK);
        let csp = res.header("content-security-policy").expect("CSP").to_owned();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).expect("nonce in CSP");
        let scripts = res.body.matches("<script").count();
        assert!(scripts > 0);
        assert_eq!(
            res.body.matches(&format!("<script type=\"module\" nonce=\"{nonce}\"")).count()
                + res.body.matches(&format!("<script nonce=\"{nonce}\"")).count(),
            scripts,
            "every inline script carries the request's nonce"
        );
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(res.header("referrer-policy"), Some("strict-origin-when-cross-origin"));
        assert_eq!(res.header("x-frame-options"), Some("DENY"));
        assert!(res.header("x-request-id").is_some());
        let second = client.get("/sign-in").await;
        assert_ne!(second.header("content-security-policy"), Some(csp.as_str()), "a fresh nonce per request");
    }

    async fn unknown_routes_get_a_friendly_404(app: TestApp) {
        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let res = client.get("/no/such/page").await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert!(res.body.contains("Page not found"), "{}", res.body);
        let res = client.call("/api/no_such_function", &[]).await;
        assert!(res.status.is_client_error(), "{}", res.status);
    }

    async fn oversized_bodies_are_refused(app: TestApp) {
        let mut client = app.client();
        let huge = "x".repeat(200 * 1024);
        let res = client.call("/api/accounts/sign_in", &[("email", "a@example.com"), ("password", &huge)]).await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
        let res = client
            .call("/api/accounts/sign_up", &[("display_name", &huge), ("email", "a@example.com"), ("password", PASSWORD), ("org_name", "x")])
            .await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Without a Content-Length (chunked), the limit stops the read instead.
        let chunks = futures_chunks(form(&[("display_name", &huge), ("email", "a@example.com"), ("password", PASSWORD), ("org_name", "x")]));
        let request = Request::post("/api/accounts/sign_up")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(chunks)
            .unwrap();
        let res = client.send(request).await;
        assert!(res.status.is_client_error(), "{}", res.status);
        assert_eq!(count(&app, "users").await, 0);
    }

    async fn malformed_posts_get_400_and_change_nothing(app: TestApp) {
        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let users = count(&app, "users").await;
        let memberships = count(&app, "memberships").await;
        for (path, body) in [
            ("/api/accounts/sign_in", "email=a@example.com"),
            ("/api/accounts/sign_up", "display_name=x"),
            ("/api/orgs/switch", "org_id=not-a-number"),
            ("/api/orgs/switch", "org_id=99999999999999999999999"),
            ("/api/orgs/add_member", "email=b@example.com&role=superuser"),
            ("/api/orgs/change_role", "user_id=1&role="),
            ("/api/orgs/remove_member", "%%%=&&&"),
            ("/api/orgs/update", "name[]=x&name[]=y"),
            ("/api/preferences/theme", "theme=neon"),
        ] {
            let res = client.call_raw(path, body.to_owned()).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", res.body);
            assert_eq!(res.body, "\"BadRequest\"");
        }
        let res = client
            .send(Request::post("/api/orgs/update").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(vec![0xff, 0xfe, 0x00])).unwrap())
            .await;
        assert!(res.status.is_client_error(), "{}", res.status);
        assert_eq!(count(&app, "users").await, users);
        assert_eq!(count(&app, "memberships").await, memberships);
        assert_eq!(client.session().await["org"]["name"], "Acme");
    }

    async fn sql_metacharacters_are_plain_text(app: TestApp) {
        let nasty_name = "Robert'); DROP TABLE users;--";
        let nasty_org = "100% \"Quoted\" _Org_ <i>\\ ' OR '1'='1";
        let mut client = app.client();
        let res = client
            .call(
                "/api/accounts/sign_up",
                &[("display_name", nasty_name), ("email", "o'brien@example.com"), ("password", "' OR 1=1 --x"), ("org_name", nasty_org)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let session = client.session().await;
        assert_eq!(session["user"]["display_name"], nasty_name);
        assert_eq!(session["org"]["name"], nasty_org);

        let res = client.call("/api/orgs/update", &[("name", "x'; DELETE FROM organizations; --"), ("timezone", "UTC' OR '1'='1")]).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "a bad time zone is a validation error");
        let res = client.call("/api/orgs/add_member", &[("email", "' OR ''='@x.com"), ("role", "member")]).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let res = client.call("/api/orgs/create", &[("name", "'; DROP TABLE memberships; --")]).await;
        assert_eq!(res.status, StatusCode::OK);

        let mut visitor = app.client();
        let res = visitor.call("/api/accounts/sign_in", &[("email", "' OR '1'='1"), ("password", "' OR '1'='1")]).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        let res = visitor.call("/api/accounts/sign_in", &[("email", "o'brien@example.com"), ("password", "' OR 1=1 --x")]).await;
        assert_eq!(res.status, StatusCode::OK, "the quote-laden password is just a password");

        assert_eq!(count(&app, "users").await, 1);
        assert_eq!(count(&app, "organizations").await, 2);
        assert_eq!(count(&app, "memberships").await, 2);
        let page = client.get("/settings").await;
        assert!(page.body.contains("Robert'); DROP TABLE users;--"), "names show as typed");
        assert!(page.body.contains("_Org_ &lt;i&gt;"), "and are escaped as HTML");
        assert!(!page.body.contains("_Org_ <i>"));
    }

    async fn cross_site_posts_are_refused(app: TestApp) {
        let mut client = app.signed_up("Ana", "ana@example.com", "Acme").await;
        for (name, value) in [("origin", "https://evil.example"), ("origin", "null"), ("sec-fetch-site", "cross-site")] {
            let request = Request::post("/api/orgs/create")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(name, value)
                .body(Body::from(form(&[("name", "Planted")])))
                .unwrap();
            let res = client.send(request).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{name}: {value}");
        }
        assert_eq!(count(&app, "organizations").await, 1);
    }

    async fn forms_without_javascript_redirect_with_their_error(app: TestApp) {
        app.signed_up("Ana", "ana@example.com", "Acme").await;
        let mut browser = app.client();
        let res = browser
            .post_html_form("/api/accounts/sign_in", &[("email", "ana@example.com"), ("password", "wrong one")], "http://localhost/sign-in")
            .await;
        assert_eq!(res.status, StatusCode::FOUND);
        let location = res.header("location").unwrap().to_owned();
        assert!(location.starts_with("http://localhost/sign-in?") && location.contains("__err="), "{location}");
        let path = location.trim_start_matches("http://localhost");
        let page = browser.get(path).await;
        assert!(page.body.contains("The email or password is incorrect."), "{}", page.body);

        let res = browser
            .post_html_form("/api/accounts/sign_in", &[("email", "ana@example.com"), ("password", PASSWORD), ("next", "/settings")], "http://localhost/sign-in?next=/settings")
            .await;
        assert_eq!(res.status, StatusCode::FOUND);
        assert_eq!(res.header("location"), Some("/settings"));
        assert!(browser.cookie.is_some());
    }

    async fn https_deployments_get_secure_cookies(app: TestApp) {
        let secure = TestApp::with_config(app.backend, &[("DUECALL_PUBLIC_URL", "https://duecall.example.com")]).await.unwrap();
        let mut client = secure.client();
        let res = client
            .call("/api/accounts/sign_up", &[("display_name", "Ana"), ("email", "ana@example.com"), ("password", PASSWORD), ("org_name", "Acme")])
            .await;
        let cookie = res.set_cookies().into_iter().find(|c| c.starts_with("duecall_session=")).unwrap().to_owned();
        assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(res.header("strict-transport-security").is_some());
    }

    async fn the_next_parameter_cannot_leave_the_site(app: TestApp) {
        app.signed_up("Ana", "ana@example.com", "Acme").await;
        let mut client = app.client();
        let res = client
            .call("/api/accounts/sign_in", &[("email", "ana@example.com"), ("password", PASSWORD), ("next", "//evil.example/phish")])
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.header("location"), Some("/"));
    }
}
