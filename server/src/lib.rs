//! The Duecall server: builds the router, runs the HTTP server, and hosts the command-line
//! entry points. `main.rs` only parses arguments and calls [`run`].

/// The allocator of every binary built on this crate (the server, its tests and benchmarks).
/// Under load, glibc's allocator spent a large share of the request path's and the
/// call-status writer's time in malloc and free (consolidating and unlinking chunks across
/// threads); mimalloc's thread-local heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod config;
pub mod demo;
pub mod http;
pub mod integrations;
pub mod live;
pub mod livekit_fake;
pub mod receivables;
pub mod reminders;
pub mod telemetry;
pub mod webhooks;
pub mod zoho_fake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::routing::get;
use clap::{Parser, Subcommand};
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};

use app::accounts::session::{COOKIE_NAME, DbSessionStore};
use app::db::Db;
use app::state::{AppState, SignInLimiter};
use app::{App, shell};

use crate::config::{Config, ZohoMode};
use crate::http::security::{self, CspNonce, SecurityOptions};

#[derive(Debug, Parser)]
#[command(
    name = "duecall",
    version,
    about = "Duecall: overdue invoices, called for you."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once, at start-up")]
pub enum Command {
    /// Migrate the database and run the web server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the reminder scheduler without the web server (several may run against one
    /// PostgreSQL database; set DUECALL_SCHEDULER=false on the web servers then).
    Worker,
    /// Print the dry-run calendar: who would be called when over the next days, and which
    /// open invoices would not be called and why. Calls nobody.
    Calendar {
        /// The organization's id (see `duecall calendar` without it when there are several).
        #[arg(long)]
        org: Option<i64>,
        /// Days to look ahead (1–60).
        #[arg(long, default_value_t = app::reminders::views::CALENDAR_DAYS)]
        days: u32,
        /// Print the calendar as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load the demo organization, its users and books (demo@duecall.test / duecall-demo) and
    /// exit. With a size, (re)generates the main demo organization's books at that size.
    Demo {
        /// Number of demo customers.
        #[arg(long, default_value_t = demo::BooksSize::DEMO.customers)]
        customers: usize,
        /// Number of demo invoices (e.g. 100000 for benchmarks).
        #[arg(long, default_value_t = demo::BooksSize::DEMO.invoices)]
        invoices: usize,
    },
    /// Send one correctly signed call-status event to a Duecall server, as a voice agent
    /// would, and print the answer (for agent builders; see docs/AGENTS.md).
    SendTestEvent(webhooks::test_event::TestEvent),
}

/// Runs one command with a validated configuration.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if let Command::SendTestEvent(event) = &command {
        return webhooks::test_event::send(event, &config).await;
    }
    let db = connect(&config).await?;
    match command {
        Command::Migrate => {
            tracing::info!(backend = db.dialect().name(), "migrations applied");
        }
        Command::Demo {
            customers,
            invoices,
        } => {
            let size = demo::BooksSize {
                customers: customers.max(1),
                invoices,
            };
            let org_id = demo::main_org(&db)
                .await
                .map_err(|e| anyhow::anyhow!("could not load the demo: {e}"))?;
            if size != demo::BooksSize::DEMO {
                let summary = demo::load_books(&db, org_id, size, 1)
                    .await
                    .map_err(|e| anyhow::anyhow!("could not generate demo books: {e}"))?;
                tracing::info!(?summary, "demo books generated");
            }
            tracing::info!(
                "demo ready: sign in with {} / {}",
                demo::DEMO_EMAIL,
                demo::DEMO_PASSWORD
            );
        }
        Command::Serve => serve(config, db).await?,
        Command::Calendar { org, days, json } => {
            let org_id = pick_org(&db, org).await?;
            let calendar =
                app::reminders::calendar::calendar_of(&db, org_id, days, chrono::Utc::now())
                    .await
                    .map_err(|e| anyhow::anyhow!("could not build the calendar: {e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&calendar)?);
            } else {
                print!("{}", reminders::print_calendar(&calendar));
            }
        }
        Command::SendTestEvent(_) => unreachable!("handled before connecting"),
        Command::Worker => {
            let books = integrations(&config, &db)?
                .zoho
                .map(|zoho| Arc::new(zoho) as Arc<dyn reminders::InvoiceSource>);
            let scheduler = scheduler(&config, &db).with_books(books).spawn();
            shutdown_signal().await;
            scheduler.abort();
            db.close().await;
        }
    }
    Ok(())
}

