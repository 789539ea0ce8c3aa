//! The Books API v3 of each data centre: organizations, contacts, invoices and invoice
//! comments, behind Zoho's checks (bearer form, token of this DC with the right scope,
//! `organization_id` of an organization the token's user can see), in Zoho's envelope, with
//! rate-limit headers on every response and the faults a test queued.
//!
//! Error codes (Zoho's table): 401/14 missing or malformed `Authorization`; 401/57 bad,
//! expired or revoked token, wrong DC, missing scope, or an organization the user cannot see;
//! 400/2 a field with an invalid value (including a missing `organization_id`); 400/4 a body
//! that is not JSON or a form; 400/15 a required field left out; 404/1002 no such record;
//! 429/44, 45, 1070 limits; 500/1000 internal error.
//!
//! Choices where Zoho documents nothing: `/contacts` lists customers unless
//! `contact_type=vendor` and ignores a `last_modified_time` parameter (Zoho documents no such
//! filter for contacts); `/invoices` sorts by `created_time` descending by default; an
//! unencoded `+` in a `last_modified_time` offset arrives as a space and is refused (400/2);
//! with no per-minute limit configured the rate headers report the daily window, and with
//! neither a limit of `u32::MAX`.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{FromRequest, Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use super::records::{self, FakeComment, FakeContactType, FakeInvoiceStatus, parse_date};
use super::state::{Org, State};
use super::{DataCentre, FakeZoho, Fault};

type Params = HashMap<String, String>;

/// The default and largest page size.
const MAX_PER_PAGE: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Organizations,
    ContactsList,
    ContactsGet,
    InvoicesList,
    InvoicesGet,
    CommentsAdd,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Organizations => "organizations.list",
            Self::ContactsList => "contacts.list",
            Self::ContactsGet => "contacts.get",
            Self::InvoicesList => "invoices.list",
            Self::InvoicesGet => "invoices.get",
            Self::CommentsAdd => "comments.add",
        }
    }

    /// The scope family and operation the request needs (`ZohoBooks.<family>.<op>`).
    fn scope(self) -> (&'static str, &'static str) {
        match self {
            Self::Organizations => ("settings", "read"),
            Self::ContactsList | Self::ContactsGet => ("contacts", "read"),
            Self::InvoicesList | Self::InvoicesGet => ("invoices", "read"),
            Self::CommentsAdd => ("invoices", "create"),
        }
    }
}

fn has_scope(scopes: &[String], kind: Kind) -> bool {
    let (family, operation) = kind.scope();
    scopes.iter().any(|scope| {
        let scope = scope.to_ascii_lowercase();
        let mut parts = scope.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("zohobooks"), Some("fullaccess"), Some("all"), None) => true,
            (Some("zohobooks"), Some(f), Some(op), None) => {
                f == family && (op == operation || op == "all")
            }
            _ => false,
        }
    })
}

#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: i64,
    message: String,
}

fn error(status: StatusCode, code: i64, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn invalid(field: &str) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        2,
        format!("Invalid value passed for {field}"),
    )
}

fn not_authorized() -> ApiError {
    error(
        StatusCode::UNAUTHORIZED,
        57,
        "You are not authorized to perform this operation",
    )
}

/// `X-Rate-Limit-*` values.
#[derive(Debug, Clone, Copy)]
struct RateHeaders {
    limit: u64,
    remaining: u64,
    reset: u64,
}

fn seconds_to_next_minute(now: DateTime<Utc>) -> u64 {
    (60 - now.timestamp().rem_euclid(60)) as u64
}

fn seconds_to_next_day(now: DateTime<Utc>) -> u64 {
    let tomorrow = now.date_naive() + Duration::days(1);
    let midnight = tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    (midnight - now).num_seconds().max(0) as u64
}

