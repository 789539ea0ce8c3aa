//! The demo organization the run command loads, so a new user can sign in and look around at
//! once. Loading is idempotent: an existing demo account is left as it is.

use app::accounts::model::{Email, Role};
use app::accounts::{password, service};
use app::db::Db;
use app::error::AppError;

pub const DEMO_EMAIL: &str = "demo@duecall.test";
pub const DEMO_PASSWORD: &str = "duecall-demo";

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

/// Creates the demo users and two demo organizations unless the demo account exists.
pub async fn load(db: &Db) -> Result<DemoOutcome, AppError> {
    let demo = Email::parse(DEMO_EMAIL).map_err(|e| AppError::internal("demo email", e))?;
    let password_hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
    let mut tx = db.begin().await?;
    let main_org =
        service::insert_org(&mut tx, "Northwind Supplies", "Europe/London", "GBP", true).await?;
    let second_org =
        service::insert_org(&mut tx, "Harbor Goods", "America/New_York", "USD", true).await?;
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
    Ok(DemoOutcome::Created)
}
