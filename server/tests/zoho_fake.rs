//! The fake Zoho over real HTTP: the OAuth flow across data centres, token lifetimes and
//! limits, the Books envelope, pagination, filters, sorting, comments, rate limits and every
//! injectable fault.

#[path = "common/consent.rs"]
mod consent;

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use server::zoho_fake::{
    DataCentre, FakeClient, FakeContact, FakeInvoiceStatus, FakeOptions, FakeZoho, Fault,
};

const CLIENT_ID: &str = "1000.DUECALLTEST";
const CLIENT_SECRET: &str = "duecall-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:9/integrations/zoho/callback";
const ALL_SCOPES: &str = "ZohoBooks.settings.READ,ZohoBooks.contacts.READ,\
                          ZohoBooks.invoices.READ,ZohoBooks.invoices.CREATE";
const OWNER: &str = "owner@books.example";

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

fn options() -> FakeOptions {
    FakeOptions {
        clients: vec![FakeClient::new(
            CLIENT_ID,
            CLIENT_SECRET,
            "Duecall",
            [REDIRECT_URI],
        )],
        start_time: start_time(),
        ..FakeOptions::default()
    }
}

/// Where the consent sent the browser back to.
#[derive(Debug)]
struct Callback {
    params: HashMap<String, String>,
}

impl Callback {
    fn get(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// A connection as a client keeps it after the exchange.
#[derive(Debug, Clone)]
struct Connection {
    accounts: String,
    api: String,
    access: String,
    refresh: String,
}

/// A response: status, headers and JSON body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(-1)
    }

    fn header(&self, name: &str) -> u64 {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name} header"))
    }
}

struct Harness {
    fake: FakeZoho,
    http: reqwest::Client,
}

impl Harness {
    async fn new() -> Self {
        Self::with(options()).await
    }

    async fn with(options: FakeOptions) -> Self {
        let (fake, _addr) = FakeZoho::spawn(options).await.unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { fake, http }
    }

    fn authorize_url(&self, dc: DataCentre, scope: &str, extra: &str) -> String {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/oauth/v2/auth", self.fake.accounts_url(dc)),
            &[
                ("client_id", CLIENT_ID),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT_URI),
                ("scope", scope),
                ("state", "st-42"),
            ],
        )
        .unwrap();
        format!("{url}{extra}")
    }

    /// Opens the consent page (following a DC redirect once) and returns its HTML and URL.
    async fn consent_page(&self, url: &str) -> (String, Vec<String>) {
        let mut hops = vec![url.to_owned()];
        let mut response = self.http.get(url).send().await.unwrap();
        if response.status() == StatusCode::TEMPORARY_REDIRECT {
            let next = location(response.headers());
            hops.push(next.clone());
            response = self.http.get(&next).send().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::OK, "consent page");
        (response.text().await.unwrap(), hops)
    }

    /// Presses a consent button as the browser would: posts the form's fields to its action.
    async fn press(&self, html: &str, decision: &str) -> Callback {
        let (action, fields) = consent::consent_form(html, decision);
        let response = self.http.post(&action).form(&fields).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let target = reqwest::Url::parse(&location(response.headers())).unwrap();
        assert!(target.as_str().starts_with(REDIRECT_URI), "{target}");
        Callback {
            params: target.query_pairs().into_owned().collect(),
        }
    }

    async fn consent(&self, dc: DataCentre, scope: &str, extra: &str) -> Callback {
        let (html, _) = self
            .consent_page(&self.authorize_url(dc, scope, extra))
            .await;
        self.press(&html, "accept").await
    }

    async fn post_token(&self, accounts: &str, params: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .post(format!("{accounts}/oauth/v2/token"))
            .query(params)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "token errors are HTTP 200"
        );
        response.json().await.unwrap()
    }

    async fn exchange(&self, accounts: &str, code: &str) -> Value {
        self.post_token(
            accounts,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("redirect_uri", REDIRECT_URI),
                ("code", code),
            ],
        )
        .await
    }

    async fn refresh(&self, connection: &Connection) -> Value {
        self.post_token(
            &connection.accounts,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("refresh_token", &connection.refresh),
            ],
        )
        .await
    }

    /// The whole flow for the signed-in user, started at the US accounts server.
    async fn connect(&self, scope: &str) -> Connection {
        let callback = self
            .consent(DataCentre::Us, scope, "&access_type=offline&prompt=consent")
            .await;
        let accounts = callback.get("accounts-server").to_owned();
        let tokens = self.exchange(&accounts, callback.get("code")).await;
        Connection {
            accounts,
            api: tokens["api_domain"].as_str().unwrap().to_owned(),
            access: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn get(&self, url: &str, token: Option<&str>, query: &[(&str, &str)]) -> Answer {
        let mut request = self.http.get(url).query(query);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Zoho-oauthtoken {token}"));
        }
        answer(request.send().await.unwrap()).await
    }

    async fn books(
        &self,
        connection: &Connection,
        path: &str,
        org: &str,
        query: &[(&str, &str)],
    ) -> Answer {
        let mut query = query.to_vec();
        query.push(("organization_id", org));
        self.get(
            &format!("{}/books/v3/{path}", connection.api),
            Some(&connection.access),
            &query,
        )
        .await
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

fn location(headers: &HeaderMap) -> String {
    headers["location"].to_str().unwrap().to_owned()
}

/// A harness with an EU user, their organization (in Asia/Kolkata, so times carry `+0530`)
/// and a connection.
async fn connected(options: FakeOptions) -> (Harness, Connection, String) {
    let h = Harness::with(options).await;
    h.fake.add_user(OWNER, DataCentre::Eu);
    let org = h
        .fake
        .add_organization(OWNER, "Acme Exports", "INR", "Asia/Kolkata", true)
        .unwrap();
    let connection = h.connect(ALL_SCOPES).await;
    (h, connection, org)
}

fn rows<'a>(answer: &'a Answer, resource: &str) -> &'a Vec<Value> {
    answer.body[resource].as_array().expect(resource)
}