/// The organization a command acts on: the one given, or the only one there is.
async fn pick_org(db: &Db, org: Option<i64>) -> anyhow::Result<i64> {
    let orgs: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM organizations ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    match org {
        Some(id) if orgs.iter().any(|(o, _)| *o == id) => Ok(id),
        Some(id) => anyhow::bail!("there is no organization {id}"),
        None if orgs.len() == 1 => Ok(orgs[0].0),
        None => {
            let list: Vec<String> = orgs
                .iter()
                .map(|(id, name)| format!("  {id}  {name}"))
                .collect();
            anyhow::bail!("choose an organization with --org:\n{}", list.join("\n"))
        }
    }
}

/// Connects to the configured database and applies pending migrations.
pub async fn connect(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(config.database_url(), config.database_max_connections)
        .await
        .context("could not connect to the database (check DATABASE_URL)")?;
    db.migrate()
        .await
        .context("could not apply database migrations")?;
    Ok(db)
}

async fn load_demo(db: &Db) -> anyhow::Result<()> {
    let outcome = demo::load(db)
        .await
        .map_err(|e| anyhow::anyhow!("could not load the demo organization: {e}"))?;
    tracing::info!(?outcome, "demo organization");
    Ok(())
}

/// The Leptos options for this build, independent of cargo-leptos's environment variables.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("duecall"))
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .env(if config.dev_mode { Env::DEV } else { Env::PROD })
        .site_addr(config.addr)
        .reload_port(config.reload_port)
        .build()
}

/// The application state for `config` on `db`.
pub fn state(config: &Config, db: Db) -> AppState {
    AppState {
        db,
        leptos_options: leptos_options(config),
        sign_in_limiter: Arc::new(SignInLimiter::new(config.sign_in_per_minute)),
        secure_cookies: config.https(),
        client_ip_header: config.client_ip_header.clone(),
        integrations: app::integrations::IntegrationsInfo {
            zoho: !matches!(config.zoho, ZohoMode::Off),
            local_zoho: matches!(config.zoho, ZohoMode::Local),
            sync_every_hours: config.sync_interval_hours,
            public_url: config.public_url.clone(),
            keyring: config.keyring.clone(),
        },
        live: app::calls::live::Hub::new(),
    }
}

/// The client the built-in local Zoho knows Duecall by.
pub const LOCAL_ZOHO_CLIENT_ID: &str = "1000.DUECALLLOCAL";
const LOCAL_ZOHO_CLIENT_SECRET: &str = "duecall-local-zoho-secret";
/// Where the local Zoho is mounted.
pub const LOCAL_ZOHO_PATH: &str = "/fake-zoho";

/// The integrations of this instance: the Zoho Books service (real or local), and the local
/// Zoho itself when it is the one configured.
#[derive(Debug, Clone, Default)]
pub struct Integrations {
    pub zoho: Option<integrations::Zoho>,
    pub local_zoho: Option<zoho_fake::FakeZoho>,
}

