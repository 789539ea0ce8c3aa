//! Books and profiles for the reminder-engine tests.

use app::accounts::service::Member;
use app::db::Db;
use app::receivables::model::{Currency, InvoiceStatus};
use app::receivables::upsert::{ContactRecord, CustomerRecord, InvoiceRecord, upsert_books};
use app::reminders::profile::{BusinessProfile, Channel, SequenceStep};
use app::reminders::service::{profile, save_profile};
use chrono::{Duration, NaiveDate};
use std::sync::{Arc, Mutex};

use app::reminders::dispatch::CallRequest;

/// `n` customers in London, one invoice each, due `due`.
pub async fn books(db: &Db, org_id: i64, n: usize, due: NaiveDate) {
    books_in(db, org_id, n, due, "").await;
}

/// `n` customers in London (or in `timezone` when given), one invoice each, due `due`.
pub async fn books_in(db: &Db, org_id: i64, n: usize, due: NaiveDate, timezone: &str) {
    let gbp = Currency::parse("GBP").unwrap();
    let customers: Vec<CustomerRecord> = (0..n)
        .map(|i| CustomerRecord {
            external_id: format!("c{i}"),
            display_name: format!("Customer {i:04}"),
            company_name: String::new(),
            email: String::new(),
            currency: gbp.clone(),
            active: true,
            billing_street: String::new(),
            billing_city: "London".into(),
            billing_state: String::new(),
            billing_postcode: String::new(),
            billing_country: "GB".into(),
            timezone: timezone.to_owned(),
            notes: String::new(),
            opted_out: false,
            contacts: vec![ContactRecord {
                name: "Accounts".into(),
                email: String::new(),
                phone: format!("+44 20 7946 {:04}", i % 10_000),
                mobile: String::new(),
                is_primary: true,
            }],
            source_updated_at: None,
        })
        .collect();
    let invoices: Vec<InvoiceRecord> = (0..n)
        .map(|i| InvoiceRecord {
            external_id: format!("i{i}"),
            customer_external_id: format!("c{i}"),
            number: format!("INV-{i:05}"),
            status: InvoiceStatus::Overdue,
            issue_date: (due - Duration::days(30)).to_string(),
            due_date: due.to_string(),
            currency: gbp.clone(),
            total_minor: 120_000,
            balance_minor: 120_000,
            payment_expected_date: String::new(),
            source_updated_at: None,
        })
        .collect();
    let mut tx = db.begin().await.unwrap();
    upsert_books(&mut tx, org_id, "csv", &customers, &invoices)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Calls on, one step on the due date, room for many calls.
pub async fn calls_on(
    db: &Db,
    owner: Member,
    tweak: impl FnOnce(&mut BusinessProfile),
) -> BusinessProfile {
    let mut profile = profile(db, owner).await.unwrap();
    profile.timezone = "Europe/London".into();
    profile.sequence = vec![SequenceStep {
        offset_days: 0,
        channel: Channel::Call,
    }];
    profile.max_concurrent_calls = 50;
    profile.daily_call_limit = 10_000;
    profile.calls_enabled = true;
    tweak(&mut profile);
    save_profile(db, owner, &profile).await.unwrap();
    profile
}

/// Dials every due reminder with a provider that records the calls and reports nothing (the
/// test plays the agent); returns the calls, in reminder order.
pub async fn dial_due(db: &Db, clock: &server::reminders::ManualClock) -> Vec<CallRequest> {
    let provider = Silent::default();
    server::reminders::Scheduler::new(
        db.clone(),
        Arc::new(clock.clone()),
        Some(Arc::new(provider.clone())),
        "test",
        server::reminders::Settings::default(),
    )
    .run_until_idle()
    .await
    .unwrap();
    let mut calls = provider.0.lock().unwrap().clone();
    calls.sort_by_key(|c| c.reminder_id);
    calls
}

#[derive(Clone, Default)]
struct Silent(Arc<Mutex<Vec<CallRequest>>>);

#[async_trait::async_trait]
impl server::reminders::CallProvider for Silent {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn place(
        &self,
        call: &CallRequest,
    ) -> Result<server::reminders::Placed, server::reminders::PlaceError> {
        self.0.lock().unwrap().push(call.clone());
        Ok(server::reminders::Placed {
            reference: server::reminders::livekit::room_name(call.attempt_id),
        })
    }
}