fn zoho_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .with_timezone(&Utc)
}

#[tokio::test]
async fn the_consent_redirects_to_the_home_dc_and_codes_are_single_use() {
    let h = Harness::new().await;
    h.fake.add_user("anna@books.example", DataCentre::Eu);
    let base = h.fake.base_url();

    let (html, hops) = h
        .consent_page(&h.authorize_url(
            DataCentre::Us,
            ALL_SCOPES,
            "&access_type=offline&prompt=consent",
        ))
        .await;
    assert!(hops[0].starts_with(&format!("{base}/accounts/us/oauth/v2/auth?")));
    assert!(hops[1].starts_with(&format!("{base}/accounts/eu/oauth/v2/auth?")));
    assert!(html.contains("Duecall") && html.contains("anna@books.example"));
    assert!(html.contains("ZohoBooks.invoices.CREATE") && html.contains(">Accept</button>"));
    for forbidden in ["<script", "<style", "style=", "onclick"] {
        assert!(!html.contains(forbidden), "{forbidden} in the consent page");
    }

    let callback = h.press(&html, "accept").await;
    assert_eq!(callback.get("state"), "st-42");
    assert_eq!(callback.get("location"), "eu");
    assert_eq!(
        callback.get("accounts-server"),
        format!("{base}/accounts/eu")
    );
    let code = callback.get("code");

    let wrong_dc = h.exchange(&format!("{base}/accounts/us"), code).await;
    assert_eq!(wrong_dc, json!({"error": "invalid_code"}));
    let wrong_secret = h
        .post_token(
            &format!("{base}/accounts/eu"),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("client_secret", "guess"),
                ("redirect_uri", REDIRECT_URI),
                ("code", code),
            ],
        )
        .await;
    assert_eq!(wrong_secret, json!({"error": "invalid_client"}));

    let tokens = h.exchange(callback.get("accounts-server"), code).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["api_domain"], format!("{base}/api/eu"));
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("1000.")
    );
    assert!(tokens["refresh_token"].is_string());

    let again = h.exchange(callback.get("accounts-server"), code).await;
    assert_eq!(
        again,
        json!({"error": "invalid_code"}),
        "codes are single-use"
    );

    // The token works at its own DC only.
    let token = tokens["access_token"].as_str().unwrap();
    let eu = h
        .get(
            &format!("{base}/api/eu/books/v3/organizations"),
            Some(token),
            &[],
        )
        .await;
    assert_eq!((eu.status, eu.code()), (StatusCode::OK, 0));
    let us = h
        .get(
            &format!("{base}/api/us/books/v3/organizations"),
            Some(token),
            &[],
        )
        .await;
    assert_eq!((us.status, us.code()), (StatusCode::UNAUTHORIZED, 57));

    // Rejecting sends the user back with an error.
    let (html, _) = h
        .consent_page(&h.authorize_url(DataCentre::Eu, ALL_SCOPES, ""))
        .await;
    let rejected = h.press(&html, "reject").await;
    assert_eq!(rejected.get("error"), "access_denied");
    assert_eq!(rejected.get("code"), "");
}

