//! The scheduler: runs each connected organization's sync when it is due (every
//! `sync_every`, at once when someone asks), and delivers queued write-backs. Several
//! instances may run it against one PostgreSQL database: the sync lease lets only one of them
//! work on a connection at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::db::time::now_millis;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Zoho;
use super::store::PROVIDER;
use super::sync::{self, StartedBy};
use super::writeback;

/// The longest the scheduler sleeps before looking again (a request from another instance
/// only shows up in the database).
const POLL: Duration = Duration::from_secs(15);
/// Connections syncing at once in this instance.
const PARALLEL_RUNS: usize = 2;

#[derive(sqlx::FromRow)]
struct Due {
    org_id: i64,
    sync_requested_by: String,
    last_success_at: Option<i64>,
}

fn started_by(due: &Due) -> StartedBy {
    match due.sync_requested_by.as_str() {
        "push" => StartedBy::Push,
        "manual" => StartedBy::Manual,
        "connect" => StartedBy::Connect,
        _ if due.last_success_at.is_none() => StartedBy::Connect,
        _ => StartedBy::Schedule,
    }
}

/// One look at what is due: starts the runs (in the background) and delivers write-backs.
pub async fn tick(zoho: &Zoho, running: &Arc<Mutex<HashSet<i64>>>, slots: &Arc<Semaphore>) {
    let now = now_millis();
    let due = sqlx::query_as::<_, Due>(
        "SELECT org_id, sync_requested_by, last_success_at FROM integration_connections \
         WHERE provider = $1 AND status = 'connected' AND next_sync_at <= $2 \
           AND paused_until <= $2 AND sync_lease_until < $2 \
         ORDER BY next_sync_at LIMIT 20",
    )
    .bind(PROVIDER)
    .bind(now)
    .fetch_all(zoho.db.pool())
    .await;
    match due {
        Ok(due) => {
            for connection in due {
                let org_id = connection.org_id;
                {
                    let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
                    if !running.insert(org_id) {
                        continue;
                    }
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let zoho = zoho.clone();
                let running = running.clone();
                let by = started_by(&connection);
                tokio::spawn(async move {
                    if let Err(err) = sync::run(&zoho, org_id, by).await {
                        tracing::error!(org_id, error = %err, "Zoho sync could not run");
                    }
                    running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&org_id);
                    drop(slot);
                });
            }
        }
        Err(err) => tracing::error!(error = %err, "could not read due Zoho connections"),
    }
    if let Err(err) = writeback::deliver_due(zoho).await {
        tracing::error!(error = %err, "could not deliver write-backs");
    }
}

/// Starts the scheduler in the background.
pub fn spawn(zoho: Zoho) -> JoinHandle<()> {
    tokio::spawn(async move {
        let running = Arc::new(Mutex::new(HashSet::new()));
        let slots = Arc::new(Semaphore::new(PARALLEL_RUNS));
        loop {
            tick(&zoho, &running, &slots).await;
            tokio::select! {
                () = zoho.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}