/// Builds the configured integrations. The local Zoho starts with a demo user
/// (`owner@northwind.example`) and two Books organizations, the default one with demo books.
pub fn integrations(config: &Config, db: &Db) -> anyhow::Result<Integrations> {
    use integrations::zoho::config::{ZohoConfig, local_data_centres, zoho_data_centres};
    use secrecy::SecretString;
    let Some(keyring) = config.keyring.clone() else {
        return Ok(Integrations::default());
    };
    let (zoho_config, local) = match &config.zoho {
        ZohoMode::Off => return Ok(Integrations::default()),
        ZohoMode::Zoho {
            client_id,
            client_secret,
            accounts_url,
        } => (
            ZohoConfig {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                redirect_url: config.zoho_redirect_url.clone(),
                accounts_start: accounts_url.clone(),
                data_centres: zoho_data_centres(),
            },
            None,
        ),
        ZohoMode::Local => {
            let base = format!("{}{LOCAL_ZOHO_PATH}", config.public_url);
            let fake = zoho_fake::FakeZoho::new(zoho_fake::FakeOptions {
                base_url: base.clone(),
                clients: vec![zoho_fake::FakeClient::new(
                    LOCAL_ZOHO_CLIENT_ID,
                    LOCAL_ZOHO_CLIENT_SECRET,
                    "Duecall",
                    [config.zoho_redirect_url.clone()],
                )],
                real_time: true,
                per_minute_limit: Some(100),
                ..zoho_fake::FakeOptions::default()
            });
            let user = "owner@northwind.example";
            fake.add_user(user, zoho_fake::DataCentre::Eu);
            let main = fake
                .add_organization(user, "Northwind Traders", "USD", "Europe/London", true)
                .map_err(anyhow::Error::from)?;
            fake.seed_demo_books(&main, 200, 1_000, 7)
                .map_err(anyhow::Error::from)?;
            let other = fake
                .add_organization(user, "Northwind Labs", "EUR", "Europe/Berlin", false)
                .map_err(anyhow::Error::from)?;
            fake.seed_demo_books(&other, 20, 60, 11)
                .map_err(anyhow::Error::from)?;
            let dcs = local_data_centres(&base);
            (
                ZohoConfig {
                    client_id: LOCAL_ZOHO_CLIENT_ID.into(),
                    client_secret: SecretString::from(LOCAL_ZOHO_CLIENT_SECRET),
                    redirect_url: config.zoho_redirect_url.clone(),
                    accounts_start: dcs
                        .iter()
                        .find(|dc| dc.location == "us")
                        .map(|dc| dc.accounts_server.clone())
                        .unwrap_or_default(),
                    data_centres: dcs,
                },
                Some(fake),
            )
        }
    };
    let accounts = integrations::zoho::oauth::Accounts::new(zoho_config)?;
    let settings = integrations::Settings {
        sync_every: Duration::from_secs(u64::from(config.sync_interval_hours) * 3600),
        requests_per_minute: config.zoho_requests_per_minute,
        ..integrations::Settings::default()
    };
    let zoho = integrations::Zoho::new(db.clone(), keyring, accounts, settings)?;
    Ok(Integrations {
        zoho: Some(zoho),
        local_zoho: local,
    })
}

/// The reminder scheduler this configuration asks for.
pub fn scheduler(config: &Config, db: &Db) -> reminders::Scheduler {
    let clock: Arc<dyn reminders::Clock> = Arc::new(reminders::SystemClock);
    let provider: Option<Arc<dyn reminders::CallProvider>> = match config.call_provider {
        config::CallProviderMode::Simulator => {
            let endpoint = reminders::simulator::Endpoint {
                url: format!("{}{}", config.public_url, webhooks::CALL_STATUS_PATH),
                secret: config
                    .webhook_keys
                    .signing_secret()
                    .cloned()
                    .expect("the configuration always has a signing secret"),
            };
            Some(Arc::new(reminders::simulator::Simulator::new(
                endpoint,
                clock.clone(),
                config.simulator_timing,
            )))
        }
        config::CallProviderMode::LiveKit => config.livekit.as_ref().map(|lk| {
            Arc::new(reminders::livekit::LiveKit::new(
                reminders::livekit::LiveKitConfig {
                    url: lk.url.clone(),
                    api_key: lk.api_key.clone(),
                    api_secret: lk.api_secret.clone(),
                    sip_trunk_id: lk.sip_trunk_id.clone(),
                    agent_name: lk.agent_name.clone(),
                    callback_url: format!("{}{}", config.public_url, webhooks::CALL_STATUS_PATH),
                    webhook_secret: config
                        .webhook_keys
                        .signing_secret()
                        .cloned()
                        .expect("the configuration always has a signing secret"),
                    ringing_timeout: Duration::from_secs(u64::from(lk.ringing_timeout_seconds)),
                    max_call_duration: Duration::from_secs(u64::from(lk.max_call_minutes) * 60),
                },
            )) as Arc<dyn reminders::CallProvider>
        }),
        config::CallProviderMode::None => None,
    };
    let settings = reminders::Settings {
        pause: config.scheduler_pause,
        lease: chrono::Duration::seconds(i64::from(config.claim_lease_seconds)),
        ..reminders::Settings::default()
    };
    reminders::Scheduler::new(
        db.clone(),
        clock,
        provider,
        reminders::Scheduler::instance_name(),
        settings,
    )
}

/// The whole HTTP application without integrations (most tests).
pub fn app(state: AppState, config: &Config) -> Router {
    app_with(state, config, &Integrations::default())
}

/// The whole HTTP application. Tests drive this same router.
/// Connections the kernel may hold for the server before it accepts them (capped by the
/// system's `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with a deep accept queue. A burst of new connections (senders coming back
/// after a blip, say, each opening several) arrives faster than a busy server accepts them;
/// past the queue the kernel drops them, and each client waits a second or more to try again.
/// The runtime's default queue is 1,024.
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