/// The headers for `org` (or for a request that never reached an organization).
fn rate_headers(state: &State, org: Option<&Org>, now: DateTime<Utc>) -> RateHeaders {
    let minute_used = org
        .filter(|o| o.minute.key == now.timestamp().div_euclid(60))
        .map_or(0, |o| o.minute.count);
    let day_used = org
        .filter(|o| o.day.key == now.date_naive())
        .map_or(0, |o| o.day.count);
    let (limit, used, reset) = match (state.per_minute_limit, state.daily_limit) {
        (Some(limit), _) => (limit, minute_used, seconds_to_next_minute(now)),
        (None, Some(limit)) => (limit, day_used, seconds_to_next_day(now)),
        (None, None) => (u32::MAX, minute_used, seconds_to_next_minute(now)),
    };
    RateHeaders {
        limit: u64::from(limit),
        remaining: u64::from(limit.saturating_sub(used)),
        reset,
    }
}

/// Counts a request against its organization's windows, or refuses it.
fn charge(state: &mut State, org_id: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
    let (per_minute, daily) = (state.per_minute_limit, state.daily_limit);
    let Some(org) = state.orgs.get_mut(org_id) else {
        return Err(not_authorized());
    };
    let minute = now.timestamp().div_euclid(60);
    if org.minute.key != minute {
        org.minute.key = minute;
        org.minute.count = 0;
    }
    if org.day.key != now.date_naive() {
        org.day.key = now.date_naive();
        org.day.count = 0;
    }
    if daily.is_some_and(|limit| org.day.count >= limit) {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            45,
            format!(
                "You have reached the maximum call rate limit of {} per day.",
                daily.unwrap_or_default()
            ),
        ));
    }
    if per_minute.is_some_and(|limit| org.minute.count >= limit) {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            44,
            "You have exceeded the maximum number of API calls allowed per minute for this organization.",
        ));
    }
    org.minute.count += 1;
    org.day.count += 1;
    Ok(())
}

/// Who is calling, and for which organization.
struct Call {
    dc: DataCentre,
    user: String,
    org_id: String,
}

/// Every check before the endpoint's own work, in Zoho's order: the DC, the bearer form, the
/// token, its scope, the organization, the rate limits.
fn admit(
    state: &mut State,
    kind: Kind,
    dc: &str,
    headers: &HeaderMap,
    params: &Params,
    rate: &mut RateHeaders,
) -> Result<Call, ApiError> {
    let dc = DataCentre::parse(dc)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, 1002, "Resource does not exist."))?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                14,
                "Invalid value passed for Authorization",
            )
        })?;
    let now = state.now();
    let token = state
        .access_tokens
        .get(token)
        .filter(|t| t.dc == dc && t.expires_at > now)
        .ok_or_else(not_authorized)?;
    if !has_scope(&token.scopes, kind) {
        return Err(not_authorized());
    }
    let user = token.user.clone();
    if kind == Kind::Organizations {
        return Ok(Call {
            dc,
            user,
            org_id: String::new(),
        });
    }
    let org_id = params
        .get("organization_id")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| invalid("organization_id"))?
        .to_owned();
    let visible = state
        .orgs
        .get(&org_id)
        .is_some_and(|org| org.dc == dc && org.users.contains(&user));
    if !visible {
        return Err(not_authorized());
    }
    let charged = charge(state, &org_id, now);
    *rate = rate_headers(state, state.orgs.get(&org_id), now);
    charged?;
    Ok(Call { dc, user, org_id })
}

