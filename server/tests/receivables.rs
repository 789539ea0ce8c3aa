//! Receivables data: CSV import and the upserts behind it, on both backends.

mod common;

use app::accounts::service::Member;
use app::error::AppError;
use app::receivables::import::import_csv;
use common::TestApp;

/// A customers file of `n` customers in a few countries, with a mix of phone numbers.
fn customers_csv(n: usize) -> String {
    let mut csv = String::from(
        "customer_id,display_name,company_name,email,currency,billing_country,timezone,contact_name,contact_phone,contact_mobile\n",
    );
    for i in 0..n {
        let (country, currency, tz, mobile) = match i % 4 {
            0 => ("GB", "GBP", "Europe/London", "07911 123456"),
            1 => ("US", "USD", "America/New_York", "(415) 555-2671"),
            2 => ("DE", "EUR", "Europe/Berlin", "not a number"),
            _ => ("IN", "INR", "Asia/Kolkata", ""),
        };
        csv.push_str(&format!(
            "C{i},Customer {i},Company {i} Ltd,billing{i}@example.com,{currency},{country},{tz},Contact {i},,{mobile}\n"
        ));
    }
    csv
}

/// `per_customer` invoices for each of `customers` customers.
fn invoices_csv(customers: usize, per_customer: usize) -> String {
    let mut csv = String::from(
        "invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance\n",
    );
    for c in 0..customers {
        let currency = ["GBP", "USD", "EUR", "INR"][c % 4];
        for k in 0..per_customer {
            let (status, balance) = match k % 3 {
                0 => ("overdue", "100.00"),
                1 => ("partially_paid", "40.50"),
                _ => ("paid", "0"),
            };
            csv.push_str(&format!(
                "I{c}-{k},C{c},INV-{c}-{k},{status},2026-0{m}-01,2026-0{m}-28,{currency},100.00,{balance}\n",
                m = 1 + (k % 9)
            ));
        }
    }
    csv
}

/// The figures kept beside the invoices (customer totals, invoice rollups) equal what the
/// invoices themselves say.
async fn assert_derived_figures_match(app: &TestApp, org_id: i64) {
    let stored = app.snapshot("SELECT currency, status, due_date, is_open, invoice_count, balance_minor FROM invoice_rollups WHERE org_id = $1 ORDER BY currency, status, due_date, is_open", org_id).await;
    let live = app.snapshot("SELECT currency, status, due_date, CASE WHEN status IN ('sent', 'overdue', 'partially_paid') AND balance_minor > 0 THEN 1 ELSE 0 END AS is_open, COUNT(*), CAST(SUM(balance_minor) AS BIGINT) FROM invoices WHERE org_id = $1 GROUP BY currency, status, due_date, 4 ORDER BY currency, status, due_date, 4", org_id).await;
    assert!(!live.is_empty());
    assert_eq!(stored, live, "invoice rollups");
    let stored = app.snapshot("SELECT id, outstanding_minor, open_invoices, oldest_open_due FROM customers WHERE org_id = $1 ORDER BY id", org_id).await;
    let live = app.snapshot("SELECT c.id, \
        COALESCE((SELECT CAST(SUM(i.balance_minor) AS BIGINT) FROM invoices i WHERE i.customer_id = c.id AND i.currency = c.currency AND i.status IN ('sent', 'overdue', 'partially_paid') AND i.balance_minor > 0), 0), \
        (SELECT COUNT(*) FROM invoices i WHERE i.customer_id = c.id AND i.status IN ('sent', 'overdue', 'partially_paid') AND i.balance_minor > 0), \
        COALESCE((SELECT MIN(i.due_date) FROM invoices i WHERE i.customer_id = c.id AND i.status IN ('sent', 'overdue', 'partially_paid') AND i.balance_minor > 0), '9999-12-31') \
        FROM customers c WHERE c.org_id = $1 ORDER BY c.id", org_id).await;
    assert_eq!(stored, live, "customer totals");
}