#[tokio::test]
async fn unregistered_redirects_and_china_accounts_are_refused() {
    let h = Harness::new().await;
    h.fake.add_user("li@books.example", DataCentre::Cn);
    let bad_redirect = h
        .http
        .get(
            h.authorize_url(DataCentre::Cn, ALL_SCOPES, "")
                .replace("127.0.0.1%3A9", "evil.example"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad_redirect.status(), StatusCode::BAD_REQUEST);
    let from_us = h
        .http
        .get(h.authorize_url(DataCentre::Us, ALL_SCOPES, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        from_us.status(),
        StatusCode::BAD_REQUEST,
        "China runs apart"
    );
    let callback = h.consent(DataCentre::Cn, ALL_SCOPES, "").await;
    assert_eq!(callback.get("location"), "cn");
}

#[tokio::test]
async fn codes_expire_and_the_token_endpoint_takes_form_bodies() {
    let h = Harness::new().await;
    h.fake.add_user(OWNER, DataCentre::Us);
    let callback = h.consent(DataCentre::Us, ALL_SCOPES, "").await;
    h.fake.advance_clock(Duration::minutes(3));
    let late = h
        .exchange(callback.get("accounts-server"), callback.get("code"))
        .await;
    assert_eq!(late, json!({"error": "invalid_code"}));

    let callback = h.consent(DataCentre::Us, ALL_SCOPES, "").await;
    let response = h
        .http
        .post(format!(
            "{}/oauth/v2/token",
            callback.get("accounts-server")
        ))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT_URI),
            ("code", callback.get("code")),
        ])
        .send()
        .await
        .unwrap();
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no refresh token without access_type=offline"
    );
}

#[tokio::test]
async fn a_refresh_token_comes_with_the_first_offline_consent_or_prompt_consent() {
    let h = Harness::new().await;
    h.fake.add_user(OWNER, DataCentre::In);
    let mut got = Vec::new();
    for extra in [
        "&access_type=offline",
        "&access_type=offline",
        "&access_type=offline&prompt=consent",
    ] {
        let callback = h.consent(DataCentre::Us, ALL_SCOPES, extra).await;
        assert_eq!(callback.get("location"), "in");
        let tokens = h
            .exchange(callback.get("accounts-server"), callback.get("code"))
            .await;
        got.push(tokens["refresh_token"].is_string());
    }
    assert_eq!(got, [true, false, true]);
}

#[tokio::test]
async fn access_tokens_expire_with_the_clock_and_refresh_replaces_them() {
    let (h, connection, org) = connected(options()).await;
    assert_eq!(
        h.books(&connection, "contacts", &org, &[]).await.status,
        StatusCode::OK
    );
    h.fake.advance_clock(Duration::seconds(3599));
    assert_eq!(
        h.books(&connection, "contacts", &org, &[]).await.status,
        StatusCode::OK
    );
    h.fake.advance_clock(Duration::seconds(1));
    let expired = h.books(&connection, "contacts", &org, &[]).await;
    assert_eq!(
        (expired.status, expired.code()),
        (StatusCode::UNAUTHORIZED, 57)
    );

    let tokens = h.refresh(&connection).await;
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["api_domain"], connection.api.as_str());
    assert!(tokens.get("refresh_token").is_none());
    let fresh = Connection {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        ..connection
    };
    let answer = h.books(&fresh, "contacts", &org, &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn revoking_a_refresh_token_kills_its_access_tokens() {
    let (h, connection, org) = connected(options()).await;
    let revoked = h
        .http
        .post(format!("{}/oauth/v2/token/revoke", connection.accounts))
        .query(&[("token", &connection.refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoked.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );
    let answer = h.books(&connection, "invoices", &org, &[]).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::UNAUTHORIZED, 57)
    );
    assert_eq!(
        h.refresh(&connection).await,
        json!({"error": "invalid_code"})
    );
}

#[tokio::test]
async fn token_requests_are_throttled_and_live_access_tokens_capped() {
    let (h, connection, org) = connected(options()).await;
    assert_eq!(h.fake.token_requests(), 1);
    // The exchange and nine refreshes: ten access tokens in ten minutes.
    let mut tokens = vec![connection.access.clone()];
    for _ in 0..9 {
        let body = h.refresh(&connection).await;
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    let throttled = h.refresh(&connection).await;
    assert_eq!(throttled["error"], "Access Denied");
    assert_eq!(throttled["status"], "failure");
    assert!(
        throttled["error_description"]
            .as_str()
            .unwrap()
            .contains("too many requests")
    );
    assert_eq!(h.fake.token_requests(), 11);
    assert_eq!(h.fake.calls("token.refresh_token"), 10);

    h.fake.advance_clock(Duration::minutes(10));
    let eleventh = h.refresh(&connection).await;
    assert!(eleventh["access_token"].is_string(), "{eleventh}");
    let with = |access: &str| Connection {
        access: access.to_owned(),
        ..connection.clone()
    };
    let oldest = h.books(&with(&tokens[0]), "contacts", &org, &[]).await;
    assert_eq!(oldest.code(), 57, "the oldest of eleven live tokens dies");
    let second = h.books(&with(&tokens[1]), "contacts", &org, &[]).await;
    assert_eq!(second.code(), 0);
}

#[tokio::test]
async fn the_bearer_scope_and_organization_are_enforced() {
    let (h, connection, org) = connected(options()).await;
    let url = format!("{}/books/v3/invoices", connection.api);
    let org_query = [("organization_id", org.as_str())];

    let missing = h.get(&url, None, &org_query).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, 14)
    );
    let bearer = answer(
        h.http
            .get(&url)
            .query(&org_query)
            .bearer_auth(&connection.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (bearer.status, bearer.code()),
        (StatusCode::UNAUTHORIZED, 14)
    );
    let unknown = h.get(&url, Some("1000.nope.nope"), &org_query).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::UNAUTHORIZED, 57)
    );
    assert!(
        unknown.header("x-rate-limit-limit") > 0,
        "headers on errors too"
    );

    let no_org = h.get(&url, Some(&connection.access), &[]).await;
    assert_eq!((no_org.status, no_org.code()), (StatusCode::BAD_REQUEST, 2));
    assert!(
        no_org.body["message"]
            .as_str()
            .unwrap()
            .contains("organization_id")
    );

    // Another user's organization (same DC) is not visible.
    h.fake.add_user("other@books.example", DataCentre::Eu);
    let theirs = h
        .fake
        .add_organization("other@books.example", "Theirs", "EUR", "Europe/Paris", true)
        .unwrap();
    let foreign = h.books(&connection, "invoices", &theirs, &[]).await;
    assert_eq!(
        (foreign.status, foreign.code()),
        (StatusCode::UNAUTHORIZED, 57)
    );
    h.fake.grant_access(&theirs, OWNER).unwrap();
    assert_eq!(
        h.books(&connection, "invoices", &theirs, &[]).await.code(),
        0
    );

    // Without ZohoBooks.settings.READ the organization lookup fails: the known trap.
    let narrow = h
        .connect("ZohoBooks.contacts.READ,ZohoBooks.invoices.READ")
        .await;
    let orgs = h
        .get(
            &format!("{}/books/v3/organizations", narrow.api),
            Some(&narrow.access),
            &[],
        )
        .await;
    assert_eq!((orgs.status, orgs.code()), (StatusCode::UNAUTHORIZED, 57));
    let listed = h
        .get(
            &format!("{}/books/v3/organizations", connection.api),
            Some(&connection.access),
            &[],
        )
        .await;
    let listed = rows(&listed, "organizations");
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|o| o["organization_id"] == org.as_str() && o["is_default_org"] == true)
    );
}