pub fn app_with(state: AppState, config: &Config, integrations: &Integrations) -> Router {
    app_with_clock(
        state,
        config,
        integrations,
        Arc::new(reminders::SystemClock),
    )
}

/// [`app_with`] on a given clock (webhook timestamps and call reports are judged by it).
pub fn app_with_clock(
    state: AppState,
    config: &Config,
    integrations: &Integrations,
    clock: Arc<dyn reminders::Clock>,
) -> Router {
    let hooks = webhooks::Webhooks {
        db: state.db.clone(),
        keys: config.webhook_keys.clone(),
        clock,
        live: state.live.clone(),
        writer: webhooks::writer::Writer::new(
            state.db.clone(),
            state.live.clone(),
            config.call_status_queue,
        ),
        max_body_bytes: config.max_body_bytes,
        livekit: config.livekit.as_ref().map(|lk| {
            use secrecy::ExposeSecret;
            livekit_api::webhooks::WebhookReceiver::new(
                livekit_api::access_token::TokenVerifier::with_api_key(
                    &lk.api_key,
                    lk.api_secret.expose_secret(),
                ),
            )
        }),
    };
    let routes = generate_route_list(App);
    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(i64::from(
            config.session_days,
        ))));
    let security_options = SecurityOptions {
        hsts: config.https(),
        dev_mode: config.dev_mode,
        form_targets: integrations
            .zoho
            .as_ref()
            .map(|zoho| zoho.accounts.config().form_targets())
            .unwrap_or_default()
            .into(),
    };
    let options = state.leptos_options.clone();
    let max_body_bytes = config.max_body_bytes;

    Router::new()
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .merge(receivables::routes())
        .merge(webhooks::routes(hooks))
        .merge(live::routes())
        .merge(integrations::routes::routes(integrations.zoho.clone()))
        .leptos_routes_with_context(&state, routes, provide_request_context, move || {
            shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn(
            http::server_fn_status::server_fn_error_status,
        ))
        .layer(sessions)
        .layer(axum::middleware::from_fn(move |req, next| {
            http::body_limit::limit_body(max_body_bytes, req, next)
        }))
        .layer(axum::middleware::from_fn(security::same_origin_writes))
        .layer(axum::middleware::from_fn(move |req, next| {
            security::security_headers(security_options.clone(), req, next)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Per-request context for pages and server functions: the CSP nonce chosen by the security
/// middleware, so inline hydration scripts carry the nonce the header allows.
fn provide_request_context() {
    let nonce = use_context::<::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(nonce) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
}

/// One span per request with the matched route (never the raw path with its ids or query).
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

async fn serve(config: Config, db: Db) -> anyhow::Result<()> {
    if config.demo {
        load_demo(&db).await?;
    }
    let state = state(&config, db.clone());
    let services = integrations(&config, &db)?;
    let mut router = app_with(state, &config, &services);
    if let Some(local) = &services.local_zoho {
        router = router.nest_service(LOCAL_ZOHO_PATH, local.router());
        tracing::info!(
            "the local Zoho Books is at {}{LOCAL_ZOHO_PATH} (Integrations → Connect Zoho Books)",
            config.public_url
        );
    }
    if config.webhook_secret_generated {
        tracing::info!(
            "no DUECALL_WEBHOOK_SECRETS set: call-status webhooks are accepted only from the call simulator of this process"
        );
    }
    let scheduler = services.zoho.clone().map(integrations::engine::spawn);
    let reminders = config
        .scheduler
        .then(|| self::scheduler(&config, &db).spawn());

    let store = DbSessionStore::new(db.clone());
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(err) = store.delete_expired().await {
                tracing::warn!(error = %err, "could not delete expired sessions");
            }
        }
    });

    let listener = listen(config.addr)
        .with_context(|| format!("could not listen on {} (DUECALL_ADDR)", config.addr))?;
    tracing::info!(
        url = %config.public_url,
        backend = db.dialect().name(),
        "Duecall is listening"
    );
    if config.demo {
        tracing::info!(
            "Sign in at {} with {} / {}",
            config.public_url,
            demo::DEMO_EMAIL,
            demo::DEMO_PASSWORD
        );
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the HTTP server failed")?;
    sweeper.abort();
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    if let Some(reminders) = reminders {
        reminders.abort();
    }
    db.close().await;
    tracing::info!("Duecall stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish before the server exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