fn fault_error(fault: Fault, rate: &mut RateHeaders) -> ApiError {
    let mut limited = |reset: u64| {
        rate.remaining = 0;
        rate.reset = reset;
    };
    match fault {
        Fault::PerMinuteLimit { reset_seconds } => {
            limited(reset_seconds);
            error(
                StatusCode::TOO_MANY_REQUESTS,
                44,
                "You have exceeded the maximum number of API calls allowed per minute for this organization.",
            )
        }
        Fault::DailyLimit { reset_seconds } => {
            limited(reset_seconds);
            error(
                StatusCode::TOO_MANY_REQUESTS,
                45,
                "You have reached the maximum call rate limit of 1000 per day.",
            )
        }
        Fault::Concurrency { reset_seconds } => {
            limited(reset_seconds);
            error(
                StatusCode::TOO_MANY_REQUESTS,
                1070,
                "Too many requests are in process. Please try again after some time.",
            )
        }
        Fault::InternalError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            1000,
            "Internal error. Please try again later.",
        ),
        Fault::ErrorOnOk { code, message } => error(StatusCode::OK, code, message),
        // Handled before the request is admitted.
        Fault::Slow(_) => error(StatusCode::OK, 0, "success"),
    }
}

fn respond(result: Result<Value, ApiError>, rate: RateHeaders) -> Response {
    let mut response = match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => (
            e.status,
            Json(json!({ "code": e.code, "message": e.message })),
        )
            .into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", rate.limit),
        ("x-rate-limit-remaining", rate.remaining),
        ("x-rate-limit-reset", rate.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

/// Runs one API request: counts it, applies a queued fault, admits it, then does `work`.
async fn serve(
    fake: &FakeZoho,
    kind: Kind,
    dc: &str,
    headers: &HeaderMap,
    params: &Params,
    work: impl FnOnce(&mut State, &Call) -> Result<Value, ApiError>,
) -> Response {
    let fault = {
        let mut state = fake.lock();
        state.count(kind.name());
        state.faults.pop_front()
    };
    let fault = match fault {
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        other => other,
    };
    let mut state = fake.lock();
    let now = state.now();
    let mut rate = rate_headers(&state, None, now);
    let result = match fault {
        Some(fault) => Err(fault_error(fault, &mut rate)),
        None => admit(&mut state, kind, dc, headers, params, &mut rate)
            .and_then(|call| work(&mut state, &call)),
    };
    drop(state);
    respond(result, rate)
}

fn success(resource: &str, value: Value) -> Value {
    json!({ "code": 0, "message": "success", resource: value })
}

// ---- pagination and sorting ----

struct Page {
    page: usize,
    per_page: usize,
}

fn page(params: &Params) -> Result<Page, ApiError> {
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid(name)),
        }
    };
    Ok(Page {
        page: number("page", 1)?,
        per_page: number("per_page", MAX_PER_PAGE)?.min(MAX_PER_PAGE),
    })
}

/// The rows of `ids` on `page`, and whether more follow.
fn slice<'a>(ids: &'a [String], page: &Page) -> (&'a [String], bool) {
    let start = (page.page - 1).saturating_mul(page.per_page).min(ids.len());
    let end = start.saturating_add(page.per_page).min(ids.len());
    (&ids[start..end], end < ids.len())
}

fn page_context(
    page: &Page,
    more: bool,
    report: &str,
    filter: &str,
    column: &str,
    descending: bool,
) -> Value {
    json!({
        "page": page.page,
        "per_page": page.per_page,
        "has_more_page": more,
        "report_name": report,
        "applied_filter": filter,
        "sort_column": column,
        "sort_order": if descending { "D" } else { "A" },
    })
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Text(String),
    Number(i64),
}

/// Zoho ids are digit strings: numeric order is length, then text.
fn id_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn sorted_ids(mut keyed: Vec<(SortKey, String)>, descending: bool) -> Vec<String> {
    keyed.sort_by(|(ka, ia), (kb, ib)| {
        let by_key = if descending { kb.cmp(ka) } else { ka.cmp(kb) };
        by_key.then_with(|| id_order(ia, ib))
    });
    keyed.into_iter().map(|(_, id)| id).collect()
}

fn sort_order(params: &Params, default_descending: bool) -> Result<bool, ApiError> {
    match params.get("sort_order").map(|v| v.trim()) {
        None | Some("") => Ok(default_descending),
        Some("A") => Ok(false),
        Some("D") => Ok(true),
        Some(_) => Err(invalid("sort_order")),
    }
}