#[tokio::test]
async fn invoices_come_in_the_envelope_two_hundred_a_page() {
    let (h, connection, org) = connected(options()).await;
    let seeded = h.fake.seed_demo_books(&org, 60, 450, 7).unwrap();
    assert_eq!(seeded.invoices, 450);

    let mut seen = std::collections::HashSet::new();
    let mut sizes = Vec::new();
    for page in 1..=3 {
        let page_text = page.to_string();
        let answer = h
            .books(&connection, "invoices", &org, &[("page", &page_text)])
            .await;
        assert_eq!((answer.status, answer.code()), (StatusCode::OK, 0));
        assert_eq!(answer.body["message"], "success");
        let context = &answer.body["page_context"];
        assert_eq!(context["page"], page);
        assert_eq!(context["per_page"], 200);
        assert_eq!(context["has_more_page"], page < 3);
        assert_eq!(context["sort_column"], "created_time");
        assert_eq!(context["sort_order"], "D");
        assert_eq!(context["applied_filter"], "Status.All");
        let list = rows(&answer, "invoices");
        sizes.push(list.len());
        for row in list {
            assert!(seen.insert(row["invoice_id"].as_str().unwrap().to_owned()));
            for field in [
                "invoice_number",
                "customer_id",
                "customer_name",
                "status",
                "date",
                "due_date",
                "currency_code",
                "created_time",
                "last_modified_time",
                "reference_number",
                "payment_expected_date",
                "last_payment_date",
                "salesperson_name",
            ] {
                assert!(row[field].is_string(), "{field} in {row}");
            }
            assert!(row["total"].is_number() && row["balance"].is_number());
        }
    }
    assert_eq!(sizes, [200, 200, 50]);
    assert_eq!(seen.len(), 450);

    let capped = h
        .books(&connection, "invoices", &org, &[("per_page", "500")])
        .await;
    assert_eq!(capped.body["page_context"]["per_page"], 200);
    let past_the_end = h
        .books(&connection, "invoices", &org, &[("page", "9")])
        .await;
    assert!(rows(&past_the_end, "invoices").is_empty());
    assert_eq!(past_the_end.body["page_context"]["has_more_page"], false);
    for bad in [("page", "0"), ("per_page", "x"), ("sort_column", "colour")] {
        let answer = h.books(&connection, "invoices", &org, &[bad]).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, 2));
    }

    let overdue = h
        .books(&connection, "invoices", &org, &[("status", "overdue")])
        .await;
    let overdue_rows = rows(&overdue, "invoices");
    assert!(!overdue_rows.is_empty());
    assert!(overdue_rows.iter().all(|r| r["status"] == "overdue"));
    assert_eq!(
        overdue.body["page_context"]["applied_filter"],
        "Status.OverDue"
    );
    let unpaid = h
        .books(
            &connection,
            "invoices",
            &org,
            &[("filter_by", "Status.Unpaid")],
        )
        .await;
    assert!(rows(&unpaid, "invoices").iter().all(|r| {
        ["sent", "viewed", "overdue", "partially_paid"].contains(&r["status"].as_str().unwrap())
    }));
    let customer = overdue_rows[0]["customer_id"].as_str().unwrap();
    let theirs = h
        .books(&connection, "invoices", &org, &[("customer_id", customer)])
        .await;
    assert!(
        rows(&theirs, "invoices")
            .iter()
            .all(|r| r["customer_id"] == customer)
    );
}

