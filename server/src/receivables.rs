//! Receivables downloads: CSV exports of the filtered customers and invoices lists, and the
//! import templates. Plain GET routes, so a link downloads the file.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_sessions::Session;

use app::accounts::service::Member;
use app::accounts::session;
use app::error::AppError;
use app::receivables::csv_import;
use app::receivables::model::Money;
use app::receivables::queries;
use app::receivables::views::{CustomerFilter, InvoiceFilter};
use app::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/export/customers.csv", get(export_customers))
        .route("/export/invoices.csv", get(export_invoices))
        .route(
            "/import/templates/customers.csv",
            get(|| async {
                csv_response("customers-template.csv", csv_import::customers_template())
            }),
        )
        .route(
            "/import/templates/invoices.csv",
            get(|| async {
                csv_response("invoices-template.csv", csv_import::invoices_template())
            }),
        )
}

/// Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return at the
/// start) gets a leading apostrophe, so an exported customer name cannot execute.
pub fn safe_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// A plain decimal for a spreadsheet: "1234.50".
fn decimal(money: &Money) -> String {
    let digits = money.currency.minor_digits();
    if digits == 0 {
        return money.minor.to_string();
    }
    let scale = 10_i64.pow(digits);
    let sign = if money.minor < 0 { "-" } else { "" };
    let abs = money.minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale.unsigned_abs(),
        abs % scale.unsigned_abs(),
        width = digits as usize
    )
}

fn csv_response(filename: &str, body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn signed_in(state: &AppState, session: &Session) -> Result<Option<Member>, AppError> {
    session::current_member(&state.db, session).await
}

fn write(rows: Vec<Vec<String>>) -> Result<String, AppError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(&row)
            .map_err(|e| AppError::internal("writing CSV", e))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AppError::internal("writing CSV", e))?;
    String::from_utf8(bytes).map_err(|e| AppError::internal("writing CSV", e))
}

async fn export_customers(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let Some(member) = signed_in(&state, &session).await? else {
        return Ok(Redirect::to("/sign-in?next=/customers").into_response());
    };
    let mut filter = CustomerFilter::from_query(|k| params.get(k).cloned());
    filter.after = None;
    let mut rows = vec![
        [
            "customer",
            "company",
            "email",
            "country",
            "currency",
            "outstanding",
            "open_invoices",
            "oldest_overdue_days",
            "phone_status",
            "phone",
            "phone_reason",
            "do_not_call",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    loop {
        let page = queries::list_customers(&state.db, member, &filter).await?;
        for r in page.rows {
            rows.push(vec![
                safe_cell(&r.display_name),
                safe_cell(&r.company_name),
                safe_cell(&r.email),
                r.country,
                r.outstanding.currency.code().to_owned(),
                decimal(&r.outstanding),
                r.open_invoices.to_string(),
                r.oldest_overdue_days
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                r.phone_status.as_str().to_owned(),
                safe_cell(&r.best_phone),
                safe_cell(&r.best_phone_reason),
                r.opted_out.to_string(),
            ]);
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
    }
    Ok(csv_response("customers.csv", write(rows)?))
}

async fn export_invoices(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let Some(member) = signed_in(&state, &session).await? else {
        return Ok(Redirect::to("/sign-in?next=/invoices").into_response());
    };
    let mut filter = InvoiceFilter::from_query(|k| params.get(k).cloned());
    filter.after = None;
    let mut rows = vec![
        [
            "invoice_number",
            "customer",
            "status",
            "issue_date",
            "due_date",
            "days_overdue",
            "currency",
            "total",
            "balance",
            "payment_expected_date",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    loop {
        let page = queries::list_invoices(&state.db, member, &filter).await?;
        for r in page.rows {
            rows.push(vec![
                safe_cell(&r.number),
                safe_cell(&r.customer_name),
                r.status.as_str().to_owned(),
                r.issue_date,
                r.due_date,
                r.days_overdue.map(|d| d.to_string()).unwrap_or_default(),
                r.total.currency.code().to_owned(),
                decimal(&r.total),
                decimal(&r.balance),
                r.payment_expected_date,
            ]);
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
    }
    Ok(csv_response("invoices.csv", write(rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::receivables::model::Currency;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(
            safe_cell("=HYPERLINK(\"http://evil\")"),
            "'=HYPERLINK(\"http://evil\")"
        );
        assert_eq!(safe_cell("+1 555"), "'+1 555");
        assert_eq!(safe_cell("-2+3"), "'-2+3");
        assert_eq!(safe_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(safe_cell("\tcmd"), "'\tcmd");
        assert_eq!(safe_cell("Acme Ltd"), "Acme Ltd");
    }

    #[test]
    fn amounts_are_plain_decimals() {
        assert_eq!(
            decimal(&Money::new(123_450, Currency::parse("GBP").unwrap())),
            "1234.50"
        );
        assert_eq!(
            decimal(&Money::new(-5, Currency::parse("USD").unwrap())),
            "-0.05"
        );
        assert_eq!(
            decimal(&Money::new(1500, Currency::parse("JPY").unwrap())),
            "1500"
        );
        assert_eq!(
            decimal(&Money::new(1_125, Currency::parse("KWD").unwrap())),
            "1.125"
        );
    }
}
