//! The `duecall` binary itself: its help, configuration errors, the migrate command, and a
//! graceful stop on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn duecall() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duecall"));
    // Only what each test sets: no .env or developer variables leak in.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn help_lists_the_commands() {
    let output = duecall().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "demo"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn a_bad_variable_stops_start_up_and_is_named() {
    let output = duecall()
        .arg("migrate")
        .env("DUECALL_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DUECALL_ADDR"), "{stderr}");
}

#[test]
fn migrate_creates_the_sqlite_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/duecall.db");
    let output = duecall()
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(db.exists());
    // A second run finds nothing to do.
    let output = duecall()
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(output.status.success());
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[cfg(unix)]
#[test]
fn serve_loads_the_demo_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = duecall()
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/duecall.db", dir.path().display()),
        )
        .env("DUECALL_ADDR", format!("127.0.0.1:{port}"))
        .env("DUECALL_DEMO", "true")
        .env("DUECALL_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("demo@duecall.test")),
        "{messages:?}"
    );
    assert!(messages.contains(&"Duecall is listening"), "{messages:?}");
    assert!(messages.contains(&"Duecall stopped"), "{messages:?}");
}

#[test]
fn demo_loads_books_and_can_grow_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/duecall.db", dir.path().display());
    let output = duecall()
        .arg("demo")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = duecall()
        .args(["demo", "--customers", "300", "--invoices", "2500"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counts: (i64, i64) = runtime.block_on(async {
        let db = app::db::Db::connect(&url, 1).await.unwrap();
        let invoices = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invoices i JOIN organizations o ON o.id = i.org_id WHERE o.name = 'Northwind Supplies'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        let customers = sqlx::query_scalar(
            "SELECT COUNT(*) FROM customers c JOIN organizations o ON o.id = c.org_id WHERE o.name = 'Northwind Supplies'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        (customers, invoices)
    });
    assert_eq!(counts, (300, 2500));
}