#[tokio::test]
async fn seeded_books_have_zoho_shapes() {
    let (h, connection, org) = connected(options()).await;
    h.fake.seed_demo_books(&org, 40, 120, 3).unwrap();
    let list = h
        .books(&connection, "invoices", &org, &[("per_page", "200")])
        .await;
    let list = rows(&list, "invoices");
    let big = list
        .iter()
        .filter_map(|r| r["invoice_id"].as_str())
        .filter(|id| id.parse::<u64>().unwrap() > 1 << 53)
        .count();
    assert!(big > 0, "some ids exceed 2^53");
    let time = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0530$").unwrap();
    for row in list {
        assert!(time.is_match(row["last_modified_time"].as_str().unwrap()));
        let fake = h
            .fake
            .invoice(&org, row["invoice_id"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            (row["total"].as_f64().unwrap() * 100.0).round() as i64,
            fake.total_minor,
            "amounts are decimals with the currency's precision"
        );
    }

    let customer = list[0]["customer_id"].as_str().unwrap();
    let contact = h
        .books(&connection, &format!("contacts/{customer}"), &org, &[])
        .await;
    let contact = &contact.body["contact"];
    let country = contact["billing_address"]["country"].as_str().unwrap();
    assert!(
        [
            "U.S.A",
            "United Kingdom",
            "Germany",
            "France",
            "India",
            "Australia",
            "Canada",
            "Netherlands",
            "Spain",
            "Ireland"
        ]
        .contains(&country),
        "{country}"
    );
    let persons = contact["contact_persons"].as_array().unwrap();
    assert_eq!(
        persons
            .iter()
            .filter(|p| p["is_primary_contact"] == true)
            .count(),
        1
    );
    assert!(
        persons[0]["first_name"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
    assert!(contact["outstanding_receivable_amount"].is_number());

    let detail = h
        .books(
            &connection,
            &format!("invoices/{}", list[0]["invoice_id"].as_str().unwrap()),
            &org,
            &[],
        )
        .await;
    let invoice = &detail.body["invoice"];
    assert!(
        invoice["line_items"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    assert!(invoice["billing_address"]["country"].is_string());
    assert_eq!(invoice["customer_name"], contact["contact_name"]);
    let missing = h.books(&connection, "invoices/123456789", &org, &[]).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, 1002)
    );
    let missing = h.books(&connection, "contacts/123456789", &org, &[]).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, 1002)
    );
}

#[tokio::test]
async fn last_modified_time_returns_strictly_later_invoices() {
    let (h, connection, org) = connected(options()).await;
    h.fake.seed_demo_books(&org, 20, 50, 1).unwrap();
    let newest = h
        .books(
            &connection,
            "invoices",
            &org,
            &[("sort_column", "last_modified_time"), ("sort_order", "D")],
        )
        .await;
    let list = rows(&newest, "invoices");
    let watermark = list[0]["last_modified_time"].as_str().unwrap().to_owned();
    assert!(zoho_time(&watermark) < h.fake.now());
    let since = |time: String| {
        let h = &h;
        let connection = &connection;
        let org = &org;
        async move {
            let answer = h
                .books(
                    connection,
                    "invoices",
                    org,
                    &[("last_modified_time", &time)],
                )
                .await;
            assert_eq!(answer.code(), 0, "{}", answer.body);
            rows(&answer, "invoices")
                .iter()
                .map(|r| r["invoice_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(since(watermark.clone()).await.is_empty(), "strictly after");

    // Two edits in the same fake second: the second is stamped one second later.
    let first = list[5]["invoice_id"].as_str().unwrap().to_owned();
    let second = list[9]["invoice_id"].as_str().unwrap().to_owned();
    h.fake
        .update_invoice(&org, &first, |i| i.status = FakeInvoiceStatus::Paid)
        .unwrap();
    h.fake
        .update_invoice(&org, &second, |i| i.balance_minor = 0)
        .unwrap();
    let a = h.fake.invoice(&org, &first).unwrap().last_modified_time;
    let b = h.fake.invoice(&org, &second).unwrap().last_modified_time;
    assert_eq!(a, start_time());
    assert_eq!(b, a + Duration::seconds(1));

    let mut changed = since(watermark).await;
    changed.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(changed, expected);
    let first_time = a.with_timezone(&chrono_tz::Asia::Kolkata);
    let first_text = first_time.format("%Y-%m-%dT%H:%M:%S%z").to_string();
    assert_eq!(first_text, "2026-03-10T17:30:00+0530");
    assert_eq!(since(first_text.clone()).await, [second]);

    // An unencoded `+` arrives as a space: refused, not silently misread.
    let raw = format!(
        "{}/books/v3/invoices?organization_id={org}&last_modified_time={first_text}",
        connection.api
    );
    let refused = h.get(&raw, Some(&connection.access), &[]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::BAD_REQUEST, 2)
    );
}

#[tokio::test]
async fn contacts_sort_by_last_modified_time_and_list_customers_only() {
    let (h, connection, org) = connected(options()).await;
    let seeded = h.fake.seed_demo_books(&org, 30, 40, 5).unwrap();
    assert!(seeded.vendors > 0);
    let ids: Vec<String> = h
        .fake
        .contacts(&org)
        .into_iter()
        .map(|c| c.contact_id)
        .collect();
    h.fake
        .update_contact(&org, &ids[3], |c| c.notes = "called".to_owned())
        .unwrap();
    h.fake.advance_clock(Duration::seconds(5));
    h.fake
        .update_contact(&org, &ids[1], |c| c.contact_name.push_str(" Ltd"))
        .unwrap();

    let sorted = h
        .books(
            &connection,
            "contacts",
            &org,
            &[("sort_column", "last_modified_time"), ("sort_order", "D")],
        )
        .await;
    let list = rows(&sorted, "contacts");
    assert_eq!(list.len(), seeded.customers, "vendors are left out");
    assert_eq!(list[0]["contact_id"], ids[1].as_str());
    assert_eq!(list[1]["contact_id"], ids[3].as_str());
    let times: Vec<_> = list
        .iter()
        .map(|r| zoho_time(r["last_modified_time"].as_str().unwrap()))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    assert!(list.iter().all(|r| r["contact_type"] == "customer"));
    for field in [
        "contact_name",
        "company_name",
        "email",
        "phone",
        "mobile",
        "currency_code",
        "status",
        "created_time",
    ] {
        assert!(list[0][field].is_string(), "{field}");
    }
    assert_eq!(
        sorted.body["page_context"]["sort_column"],
        "last_modified_time"
    );

    let vendors = h
        .books(&connection, "contacts", &org, &[("contact_type", "vendor")])
        .await;
    assert_eq!(rows(&vendors, "contacts").len(), seeded.vendors);
    let inactive = h
        .books(
            &connection,
            "contacts",
            &org,
            &[("filter_by", "Status.Inactive")],
        )
        .await;
    assert!(
        rows(&inactive, "contacts")
            .iter()
            .all(|r| r["status"] == "inactive")
    );

    let added = h
        .fake
        .add_contact(&org, FakeContact::customer("Zed Newcomer", "INR"))
        .unwrap();
    let by_name = h
        .books(&connection, "contacts", &org, &[("sort_order", "D")])
        .await;
    assert_eq!(rows(&by_name, "contacts")[0]["contact_id"], added.as_str());
}

#[tokio::test]
async fn every_fault_kind_answers_the_next_request() {
    let (h, connection, org) = connected(options()).await;
    let (harness, connection_ref, org_ref) = (&h, &connection, org.as_str());
    let list = || async move {
        harness
            .books(connection_ref, "invoices", org_ref, &[])
            .await
    };
    for (fault, status, code) in [
        (
            Fault::PerMinuteLimit { reset_seconds: 17 },
            StatusCode::TOO_MANY_REQUESTS,
            44,
        ),
        (
            Fault::DailyLimit {
                reset_seconds: 3600,
            },
            StatusCode::TOO_MANY_REQUESTS,
            45,
        ),
        (
            Fault::Concurrency { reset_seconds: 2 },
            StatusCode::TOO_MANY_REQUESTS,
            1070,
        ),
        (
            Fault::InternalError,
            StatusCode::INTERNAL_SERVER_ERROR,
            1000,
        ),
        (
            Fault::ErrorOnOk {
                code: 1001,
                message: "Something is not right".to_owned(),
            },
            StatusCode::OK,
            1001,
        ),
    ] {
        h.fake.inject(fault.clone());
        let answer = list().await;
        assert_eq!((answer.status, answer.code()), (status, code), "{fault:?}");
        assert!(answer.body["message"].is_string());
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(answer.header("x-rate-limit-remaining"), 0);
            let reset = match fault {
                Fault::PerMinuteLimit { reset_seconds }
                | Fault::DailyLimit { reset_seconds }
                | Fault::Concurrency { reset_seconds } => reset_seconds,
                _ => unreachable!(),
            };
            assert_eq!(answer.header("x-rate-limit-reset"), reset);
        }
        assert_eq!(list().await.code(), 0, "one fault, one request");
    }

    h.fake.inject_n(Fault::InternalError, 2);
    assert_eq!(list().await.code(), 1000);
    assert_eq!(list().await.code(), 1000);
    assert_eq!(list().await.code(), 0);

    // Slow: answered normally, late; a client with a shorter timeout gives up.
    h.fake.inject(Fault::Slow(StdDuration::from_millis(150)));
    let started = Instant::now();
    assert_eq!(list().await.code(), 0);
    assert!(started.elapsed() >= StdDuration::from_millis(150));
    h.fake.inject(Fault::Slow(StdDuration::from_millis(400)));
    let timed_out = h
        .http
        .get(format!("{}/books/v3/invoices", connection.api))
        .query(&[("organization_id", &org)])
        .header(
            "Authorization",
            format!("Zoho-oauthtoken {}", connection.access),
        )
        .timeout(StdDuration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));

    h.fake.expire_access_tokens();
    assert_eq!(list().await.code(), 57);
    let renewed = Connection {
        access: h.refresh(&connection).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..connection.clone()
    };
    assert_eq!(h.books(&renewed, "invoices", &org, &[]).await.code(), 0);

    h.fake.revoke_all_tokens();
    let revoked = h.books(&renewed, "invoices", &org, &[]).await;
    assert_eq!(
        (revoked.status, revoked.code()),
        (StatusCode::UNAUTHORIZED, 57)
    );
    assert_eq!(
        h.refresh(&connection).await,
        json!({"error": "invalid_code"})
    );
}

#[tokio::test]
async fn configured_limits_answer_429_with_rate_headers() {
    let (h, connection, org) = connected(FakeOptions {
        per_minute_limit: Some(3),
        ..options()
    })
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = h.books(&connection, "contacts", &org, &[]).await;
        assert_eq!(answer.code(), 0);
        assert_eq!(answer.header("x-rate-limit-limit"), 3);
        remaining.push(answer.header("x-rate-limit-remaining"));
    }
    assert_eq!(remaining, [2, 1, 0]);
    let limited = h.books(&connection, "contacts", &org, &[]).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, 44)
    );
    assert_eq!(
        limited.header("x-rate-limit-reset"),
        60,
        "the clock sits on a minute"
    );
    h.fake.advance_clock(Duration::seconds(60));
    assert_eq!(h.books(&connection, "contacts", &org, &[]).await.code(), 0);

    let (h, connection, org) = connected(FakeOptions {
        daily_limit: Some(2),
        ..options()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(h.books(&connection, "contacts", &org, &[]).await.code(), 0);
    }
    let limited = h.books(&connection, "contacts", &org, &[]).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, 45)
    );
    assert_eq!(limited.header("x-rate-limit-reset"), 12 * 3600);
    h.fake.advance_clock(Duration::hours(12));
    let tokens = h.refresh(&connection).await;
    let renewed = Connection {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        ..connection
    };
    assert_eq!(h.books(&renewed, "contacts", &org, &[]).await.code(), 0);
}