// ---- organizations ----

pub(super) async fn organizations(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(
        &fake,
        Kind::Organizations,
        &dc,
        &headers,
        &params,
        |state, call| {
            let orgs: Vec<Value> = state
                .orgs
                .values()
                .filter(|o| o.dc == call.dc && o.users.contains(&call.user))
                .map(|o| {
                    json!({
                        "organization_id": o.id,
                        "name": o.name,
                        "contact_name": call.user,
                        "email": call.user,
                        "is_default_org": o.is_default,
                        "language_code": "en",
                        "fiscal_year_start_month": 0,
                        "account_created_date": o.created.with_timezone(&o.tz).format("%Y-%m-%d").to_string(),
                        "time_zone": o.tz.name(),
                        "is_org_active": true,
                        "currency_code": o.currency_code,
                        "plan_name": "Standard",
                    })
                })
                .collect();
            Ok(success("organizations", Value::Array(orgs)))
        },
    )
    .await
}

// ---- contacts ----

pub(super) async fn list_contacts(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(
        &fake,
        Kind::ContactsList,
        &dc,
        &headers,
        &params,
        |state, call| contacts_page(state, call, &params),
    )
    .await
}

fn contacts_page(state: &mut State, call: &Call, params: &Params) -> Result<Value, ApiError> {
    let page = page(params)?;
    let contact_type = match params.get("contact_type").map(|v| v.trim()) {
        None | Some("") | Some("customer") => FakeContactType::Customer,
        Some("vendor") => FakeContactType::Vendor,
        Some(_) => return Err(invalid("contact_type")),
    };
    let filter = params
        .get("filter_by")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .unwrap_or("Status.All");
    let wanted: fn(bool) -> bool = match filter.to_ascii_lowercase().as_str() {
        "status.all" => |_| true,
        "status.active" => |active| active,
        "status.inactive" => |active| !active,
        // The fake has no duplicates and no CRM link.
        "status.duplicate" | "status.crm" => |_| false,
        _ => return Err(invalid("filter_by")),
    };
    let column = params
        .get("sort_column")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .unwrap_or("contact_name");
    if !matches!(
        column,
        "contact_name"
            | "email"
            | "outstanding_receivable_amount"
            | "created_time"
            | "last_modified_time"
    ) {
        return Err(invalid("sort_column"));
    }
    let descending = sort_order(params, false)?;

    let org = state
        .orgs
        .get_mut(&call.org_id)
        .ok_or_else(not_authorized)?;
    let key = format!("{contact_type:?}|{filter}|{column}|{descending}");
    if org.contact_list.key != key || org.contact_list.version != org.version {
        let outstanding = org.outstanding();
        let keyed = org
            .contacts
            .values()
            .filter(|c| c.contact_type == contact_type && wanted(c.active))
            .map(|c| {
                let sort_key = match column {
                    "contact_name" => SortKey::Text(c.contact_name.to_lowercase()),
                    "email" => SortKey::Text(
                        c.primary_person()
                            .map(|p| p.email.to_lowercase())
                            .unwrap_or_default(),
                    ),
                    "outstanding_receivable_amount" => SortKey::Number(
                        outstanding.get(c.contact_id.as_str()).copied().unwrap_or(0),
                    ),
                    "created_time" => SortKey::Number(c.created_time.timestamp()),
                    _ => SortKey::Number(c.last_modified_time.timestamp()),
                };
                (sort_key, c.contact_id.clone())
            })
            .collect();
        org.contact_list.ids = sorted_ids(keyed, descending);
        org.contact_list.key = key;
        org.contact_list.version = org.version;
    }
    let org = &*org;
    let outstanding = org.outstanding();
    let (ids, more) = slice(&org.contact_list.ids, &page);
    let rows: Vec<Value> = ids
        .iter()
        .filter_map(|id| org.contacts.get(id))
        .map(|c| {
            let owed = outstanding.get(c.contact_id.as_str()).copied().unwrap_or(0);
            records::contact_row(c, owed, org.tz)
        })
        .collect();
    let mut body = success("contacts", Value::Array(rows));
    body["page_context"] = page_context(&page, more, "Contacts", filter, column, descending);
    Ok(body)
}

