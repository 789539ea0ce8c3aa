//! The demo organization the run command loads, so a new user can sign in and look around at
//! once: three people, two organizations, and believable books. Loading is idempotent: an
//! existing demo account is left as it is.

use app::accounts::model::{Email, Role};
use app::accounts::{password, service};
use app::db::Db;
use app::error::AppError;
use app::receivables::demo_books;
use app::receivables::model::ImportSummary;
use app::receivables::upsert;
use chrono_tz::Tz;

pub const DEMO_EMAIL: &str = "demo@duecall.test";
pub const DEMO_PASSWORD: &str = "duecall-demo";
const MAIN_ORG: &str = "Northwind Supplies";
const SECOND_ORG: &str = "Harbor Goods";

/// How many customers and invoices the demo books hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BooksSize {
    pub customers: usize,
    pub invoices: usize,
}

impl BooksSize {
    pub const DEMO: BooksSize = BooksSize {
        customers: 200,
        invoices: 1_000,
    };
    const SECOND: BooksSize = BooksSize {
        customers: 40,
        invoices: 180,
    };
}

/// People in the demo organizations: email, name, role in the main one.
const PEOPLE: [(&str, &str, Role); 3] = [
    (DEMO_EMAIL, "Dana Demo", Role::Owner),
    ("mia.member@duecall.test", "Mia Member", Role::Member),
    ("victor.viewer@duecall.test", "Victor Viewer", Role::Viewer),
];

/// What happened when loading the demo.
#[derive(Debug, PartialEq, Eq)]
pub enum DemoOutcome {
    Created,
    AlreadyPresent,
}

/// Creates the demo users, two demo organizations and their books, unless the demo account
/// exists.
pub async fn load(db: &Db) -> Result<DemoOutcome, AppError> {
    let demo = Email::parse(DEMO_EMAIL).map_err(|e| AppError::internal("demo email", e))?;
    let password_hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
    let mut tx = db.begin().await?;
    let main_org = service::insert_org(&mut tx, MAIN_ORG, "Europe/London", "GBP", true).await?;
    let second_org =
        service::insert_org(&mut tx, SECOND_ORG, "America/New_York", "USD", true).await?;
    for (email, name, role) in PEOPLE {
        let email = Email::parse(email).map_err(|e| AppError::internal("demo email", e))?;
        let Some(user_id) = service::insert_user(&mut tx, &email, name, &password_hash).await?
        else {
            if email == demo {
                // The demo is already loaded: undo the organizations created above.
                tx.rollback().await?;
                return Ok(DemoOutcome::AlreadyPresent);
            }
            continue;
        };
        service::insert_membership(&mut tx, main_org, user_id, role).await?;
        if email == demo {
            service::insert_membership(&mut tx, second_org, user_id, Role::Owner).await?;
        }
    }
    tx.commit().await?;
    load_books(db, main_org, BooksSize::DEMO, 1).await?;
    load_books(db, second_org, BooksSize::SECOND, 2).await?;
    Ok(DemoOutcome::Created)
}

/// The demo account's main organization, loading the demo first if needed.
pub async fn main_org(db: &Db) -> Result<i64, AppError> {
    load(db).await?;
    sqlx::query_scalar::<_, i64>(
        "SELECT o.id FROM organizations o JOIN memberships m ON m.org_id = o.id \
         JOIN users u ON u.id = m.user_id \
         WHERE u.email = $1 AND o.is_demo = 1 AND o.name = $2 ORDER BY o.id LIMIT 1",
    )
    .bind(DEMO_EMAIL)
    .bind(MAIN_ORG)
    .fetch_optional(db.pool())
    .await?
    .ok_or(AppError::NotFound)
}

/// Writes generated books of `size` into `org_id` as of today in the organization's zone.
pub async fn load_books(
    db: &Db,
    org_id: i64,
    size: BooksSize,
    seed: u64,
) -> Result<ImportSummary, AppError> {
    let timezone: String = sqlx::query_scalar("SELECT timezone FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    let tz: Tz = timezone.parse().unwrap_or(Tz::UTC);
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let (customers, invoices) = demo_books::generate(size.customers, size.invoices, today, seed);
    let mut tx = db.begin().await?;
    let summary =
        upsert::upsert_books(&mut tx, org_id, demo_books::SOURCE, &customers, &invoices).await?;
    tx.commit().await?;
    upsert::refresh_statistics_after(db, &summary).await?;
    Ok(summary)
}