#[tokio::test]
async fn comments_record_a_promise_and_bump_the_invoice() {
    let (h, connection, org) = connected(options()).await;
    h.fake.seed_demo_books(&org, 5, 10, 2).unwrap();
    let invoice = h.fake.invoices(&org)[0].clone();
    let url = format!(
        "{}/books/v3/invoices/{}/comments",
        connection.api, invoice.invoice_id
    );
    let auth = format!("Zoho-oauthtoken {}", connection.access);
    let (org_id, auth) = (org.as_str(), auth.as_str());
    let post = |body: reqwest::RequestBuilder| async move {
        answer(
            body.query(&[("organization_id", org_id)])
                .header("Authorization", auth)
                .send()
                .await
                .unwrap(),
        )
        .await
    };

    let added = post(h.http.post(&url).json(&json!({
        "description": "Called: will pay on the 20th.",
        "payment_expected_date": "2026-03-20",
        "show_comment_to_clients": false,
    })))
    .await;
    assert_eq!(added.status, StatusCode::OK);
    assert_eq!(added.body, json!({"code": 0, "message": "Comments added."}));
    let comments = h.fake.comments(&org, &invoice.invoice_id);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].description, "Called: will pay on the 20th.");
    assert_eq!(comments[0].commented_by, OWNER);
    assert!(!comments[0].show_comment_to_clients);
    let after = h.fake.invoice(&org, &invoice.invoice_id).unwrap();
    assert_eq!(
        after.payment_expected_date.unwrap().to_string(),
        "2026-03-20"
    );
    assert!(after.last_modified_time > invoice.last_modified_time);
    let detail = h
        .books(
            &connection,
            &format!("invoices/{}", invoice.invoice_id),
            &org,
            &[],
        )
        .await;
    assert_eq!(
        detail.body["invoice"]["payment_expected_date"],
        "2026-03-20"
    );

    let as_form = post(h.http.post(&url).form(&[
        ("description", "Left a voicemail."),
        ("show_comment_to_clients", "true"),
    ]))
    .await;
    assert_eq!(as_form.code(), 0);
    let comments = h.fake.comments(&org, &invoice.invoice_id);
    assert_eq!(comments.len(), 2);
    assert!(comments[1].show_comment_to_clients);
    assert!(comments[1].date_time > comments[0].date_time);

    let no_description = post(
        h.http
            .post(&url)
            .json(&json!({"payment_expected_date": "2026-03-21"})),
    )
    .await;
    assert_eq!(
        (no_description.status, no_description.code()),
        (StatusCode::BAD_REQUEST, 15)
    );
    let bad_date = post(
        h.http
            .post(&url)
            .json(&json!({"description": "x", "payment_expected_date": "20/03/2026"})),
    )
    .await;
    assert_eq!(
        (bad_date.status, bad_date.code()),
        (StatusCode::BAD_REQUEST, 2)
    );
    let not_json = post(
        h.http
            .post(&url)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!(
        (not_json.status, not_json.code()),
        (StatusCode::BAD_REQUEST, 4)
    );
    let unknown = post(
        h.http
            .post(format!("{}/books/v3/invoices/42/comments", connection.api))
            .json(&json!({"description": "x"})),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, 1002)
    );
    assert_eq!(h.fake.comments(&org, &invoice.invoice_id).len(), 2);

    // Reading is not writing: a read-only token cannot comment.
    let reader = h.connect("ZohoBooks.invoices.READ").await;
    let refused = answer(
        h.http
            .post(&url)
            .query(&[("organization_id", &org)])
            .header(
                "Authorization",
                format!("Zoho-oauthtoken {}", reader.access),
            )
            .json(&json!({"description": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNAUTHORIZED, 57)
    );
}

#[tokio::test]
async fn requests_are_counted_by_kind() {
    let (h, connection, org) = connected(options()).await;
    h.fake.reset_counters();
    h.books(&connection, "invoices", &org, &[]).await;
    h.books(&connection, "invoices", &org, &[]).await;
    h.books(&connection, "contacts", &org, &[]).await;
    h.books(&connection, "contacts/1", &org, &[]).await;
    h.refresh(&connection).await;
    let calls = h.fake.api_calls();
    assert_eq!(calls.get("invoices.list"), Some(&2));
    assert_eq!(calls.get("contacts.list"), Some(&1));
    assert_eq!(calls.get("contacts.get"), Some(&1));
    assert_eq!(calls.get("token.refresh_token"), Some(&1));
    assert_eq!(h.fake.token_requests(), 1);
    h.fake.reset_counters();
    assert!(h.fake.api_calls().is_empty());
}

#[tokio::test]
async fn the_router_works_nested_under_a_prefix() {
    let fake = FakeZoho::new(options());
    fake.add_user(OWNER, DataCentre::Us);
    let org = fake
        .add_organization(OWNER, "Nested", "USD", "America/Los_Angeles", true)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fake-zoho", listener.local_addr().unwrap());
    fake.set_base_url(&base);
    let app = axum::Router::new().nest_service("/fake-zoho", fake.router());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let h = Harness { fake, http };

    let (html, _) = h
        .consent_page(&h.authorize_url(DataCentre::Us, ALL_SCOPES, "&access_type=offline"))
        .await;
    assert!(html.contains(&format!("action=\"{base}/accounts/us/oauth/v2/auth\"")));
    let callback = h.press(&html, "accept").await;
    assert_eq!(
        callback.get("accounts-server"),
        format!("{base}/accounts/us")
    );
    let tokens = h
        .exchange(callback.get("accounts-server"), callback.get("code"))
        .await;
    assert_eq!(tokens["api_domain"], format!("{base}/api/us"));
    let connection = Connection {
        accounts: callback.get("accounts-server").to_owned(),
        api: format!("{base}/api/us"),
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
    };
    let answer = h.books(&connection, "invoices", &org, &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::OK, 0));
}