pub(super) async fn get_contact(
    Extract(fake): Extract<FakeZoho>,
    Path((dc, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(
        &fake,
        Kind::ContactsGet,
        &dc,
        &headers,
        &params,
        |state, call| {
            let org = state.orgs.get(&call.org_id).ok_or_else(not_authorized)?;
            let contact = org
                .contacts
                .get(&id)
                .ok_or_else(|| error(StatusCode::NOT_FOUND, 1002, "Contact does not exist."))?;
            let owed = org
                .invoices
                .values()
                .filter(|i| i.customer_id == contact.contact_id && i.status.is_unpaid())
                .map(|i| i.balance_minor)
                .sum();
            Ok(success(
                "contact",
                records::contact_detail(contact, owed, org.tz),
            ))
        },
    )
    .await
}

// ---- invoices ----

/// `status` values and `filter_by` options of `/invoices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusFilter {
    All,
    Draft,
    Sent,
    Viewed,
    Overdue,
    PartiallyPaid,
    Paid,
    Void,
    Unpaid,
}

impl StatusFilter {
    const ALL: [(StatusFilter, &'static str, &'static str); 9] = [
        (Self::All, "all", "Status.All"),
        (Self::Draft, "draft", "Status.Draft"),
        (Self::Sent, "sent", "Status.Sent"),
        (Self::Viewed, "viewed", "Status.Viewed"),
        (Self::Overdue, "overdue", "Status.OverDue"),
        (
            Self::PartiallyPaid,
            "partially_paid",
            "Status.PartiallyPaid",
        ),
        (Self::Paid, "paid", "Status.Paid"),
        (Self::Void, "void", "Status.Void"),
        (Self::Unpaid, "unpaid", "Status.Unpaid"),
    ];

    fn from_status(value: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, status, _)| *status != "all" && status.eq_ignore_ascii_case(value))
            .map(|(f, _, _)| *f)
    }

    fn from_filter_by(value: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, _, filter)| filter.eq_ignore_ascii_case(value))
            .map(|(f, _, _)| *f)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _, _)| *f == self)
            .map_or("Status.All", |(_, _, name)| name)
    }

    fn matches(self, status: FakeInvoiceStatus) -> bool {
        match self {
            Self::All => true,
            Self::Unpaid => status.is_unpaid(),
            Self::Draft => status == FakeInvoiceStatus::Draft,
            Self::Sent => status == FakeInvoiceStatus::Sent,
            Self::Viewed => status == FakeInvoiceStatus::Viewed,
            Self::Overdue => status == FakeInvoiceStatus::Overdue,
            Self::PartiallyPaid => status == FakeInvoiceStatus::PartiallyPaid,
            Self::Paid => status == FakeInvoiceStatus::Paid,
            Self::Void => status == FakeInvoiceStatus::Void,
        }
    }
}

pub(super) async fn list_invoices(
    Extract(fake): Extract<FakeZoho>,
    Path(dc): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(
        &fake,
        Kind::InvoicesList,
        &dc,
        &headers,
        &params,
        |state, call| invoices_page(state, call, &params),
    )
    .await
}

fn optional<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn optional_date(params: &Params, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    optional(params, name)
        .map(|v| parse_date(v).ok_or_else(|| invalid(name)))
        .transpose()
}