/// `n` invoices spread over customers C0..C{customers}, with many distinct due dates.
fn varied_invoices_csv(customers: usize, n: usize, variant: usize) -> String {
    let mut csv = String::from(
        "invoice_id,customer_id,invoice_number,status,issue_date,due_date,currency,total,balance\n",
    );
    for k in 0..n {
        let c = (k * 7 + variant) % customers;
        let currency = ["GBP", "USD", "EUR", "INR"][c % 4];
        let (status, balance) = match (k + variant) % 4 {
            0 => ("overdue", format!("{}.00", 10 + k % 90)),
            1 => ("sent", format!("{}.25", 10 + k % 50)),
            2 => ("paid", "0".to_owned()),
            _ => ("void", "0".to_owned()),
        };
        let due = format!(
            "2026-{:02}-{:02}",
            1 + (k + variant) % 12,
            1 + (k / 12) % 28
        );
        csv.push_str(&format!(
            "I{k},C{c},INV-{k},{status},2025-12-01,{due},{currency},100.00,{balance}\n"
        ));
    }
    csv
}

async fn count(app: &TestApp, sql: &'static str, org_id: i64) -> i64 {
    sqlx::query_scalar(sql)
        .bind(org_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

both_backends! {
    async fn importing_the_same_files_twice_changes_nothing(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        let customers = customers_csv(40);
        let invoices = invoices_csv(40, 3);

        let first = import_csv(&app.db, member, Some(customers.as_bytes()), Some(invoices.as_bytes())).await.unwrap();
        assert_eq!((first.customers.new, first.customers.updated, first.customers.unchanged), (40, 0, 0));
        assert_eq!((first.invoices.new, first.invoices.updated, first.invoices.unchanged), (120, 0, 0));
        let snapshot = app.snapshot("SELECT id, content_hash, updated_at, outstanding_minor FROM customers WHERE org_id = $1 ORDER BY id", member.org_id).await;
        let invoice_snapshot = app.snapshot("SELECT id, content_hash, updated_at FROM invoices WHERE org_id = $1 ORDER BY id", member.org_id).await;

        let second = import_csv(&app.db, member, Some(customers.as_bytes()), Some(invoices.as_bytes())).await.unwrap();
        assert_eq!((second.customers.new, second.customers.updated, second.customers.unchanged), (0, 0, 40));
        assert_eq!((second.invoices.new, second.invoices.updated, second.invoices.unchanged), (0, 0, 120));
        assert_eq!(app.snapshot("SELECT id, content_hash, updated_at, outstanding_minor FROM customers WHERE org_id = $1 ORDER BY id", member.org_id).await, snapshot);
        assert_eq!(app.snapshot("SELECT id, content_hash, updated_at FROM invoices WHERE org_id = $1 ORDER BY id", member.org_id).await, invoice_snapshot);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM contact_persons WHERE org_id = $1", member.org_id).await, 40);
    }

    async fn an_opt_out_survives_later_imports(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        let header = "customer_id,display_name,currency,billing_country,opted_out\n";
        let opted_out = format!("{header}C1,Customer 1,GBP,GB,true\nC2,Customer 2,GBP,GB,false\n");
        import_csv(&app.db, member, Some(opted_out.as_bytes()), None).await.unwrap();
        // A later file (or a sync from the accounting system, which knows nothing of opt-outs)
        // says otherwise and changes the name: the name follows, the opt-out stays.
        let later = format!("{header}C1,Customer One,GBP,GB,false\nC2,Customer 2,GBP,GB,true\n");
        let summary = import_csv(&app.db, member, Some(later.as_bytes()), None).await.unwrap();
        assert_eq!(summary.customers.updated, 2);
        let rows = app.snapshot("SELECT external_id, display_name, opted_out FROM customers WHERE org_id = $1 ORDER BY external_id", member.org_id).await;
        assert_eq!(rows, ["C1|Customer One|1", "C2|Customer 2|1"]);
    }

    async fn searches_page_through_every_match_whether_few_or_many(app: TestApp) {
        use app::receivables::queries::{list_customers, list_invoices};
        use app::receivables::views::{CustomerFilter, InvoiceFilter};
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        let customers = customers_csv(2_100);
        import_csv(&app.db, member, Some(customers.as_bytes()), Some(invoices_csv(2_100, 1).as_bytes())).await.unwrap();
        // "customer 1" names 1, 10–19, 100–199 and 1000–1999 (few enough to be read by id);
        // "customer" names all 2,100 (too many: searched as a subquery).
        for (q, expected) in [("customer 1", 1_111), ("Customer", 2_100), ("nobody at all", 0)] {
            let mut filter = CustomerFilter { q: q.into(), ..Default::default() };
            let mut names = Vec::new();
            loop {
                let page = list_customers(&app.db, member, &filter).await.unwrap();
                names.extend(page.rows.into_iter().map(|r| r.display_name.to_lowercase()));
                match page.next {
                    Some(next) => filter.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(names.len(), expected, "{q}");
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{q}: in name order, each once");
            assert!(names.iter().all(|n| n.contains(&q.to_lowercase())), "{q}");
        }
        for (q, expected) in [("inv-1", 1_111), ("inv-", 2_100)] {
            let mut filter = InvoiceFilter { q: q.into(), ..Default::default() };
            let mut seen = std::collections::HashSet::new();
            let first = list_invoices(&app.db, member, &filter).await.unwrap();
            let counted: i64 = first.totals.iter().map(|t| t.count).sum();
            assert_eq!(counted, expected as i64, "{q}: totals count every match");
            loop {
                let page = list_invoices(&app.db, member, &filter).await.unwrap();
                for row in page.rows {
                    assert!(row.number.to_lowercase().contains(q), "{q}");
                    assert!(seen.insert(row.id), "{q}: each invoice once");
                }
                match page.next {
                    Some(next) => filter.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen.len(), expected, "{q}");
        }
    }

    async fn a_changed_invoice_is_updated_and_totals_follow(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        let customers = customers_csv(2);
        let invoices = invoices_csv(2, 3);
        import_csv(&app.db, member, Some(customers.as_bytes()), Some(invoices.as_bytes())).await.unwrap();
        let outstanding: i64 = count(&app, "SELECT outstanding_minor FROM customers WHERE org_id = $1 AND external_id = 'C0'", member.org_id).await;
        assert_eq!(outstanding, 10_000 + 4_050, "one overdue and one partially paid invoice");

        let paid = invoices.replace("I0-0,C0,INV-0-0,overdue,2026-01-01,2026-01-28,GBP,100.00,100.00", "I0-0,C0,INV-0-0,paid,2026-01-01,2026-01-28,GBP,100.00,0");
        assert_ne!(paid, invoices);
        let summary = import_csv(&app.db, member, None, Some(paid.as_bytes())).await.unwrap();
        assert_eq!((summary.invoices.new, summary.invoices.updated, summary.invoices.unchanged), (0, 1, 5));
        let outstanding: i64 = count(&app, "SELECT outstanding_minor FROM customers WHERE org_id = $1 AND external_id = 'C0'", member.org_id).await;
        assert_eq!(outstanding, 4_050);
        let oldest: String = sqlx::query_scalar("SELECT oldest_open_due FROM customers WHERE org_id = $1 AND external_id = 'C0'")
            .bind(member.org_id).fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(oldest, "2026-02-28");
        assert_derived_figures_match(&app, member.org_id).await;
    }

    async fn derived_figures_follow_every_kind_of_change(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        // Large enough for the whole-organization refreshes (2,000+ customers, 500+ keys)...
        let customers = customers_csv(2_400);
        import_csv(&app.db, member, Some(customers.as_bytes()), Some(varied_invoices_csv(2_400, 3_000, 0).as_bytes())).await.unwrap();
        assert_derived_figures_match(&app, member.org_id).await;
        // ...then every invoice changes status, amount, due date and customer at once...
        import_csv(&app.db, member, None, Some(varied_invoices_csv(2_400, 3_000, 1).as_bytes())).await.unwrap();
        assert_derived_figures_match(&app, member.org_id).await;
        // ...and a few change, which goes key by key and customer by customer.
        let few: String = varied_invoices_csv(2_400, 3_000, 1)
            .lines()
            .enumerate()
            .map(|(n, line)| match n {
                5 => line.replace(",sent,", ",paid,").replace(",10.25", ",0"),
                9 => line.replace(",C", ",C1").replace("2026-", "2027-"),
                _ => line.to_owned(),
            } + "\n")
            .collect();
        let summary = import_csv(&app.db, member, None, Some(few.as_bytes())).await.unwrap();
        assert!(summary.invoices.updated >= 1 && summary.invoices.updated <= 2, "{summary:?}");
        assert_derived_figures_match(&app, member.org_id).await;
    }

    async fn one_bad_row_imports_nothing_and_is_named(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        let mut customers = customers_csv(100);
        customers = customers.replace("C56,Customer 56,Company 56 Ltd,billing56@example.com,GBP", "C56,Customer 56,Company 56 Ltd,billing56@example.com,POUNDS");
        let invoices = invoices_csv(100, 1);
        let err = import_csv(&app.db, member, Some(customers.as_bytes()), Some(invoices.as_bytes())).await.unwrap_err();
        match err {
            AppError::InvalidFile { file, errors } => {
                assert_eq!(file, "customers");
                assert_eq!(errors.len(), 1);
                assert_eq!((errors[0].row, errors[0].column.as_str()), (58, "currency"));
            }
            other => panic!("expected InvalidFile, got {other:?}"),
        }
        assert_eq!(count(&app, "SELECT COUNT(*) FROM customers WHERE org_id = $1", member.org_id).await, 0);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM invoices WHERE org_id = $1", member.org_id).await, 0);

        // Invoices naming a customer that was never imported are refused too.
        let err = import_csv(&app.db, member, None, Some(invoices.as_bytes())).await.unwrap_err();
        assert!(matches!(&err, AppError::InvalidFile { file, errors } if file == "invoices" && errors.len() == 100), "{err:?}");
    }

    async fn phone_numbers_are_normalized_and_ranked(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        import_csv(&app.db, member, Some(customers_csv(4).as_bytes()), None).await.unwrap();
        let rows = app.snapshot(
            "SELECT external_id, phone_status, best_phone_e164, best_phone_reason FROM customers WHERE org_id = $1 ORDER BY external_id",
            member.org_id,
        )
        .await;
        assert_eq!(rows[0], "C0|valid|+447911123456|primary contact Contact 0's mobile");
        assert_eq!(rows[1], "C1|valid|+14155552671|primary contact Contact 1's mobile");
        assert!(rows[2].starts_with("C2|invalid||no usable number (not a number:"), "{}", rows[2]);
        assert_eq!(rows[3], "C3|missing||no phone number on file");
        let raw: String = sqlx::query_scalar("SELECT mobile_raw FROM contact_persons WHERE org_id = $1 ORDER BY customer_id LIMIT 1")
            .bind(member.org_id).fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(raw, "07911 123456", "the raw text is kept");
    }

    async fn viewers_cannot_import(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let mut viewer = app.member(&mut owner).await;
        viewer.role = app::accounts::model::Role::Viewer;
        let err = import_csv(&app.db, viewer, Some(customers_csv(1).as_bytes()), None).await.unwrap_err();
        assert_eq!(err, AppError::Forbidden);
    }

    async fn organizations_import_the_same_ids_separately(app: TestApp) {
        let mut a = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let mut b = app.signed_up("Bo", "bo@example.com", "Bolt").await;
        let a = app.member(&mut a).await;
        let b = app.member(&mut b).await;
        import_csv(&app.db, b, Some(customers_csv(3).as_bytes()), Some(invoices_csv(3, 2).as_bytes())).await.unwrap();
        let before = app.snapshot("SELECT id, display_name, content_hash, outstanding_minor FROM customers WHERE org_id = $1 ORDER BY id", b.org_id).await;
        let changed = customers_csv(3).replace("Customer 1,", "Renamed 1,");
        let summary = import_csv(&app.db, a, Some(changed.as_bytes()), Some(invoices_csv(3, 2).as_bytes())).await.unwrap();
        assert_eq!(summary.customers.new, 3, "A's import creates A's own rows");
        assert_eq!(app.snapshot("SELECT id, display_name, content_hash, outstanding_minor FROM customers WHERE org_id = $1 ORDER BY id", b.org_id).await, before);
    }

    async fn thousands_of_invoices_import_in_one_go(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        let summary = import_csv(&app.db, member, Some(customers_csv(500).as_bytes()), Some(invoices_csv(500, 10).as_bytes())).await.unwrap();
        assert_eq!((summary.customers.new, summary.invoices.new), (500, 5_000));
        assert_eq!(count(&app, "SELECT COUNT(*) FROM invoices WHERE org_id = $1", member.org_id).await, 5_000);
        assert_derived_figures_match(&app, member.org_id).await;
    }
}

mod reading {
    use std::collections::HashSet;

    use super::*;
    use app::receivables::model::{AgingBucket, PhoneStatus};
    use app::receivables::queries::{dashboard, list_customers, list_invoices};
    use app::receivables::views::{CustomerFilter, CustomerSort, InvoiceFilter, InvoiceSort};
    use server::demo::{BooksSize, load_books};

    async fn with_books(app: &TestApp) -> Member {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme").await;
        let member = app.member(&mut owner).await;
        load_books(
            &app.db,
            member.org_id,
            BooksSize {
                customers: 120,
                invoices: 600,
            },
            3,
        )
        .await
        .unwrap();
        member
    }

    both_backends! {
        async fn customer_pages_cover_everyone_once_in_order(app: TestApp) {
            let member = with_books(&app).await;
            for sort in CustomerSort::ALL {
                let mut filter = CustomerFilter { sort, ..Default::default() };
                let mut seen = Vec::new();
                let mut pages = 0;
                loop {
                    let page = list_customers(&app.db, member, &filter).await.unwrap();
                    pages += 1;
                    seen.extend(page.rows.iter().map(|r| (r.id, r.display_name.to_lowercase(), r.outstanding.minor)));
                    match page.next {
                        Some(next) => filter.after = Some(next),
                        None => break,
                    }
                }
                assert_eq!(pages, 3, "{sort:?}");
                let ids: HashSet<i64> = seen.iter().map(|s| s.0).collect();
                assert_eq!((seen.len(), ids.len()), (120, 120), "{sort:?}: every customer exactly once");
                match sort {
                    CustomerSort::Name => assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1)),
                    CustomerSort::Outstanding => assert!(seen.windows(2).all(|w| w[0].2 >= w[1].2)),
                    CustomerSort::OldestOverdue => {}
                }
            }
        }

        async fn customers_can_be_searched_and_filtered(app: TestApp) {
            let member = with_books(&app).await;
            let all = list_customers(&app.db, member, &CustomerFilter::default()).await.unwrap();
            let target = all.rows.iter().find(|r| !r.best_phone.is_empty()).unwrap().clone();
            for q in [target.display_name.to_uppercase(), target.email.clone(), target.best_phone.clone()] {
                let found = list_customers(&app.db, member, &CustomerFilter { q: q.clone(), ..Default::default() }).await.unwrap();
                assert!(found.rows.iter().any(|r| r.id == target.id), "search {q:?}");
            }
            let none = list_customers(&app.db, member, &CustomerFilter { q: "%".into(), ..Default::default() }).await.unwrap();
            assert!(none.rows.is_empty(), "a % is a literal character, not a wildcard");
            // Substrings from the middle (trigram index), terms too short for a trigram (scan),
            // and quotes (phrase syntax on SQLite) all work.
            let middle: String = target.email.chars().skip(2).take(6).collect();
            let found = list_customers(&app.db, member, &CustomerFilter { q: middle.clone(), ..Default::default() }).await.unwrap();
            assert!(!found.rows.is_empty(), "search {middle:?}");
            let short: String = target.display_name.chars().take(2).collect();
            let found = list_customers(&app.db, member, &CustomerFilter { q: short.clone(), ..Default::default() }).await.unwrap();
            assert!(!found.rows.is_empty(), "search {short:?}");
            for odd in ["\"quoted\" term", "a\"b", "NEAR(x y)", "*"] {
                let found = list_customers(&app.db, member, &CustomerFilter { q: odd.into(), ..Default::default() }).await.unwrap();
                assert!(found.rows.is_empty(), "search {odd:?}");
                list_invoices(&app.db, member, &InvoiceFilter { q: odd.into(), ..Default::default() }).await.unwrap();
            }
            let invoices = list_invoices(&app.db, member, &InvoiceFilter::default()).await.unwrap();
            let number = &invoices.rows[0].number;
            let tail: String = number.chars().skip(1).collect();
            let found = list_invoices(&app.db, member, &InvoiceFilter { q: tail.to_lowercase(), ..Default::default() }).await.unwrap();
            assert!(found.rows.iter().any(|r| &r.number == number), "invoice search {tail:?}");

            let overdue = list_customers(&app.db, member, &CustomerFilter { overdue_only: true, ..Default::default() }).await.unwrap();
            assert!(!overdue.rows.is_empty() && overdue.rows.iter().all(|r| r.oldest_overdue_days.is_some()));
            let gb = list_customers(&app.db, member, &CustomerFilter { country: "gb".into(), ..Default::default() }).await.unwrap();
            assert!(!gb.rows.is_empty() && gb.rows.iter().all(|r| r.country == "GB"));
            assert!(all.countries.len() >= 5);
            let invalid = list_customers(&app.db, member, &CustomerFilter { phone: Some(PhoneStatus::Invalid), ..Default::default() }).await.unwrap();
            assert!(!invalid.rows.is_empty() && invalid.rows.iter().all(|r| r.phone_status == PhoneStatus::Invalid && r.best_phone.is_empty()));
        }

        async fn invoice_buckets_totals_and_pages_agree(app: TestApp) {
            let member = with_books(&app).await;
            let mut filter = InvoiceFilter { bucket: Some(AgingBucket::Days31To60), sort: InvoiceSort::DaysOverdue, ..Default::default() };
            let first = list_invoices(&app.db, member, &filter).await.unwrap();
            let mut rows = first.rows.clone();
            let mut next = first.next.clone();
            while let Some(cursor) = next {
                filter.after = Some(cursor);
                let page = list_invoices(&app.db, member, &filter).await.unwrap();
                rows.extend(page.rows);
                next = page.next;
            }
            assert!(!rows.is_empty());
            assert!(rows.iter().all(|r| matches!(r.days_overdue, Some(31..=60))), "only 31–60 days overdue");
            assert!(rows.windows(2).all(|w| w[0].due_date <= w[1].due_date), "most overdue first");
            let counted: i64 = first.totals.iter().map(|t| t.count).sum();
            assert_eq!(counted as usize, rows.len(), "totals cover the whole filter, not one page");
            for total in &first.totals {
                let sum: i64 = rows.iter().filter(|r| r.balance.currency == total.balance.currency).map(|r| r.balance.minor).sum();
                assert_eq!(sum, total.balance.minor);
            }

            let by_number = list_invoices(&app.db, member, &InvoiceFilter { q: rows[0].number.to_lowercase(), ..Default::default() }).await.unwrap();
            assert_eq!(by_number.rows[0].id, rows[0].id);
            let bad = list_invoices(&app.db, member, &InvoiceFilter { min_balance: "lots".into(), ..Default::default() }).await.unwrap_err();
            assert!(bad.field("min_balance").is_some());
            let big = list_invoices(&app.db, member, &InvoiceFilter { min_balance: "5000".into(), currency: "GBP".into(), ..Default::default() }).await.unwrap();
            assert!(big.rows.iter().all(|r| r.balance.minor >= 500_000 && r.balance.currency.code() == "GBP"));
        }

        async fn the_dashboard_adds_up(app: TestApp) {
            let member = with_books(&app).await;
            let data = dashboard(&app.db, member).await.unwrap();
            assert_eq!(data.customers, 120);
            assert!(data.currencies.len() >= 3);
            for summary in &data.currencies {
                let aged: i64 = summary.aging.iter().map(|a| a.amount.minor).sum();
                assert_eq!(aged, summary.receivable.minor);
                let overdue: i64 = summary.aging.iter().skip(1).map(|a| a.amount.minor).sum();
                assert_eq!(overdue, summary.overdue.minor);
            }
            let overdue_listed = list_invoices(&app.db, member, &InvoiceFilter::default()).await.unwrap();
            assert!(overdue_listed.totals.iter().map(|t| t.count).sum::<i64>() >= data.overdue_invoices);
            assert_eq!(data.top_overdue.len(), 10);
            assert!(data.top_overdue.windows(2).all(|w| w[0].overdue.minor >= w[1].overdue.minor));
        }

        async fn another_organizations_books_stay_out_of_view(app: TestApp) {
            let member = with_books(&app).await;
            let mut other = app.signed_up("Bo", "bo@example.com", "Bolt").await;
            let other = app.member(&mut other).await;
            assert!(list_customers(&app.db, other, &CustomerFilter::default()).await.unwrap().rows.is_empty());
            assert!(list_invoices(&app.db, other, &InvoiceFilter::default()).await.unwrap().rows.is_empty());
            let data = dashboard(&app.db, other).await.unwrap();
            assert!(data.currencies.is_empty() && data.top_overdue.is_empty() && data.customers == 0);
            let mine = list_invoices(&app.db, member, &InvoiceFilter::default()).await.unwrap();
            let theirs = list_invoices(&app.db, other, &InvoiceFilter { customer_id: Some(mine.rows[0].customer_id), ..Default::default() }).await.unwrap();
            assert!(theirs.rows.is_empty());
        }
    }
}
