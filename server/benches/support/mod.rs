//! What the benchmarks share: a run on each backend — a fresh SQLite file, then a throw-away
//! PostgreSQL database from `TEST_POSTGRES_URL` when it is reachable.
//!
//! `BENCH_ONLY=sqlite|postgres` runs one backend; `BENCH_KEEP=1` leaves the PostgreSQL
//! database in place for a closer look (its name is printed).

use std::future::Future;

use sqlx::Connection;

pub async fn on_each_backend<F, Fut>(prefix: &str, mut run: F)
where
    F: FnMut(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().unwrap();
    if only.is_empty() || only == "sqlite" {
        run(
            "sqlite",
            format!("sqlite://{}/bench.db", dir.path().display()),
        )
        .await;
    }
    if !(only.is_empty() || only == "postgres") {
        return;
    }
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match sqlx::PgConnection::connect(&admin).await {
        Ok(mut conn) => {
            let name = format!("{prefix}_{}", std::process::id());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            run("postgres", format!("{base}/{name}")).await;
            if keep {
                println!("[postgres] kept database {name}");
            } else {
                sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        Err(err) => println!("[postgres] skipped: {err}"),
    }
}