fn invoices_page(state: &mut State, call: &Call, params: &Params) -> Result<Value, ApiError> {
    let page = page(params)?;
    let status = optional(params, "status")
        .map(|v| StatusFilter::from_status(v).ok_or_else(|| invalid("status")))
        .transpose()?;
    let filter_by = optional(params, "filter_by")
        .map(|v| StatusFilter::from_filter_by(v).ok_or_else(|| invalid("filter_by")))
        .transpose()?;
    let customer_id = optional(params, "customer_id");
    let modified_after = optional(params, "last_modified_time")
        .map(|v| records::parse_zoho_time(v).ok_or_else(|| invalid("last_modified_time")))
        .transpose()?;
    let date_start = optional_date(params, "date_start")?;
    let date_end = optional_date(params, "date_end")?;
    let due_start = optional_date(params, "due_date_start")?;
    let due_end = optional_date(params, "due_date_end")?;
    let column = optional(params, "sort_column").unwrap_or("created_time");
    if !matches!(
        column,
        "customer_name"
            | "invoice_number"
            | "date"
            | "due_date"
            | "total"
            | "balance"
            | "created_time"
            | "last_modified_time"
    ) {
        return Err(invalid("sort_column"));
    }
    let descending = sort_order(params, true)?;
    let applied = filter_by.or(status).unwrap_or(StatusFilter::All).name();

    let org = state
        .orgs
        .get_mut(&call.org_id)
        .ok_or_else(not_authorized)?;
    let key = format!(
        "{status:?}|{filter_by:?}|{customer_id:?}|{modified_after:?}|{date_start:?}|{date_end:?}|\
         {due_start:?}|{due_end:?}|{column}|{descending}"
    );
    if org.invoice_list.key != key || org.invoice_list.version != org.version {
        let contacts = &org.contacts;
        let keyed = org
            .invoices
            .values()
            .filter(|i| {
                status.is_none_or(|f| f.matches(i.status))
                    && filter_by.is_none_or(|f| f.matches(i.status))
                    && customer_id.is_none_or(|c| i.customer_id == c)
                    // Zoho's filter is strictly after the given time.
                    && modified_after.is_none_or(|t| i.last_modified_time > t)
                    && date_start.is_none_or(|d| i.date >= d)
                    && date_end.is_none_or(|d| i.date <= d)
                    && due_start.is_none_or(|d| i.due_date >= d)
                    && due_end.is_none_or(|d| i.due_date <= d)
            })
            .map(|i| {
                let sort_key = match column {
                    "customer_name" => SortKey::Text(
                        contacts
                            .get(&i.customer_id)
                            .map(|c| c.contact_name.to_lowercase())
                            .unwrap_or_default(),
                    ),
                    "invoice_number" => SortKey::Text(i.invoice_number.clone()),
                    "date" => SortKey::Text(i.date.to_string()),
                    "due_date" => SortKey::Text(i.due_date.to_string()),
                    "total" => SortKey::Number(i.total_minor),
                    "balance" => SortKey::Number(i.balance_minor),
                    "last_modified_time" => SortKey::Number(i.last_modified_time.timestamp()),
                    _ => SortKey::Number(i.created_time.timestamp()),
                };
                (sort_key, i.invoice_id.clone())
            })
            .collect();
        org.invoice_list.ids = sorted_ids(keyed, descending);
        org.invoice_list.key = key;
        org.invoice_list.version = org.version;
    }
    let org = &*org;
    let (ids, more) = slice(&org.invoice_list.ids, &page);
    let rows: Vec<Value> = ids
        .iter()
        .filter_map(|id| org.invoices.get(id))
        .map(|i| {
            let name = org
                .contacts
                .get(&i.customer_id)
                .map_or("", |c| c.contact_name.as_str());
            records::invoice_row(i, name, org.tz)
        })
        .collect();
    let mut body = success("invoices", Value::Array(rows));
    body["page_context"] = page_context(&page, more, "Invoices", applied, column, descending);
    Ok(body)
}

fn no_invoice() -> ApiError {
    error(StatusCode::NOT_FOUND, 1002, "Invoice does not exist.")
}

pub(super) async fn get_invoice(
    Extract(fake): Extract<FakeZoho>,
    Path((dc, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(
        &fake,
        Kind::InvoicesGet,
        &dc,
        &headers,
        &params,
        |state, call| {
            let base = state.base_url.clone();
            let org = state.orgs.get(&call.org_id).ok_or_else(not_authorized)?;
            let invoice = org.invoices.get(&id).ok_or_else(no_invoice)?;
            // Zoho's customer-facing link; the fake does not serve it.
            let url = format!("{base}/portal/{}/invoices/{}", org.id, invoice.invoice_id);
            let customer = org.contacts.get(&invoice.customer_id);
            Ok(success(
                "invoice",
                records::invoice_detail(invoice, customer, org.tz, url),
            ))
        },
    )
    .await
}

/// A comment body: a JSON object, or form fields (optionally a Zoho-style `JSONString`
/// field holding the JSON). `None` when it is neither.
async fn comment_body(request: Request) -> Option<Map<String, Value>> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let Json(value) = Json::<Value>::from_request(request, &()).await.ok()?;
        return match value {
            Value::Object(fields) => Some(fields),
            _ => None,
        };
    }
    if content_type.is_empty() {
        return Some(Map::new());
    }
    let Form(form) = Form::<Params>::from_request(request, &()).await.ok()?;
    if let Some(text) = form.get("JSONString") {
        return match serde_json::from_str(text).ok()? {
            Value::Object(fields) => Some(fields),
            _ => None,
        };
    }
    Some(
        form.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

pub(super) async fn add_comment(
    Extract(fake): Extract<FakeZoho>,
    Path((dc, id)): Path<(String, String)>,
    Query(params): Query<Params>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let body = comment_body(request).await;
    serve(
        &fake,
        Kind::CommentsAdd,
        &dc,
        &headers,
        &params,
        |state, call| {
            let mut fields = body.ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    4,
                    "Invalid value passed for JSONString",
                )
            })?;
            // Query parameters count too, below the body.
            for (name, value) in &params {
                fields
                    .entry(name.clone())
                    .or_insert_with(|| Value::String(value.clone()));
            }
            add_comment_to(state, call, &id, &fields)
        },
    )
    .await
}

fn add_comment_to(
    state: &mut State,
    call: &Call,
    invoice_id: &str,
    fields: &Map<String, Value>,
) -> Result<Value, ApiError> {
    if !state
        .orgs
        .get(&call.org_id)
        .is_some_and(|o| o.invoices.contains_key(invoice_id))
    {
        return Err(no_invoice());
    }
    let description = match fields.get("description") {
        Some(Value::String(text)) if !text.trim().is_empty() => text.clone(),
        Some(Value::String(_)) | None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                15,
                "Please enter the description",
            ));
        }
        Some(_) => return Err(invalid("description")),
    };
    let expected = match fields.get("payment_expected_date") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => {
            Some(parse_date(text.trim()).ok_or_else(|| invalid("payment_expected_date"))?)
        }
        Some(_) => return Err(invalid("payment_expected_date")),
    };
    let show = match fields.get("show_comment_to_clients") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(text)) => match text.trim() {
            "true" => true,
            "false" | "" => false,
            _ => return Err(invalid("show_comment_to_clients")),
        },
        Some(_) => return Err(invalid("show_comment_to_clients")),
    };
    let stamp = state.stamp();
    let comment_id = state.next_id();
    let org = state
        .orgs
        .get_mut(&call.org_id)
        .ok_or_else(not_authorized)?;
    let invoice = org.invoices.get_mut(invoice_id).ok_or_else(no_invoice)?;
    if expected.is_some() {
        invoice.payment_expected_date = expected;
    }
    invoice.last_modified_time = stamp;
    org.version += 1;
    org.comments.push(FakeComment {
        comment_id,
        invoice_id: invoice_id.to_owned(),
        description,
        payment_expected_date: expected,
        show_comment_to_clients: show,
        commented_by: call.user.clone(),
        date_time: stamp,
    });
    Ok(json!({ "code": 0, "message": "Comments added." }))
}
