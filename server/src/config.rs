//! Typed configuration, read once at start-up from the environment (and an optional `.env`).
//!
//! Every field names its variable; a bad value stops start-up with a message naming the
//! variable. This is the only module that reads the environment.

use std::fmt::Display;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Which Zoho Books, if any, Duecall connects to.
#[derive(Debug, Clone)]
pub enum ZohoMode {
    /// No Zoho Books integration (the Integrations page says how to enable it).
    Off,
    /// The real Zoho: Duecall's client registered in Zoho's API console.
    Zoho {
        client_id: String,
        client_secret: SecretString,
        /// Where Zoho's consent flow starts (it forwards users to their own data centre).
        accounts_url: String,
    },
    /// The built-in local Zoho at `{public URL}/fake-zoho`, with demo books: the whole flow
    /// works offline.
    Local,
}

/// What places the calls the reminder scheduler decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallProviderMode {
    /// The call simulator: calls are "placed" and their outcomes reported after believable
    /// delays, nothing is dialled (the default until telephony is configured).
    Simulator,
    /// LiveKit: a room per call, the voice agent dispatched into it, the debtor dialled
    /// through the SIP trunk (the default when `LIVEKIT_URL` is set).
    LiveKit,
    /// No calls are placed; reminders are still generated and shown.
    None,
}

/// How to reach LiveKit (all of `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`,
/// `LIVEKIT_SIP_TRUNK_ID`, `LIVEKIT_AGENT_NAME`; optional `LIVEKIT_RINGING_TIMEOUT_SECONDS`,
/// default 30, and `LIVEKIT_MAX_CALL_MINUTES`, default 10).
#[derive(Debug, Clone)]
pub struct LiveKitSettings {
    pub url: String,
    pub api_key: String,
    pub api_secret: SecretString,
    pub sip_trunk_id: String,
    pub agent_name: String,
    pub ringing_timeout_seconds: u32,
    pub max_call_minutes: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `DUECALL_ADDR`: where the HTTP server listens. Default `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `DUECALL_PUBLIC_URL`: the address people use to reach Duecall, used for links and to
    /// decide whether cookies are `Secure`. Default `http://<DUECALL_ADDR>`.
    pub public_url: String,
    /// `DATABASE_URL`: `sqlite://path/file.db` (default `sqlite://data/duecall.db`) or
    /// `postgres://user:password@host/db`. May contain a password, so it is secret.
    pub database_url: SecretString,
    /// `DATABASE_MAX_CONNECTIONS`: pool size. Default 10.
    pub database_max_connections: u32,
    /// `DUECALL_SITE_ROOT` (or cargo-leptos's `LEPTOS_SITE_ROOT`): the built site (WASM, CSS,
    /// static files). Default `target/site`.
    pub site_root: PathBuf,
    /// `DUECALL_LOG`: a tracing filter such as `info` or `duecall=debug,sqlx=warn`. Default `info`.
    pub log_filter: String,
    /// `DUECALL_LOG_FORMAT`: `pretty` (default) or `json` for log shippers.
    pub log_format: LogFormat,
    /// `DUECALL_DEMO`: load the demo organization at start-up if it is missing. Default false.
    pub demo: bool,
    /// `DUECALL_SIGN_IN_PER_MINUTE`: sign-in attempts allowed per email per minute. Default 5.
    pub sign_in_per_minute: NonZeroU32,
    /// `DUECALL_CLIENT_IP_HEADER`: behind a reverse proxy or load balancer, the header it puts
    /// the client's address in (`x-forwarded-for`: the right-most entry, added by the nearest
    /// proxy; or `x-real-ip`). Unset: the TCP peer address. Used for sign-in rate limits.
    pub client_ip_header: Option<http::HeaderName>,
    /// `DUECALL_SESSION_DAYS`: days of inactivity before a session expires. Default 14.
    pub session_days: u32,
    /// `DUECALL_MAX_BODY_BYTES`: the largest request body accepted. Default 65536.
    pub max_body_bytes: usize,
    /// `DUECALL_CALL_STATUS_QUEUE`: call-status reports held at once, waiting for the writer or
    /// in its transaction. Past it, a report is answered 503 with `Retry-After` (the sender
    /// sends it again) rather than queued behind more than the writer can soon store. Default
    /// 5000, about a second of the writer's work on two cores.
    pub call_status_queue: NonZeroUsize,
    /// `LEPTOS_ENV`: `DEV` under `cargo leptos watch` (enables live reload); otherwise `PROD`.
    pub dev_mode: bool,
    /// `LEPTOS_RELOAD_PORT`: the live-reload port under `cargo leptos watch`. Default 3001.
    pub reload_port: u32,
    /// `DUECALL_ZOHO_CLIENT_ID` + `DUECALL_ZOHO_CLIENT_SECRET` (+ `DUECALL_ZOHO_ACCOUNTS_URL`,
    /// default `https://accounts.zoho.com`): the real Zoho; or `DUECALL_ZOHO_LOCAL=true`: the
    /// built-in local Zoho. Default: off.
    pub zoho: ZohoMode,
    /// `DUECALL_ZOHO_REDIRECT_URL`: where Zoho sends users back after consent. Default
    /// `{DUECALL_PUBLIC_URL}/integrations/zoho/callback` (register it in Zoho's console).
    pub zoho_redirect_url: String,
    /// `DUECALL_ENCRYPTION_KEY` (32 bytes, base64), `DUECALL_ENCRYPTION_KEY_ID` (default `k1`)
    /// and `DUECALL_ENCRYPTION_PREVIOUS_KEYS` (`id:base64,…`, for rotation): encrypts
    /// integration tokens at rest. Required when Zoho Books is enabled.
    pub keyring: Option<app::integrations::crypto::Keyring>,
    /// `DUECALL_SYNC_INTERVAL_HOURS`: hours between scheduled syncs. Default 4.
    pub sync_interval_hours: u32,
    /// `DUECALL_ZOHO_REQUESTS_PER_MINUTE`: Zoho API calls per minute per Books organization
    /// (Zoho allows 100). Default 90.
    pub zoho_requests_per_minute: NonZeroU32,
    /// `DUECALL_CALL_PROVIDER`: `livekit` (the default when LiveKit is configured),
    /// `simulator` (the default otherwise) or `none`.
    pub call_provider: CallProviderMode,
    /// LiveKit, when `LIVEKIT_URL` is set (see [`LiveKitSettings`]); it also verifies
    /// LiveKit's webhooks.
    pub livekit: Option<LiveKitSettings>,
    /// `DUECALL_SCHEDULER`: whether `serve` runs the reminder scheduler itself. Default true;
    /// set false when separate `duecall worker` processes run it.
    pub scheduler: bool,
    /// `DUECALL_SCHEDULER_PAUSE`: `after-claim` or `after-dial` makes the scheduler stop at
    /// that point and wait, to rehearse a crash there. Unset in normal operation.
    pub scheduler_pause: Option<crate::reminders::Pause>,
    /// `DUECALL_CLAIM_LEASE_SECONDS`: how long a scheduler's claim waits for its dial before
    /// another instance may give it back. Default 120.
    pub claim_lease_seconds: u32,
    /// Who may post call-status webhooks: `DUECALL_WEBHOOK_SECRETS` (Standard Webhooks `whsec_`
    /// secrets, newest first, separated by spaces or commas: list the old one after the new
    /// during a rotation), `WEBHOOK_SECRET` (the original `X-Webhook-Signature` scheme's shared
    /// secret) and `DUECALL_WEBHOOK_STANDARD_ONLY` (refuse the original scheme). Without
    /// `DUECALL_WEBHOOK_SECRETS` a random secret is made for this process (the call simulator
    /// signs with it; outside agents cannot).
    pub webhook_keys: std::sync::Arc<crate::webhooks::signature::Keys>,
    /// Whether the webhook secret was made up at start-up (none configured).
    pub webhook_secret_generated: bool,
    /// `WEBHOOK_SECRET`, for `duecall send-test-event --legacy`.
    pub legacy_webhook_secret: Option<SecretString>,
    /// `DUECALL_SIMULATOR_RING_MS` and `DUECALL_SIMULATOR_TALK_MS`: how long a simulated call
    /// rings and talks. Defaults 4000 and 15000.
    pub simulator_timing: crate::reminders::simulator::Timing,
}

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl Config {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => {
                return Err(ConfigError {
                    var: ".env",
                    message: format!("could not be read: {err}"),
                });
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let addr: SocketAddr = parse(&var, "DUECALL_ADDR", "a host:port like 127.0.0.1:3000")?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
        let public_url = match var("DUECALL_PUBLIC_URL") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => {
                return Err(ConfigError {
                    var: "DUECALL_PUBLIC_URL",
                    message: format!("expected an http:// or https:// URL, got {url:?}"),
                });
            }
            None => format!("http://{addr}"),
        };
        let database_url = var("DATABASE_URL").unwrap_or_else(|| "sqlite://data/duecall.db".into());
        if app::db::Dialect::from_url(&database_url).is_none() {
            return Err(ConfigError {
                var: "DATABASE_URL",
                message: "must start with sqlite: or postgres: (the value is not shown; it may contain a password)".into(),
            });
        }
        let database_max_connections = parse(
            &var,
            "DATABASE_MAX_CONNECTIONS",
            "a whole number from 1 to 1000",
        )?
        .unwrap_or(10);
        if !(1..=1000).contains(&database_max_connections) {
            return Err(ConfigError {
                var: "DATABASE_MAX_CONNECTIONS",
                message: "expected a whole number from 1 to 1000".into(),
            });
        }
        let site_root = var("DUECALL_SITE_ROOT")
            .or_else(|| var("LEPTOS_SITE_ROOT"))
            .unwrap_or_else(|| "target/site".into())
            .into();
        let log_filter = var("DUECALL_LOG").unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter).map_err(|err| ConfigError {
            var: "DUECALL_LOG",
            message: format!("not a valid log filter: {err}"),
        })?;
        let log_format = match var("DUECALL_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    var: "DUECALL_LOG_FORMAT",
                    message: format!("expected pretty or json, got {other:?}"),
                });
            }
        };
        let demo = parse_bool(&var, "DUECALL_DEMO")?.unwrap_or(false);
        let sign_in_per_minute = parse(
            &var,
            "DUECALL_SIGN_IN_PER_MINUTE",
            "a whole number of at least 1",
        )?
        .unwrap_or(NonZeroU32::new(5).expect("5 is not zero"));
        let client_ip_header = parse(
            &var,
            "DUECALL_CLIENT_IP_HEADER",
            "an HTTP header name like x-forwarded-for",
        )?;
        let session_days =
            parse(&var, "DUECALL_SESSION_DAYS", "a whole number of days")?.unwrap_or(14);
        if !(1..=365).contains(&session_days) {
            return Err(ConfigError {
                var: "DUECALL_SESSION_DAYS",
                message: "expected 1 to 365 days".into(),
            });
        }
        let max_body_bytes =
            parse(&var, "DUECALL_MAX_BODY_BYTES", "a number of bytes")?.unwrap_or(64 * 1024);
        let call_status_queue = parse(&var, "DUECALL_CALL_STATUS_QUEUE", "a number of reports")?
            .unwrap_or(NonZeroUsize::new(5_000).expect("not zero"));
        let dev_mode = var("LEPTOS_ENV").is_some_and(|env| env.eq_ignore_ascii_case("dev"));
        let reload_port = parse(&var, "LEPTOS_RELOAD_PORT", "a port number")?.unwrap_or(3001);

        let local = parse_bool(&var, "DUECALL_ZOHO_LOCAL")?.unwrap_or(false);
        let zoho = match (var("DUECALL_ZOHO_CLIENT_ID"), local) {
            (Some(_), true) => {
                return Err(ConfigError {
                    var: "DUECALL_ZOHO_LOCAL",
                    message: "cannot be combined with DUECALL_ZOHO_CLIENT_ID: choose the real Zoho or the local one".into(),
                });
            }
            (Some(client_id), false) => {
                let client_secret = var("DUECALL_ZOHO_CLIENT_SECRET").ok_or(ConfigError {
                    var: "DUECALL_ZOHO_CLIENT_SECRET",
                    message: "required with DUECALL_ZOHO_CLIENT_ID".into(),
                })?;
                let accounts_url = http_url(&var, "DUECALL_ZOHO_ACCOUNTS_URL")?
                    .unwrap_or_else(|| "https://accounts.zoho.com".into());
                ZohoMode::Zoho {
                    client_id,
                    client_secret: SecretString::from(client_secret),
                    accounts_url,
                }
            }
            (None, true) => ZohoMode::Local,
            (None, false) => ZohoMode::Off,
        };
        let zoho_redirect_url = http_url(&var, "DUECALL_ZOHO_REDIRECT_URL")?
            .unwrap_or_else(|| format!("{public_url}/integrations/zoho/callback"));
        let keyring = match var("DUECALL_ENCRYPTION_KEY") {
            Some(key) => Some(
                app::integrations::crypto::Keyring::new(
                    &var("DUECALL_ENCRYPTION_KEY_ID").unwrap_or_else(|| "k1".into()),
                    &key,
                    &var("DUECALL_ENCRYPTION_PREVIOUS_KEYS").unwrap_or_default(),
                    [
                        "DUECALL_ENCRYPTION_KEY_ID",
                        "DUECALL_ENCRYPTION_KEY",
                        "DUECALL_ENCRYPTION_PREVIOUS_KEYS",
                    ],
                )
                .map_err(|err| ConfigError {
                    var: "DUECALL_ENCRYPTION_KEY",
                    message: err.to_string(),
                })?,
            ),
            None => None,
        };
        if keyring.is_none() && !matches!(zoho, ZohoMode::Off) {
            return Err(ConfigError {
                var: "DUECALL_ENCRYPTION_KEY",
                message: "required when Zoho Books is enabled (it encrypts the tokens); generate one with `openssl rand -base64 32`".into(),
            });
        }
        let sync_interval_hours = parse(
            &var,
            "DUECALL_SYNC_INTERVAL_HOURS",
            "a whole number of hours",
        )?
        .unwrap_or(4);
        if !(1..=168).contains(&sync_interval_hours) {
            return Err(ConfigError {
                var: "DUECALL_SYNC_INTERVAL_HOURS",
                message: "expected 1 to 168 hours".into(),
            });
        }
        let zoho_requests_per_minute: NonZeroU32 = parse(
            &var,
            "DUECALL_ZOHO_REQUESTS_PER_MINUTE",
            "a whole number from 1 to 100",
        )?
        .unwrap_or(NonZeroU32::new(90).expect("90 is not zero"));
        if zoho_requests_per_minute.get() > 100 {
            return Err(ConfigError {
                var: "DUECALL_ZOHO_REQUESTS_PER_MINUTE",
                message: "Zoho allows at most 100 requests a minute".into(),
            });
        }

        let livekit = match var("LIVEKIT_URL") {
            None => None,
            Some(url) => {
                if !(url.starts_with("https://")
                    || url.starts_with("wss://")
                    || url.starts_with("http://")
                    || url.starts_with("ws://"))
                {
                    return Err(ConfigError {
                        var: "LIVEKIT_URL",
                        message: format!("expected a wss:// or https:// URL, got {url:?}"),
                    });
                }
                let required = |name: &'static str| {
                    var(name).ok_or(ConfigError {
                        var: name,
                        message: "required with LIVEKIT_URL".into(),
                    })
                };
                let ringing_timeout_seconds: u32 = parse(
                    &var,
                    "LIVEKIT_RINGING_TIMEOUT_SECONDS",
                    "a number of seconds",
                )?
                .unwrap_or(30);
                if !(5..=120).contains(&ringing_timeout_seconds) {
                    return Err(ConfigError {
                        var: "LIVEKIT_RINGING_TIMEOUT_SECONDS",
                        message: "expected 5 to 120 seconds".into(),
                    });
                }
                let max_call_minutes: u32 =
                    parse(&var, "LIVEKIT_MAX_CALL_MINUTES", "a number of minutes")?.unwrap_or(10);
                if !(1..=60).contains(&max_call_minutes) {
                    return Err(ConfigError {
                        var: "LIVEKIT_MAX_CALL_MINUTES",
                        message: "expected 1 to 60 minutes".into(),
                    });
                }
                Some(LiveKitSettings {
                    url,
                    api_key: required("LIVEKIT_API_KEY")?,
                    api_secret: SecretString::from(required("LIVEKIT_API_SECRET")?),
                    sip_trunk_id: required("LIVEKIT_SIP_TRUNK_ID")?,
                    agent_name: required("LIVEKIT_AGENT_NAME")?,
                    ringing_timeout_seconds,
                    max_call_minutes,
                })
            }
        };
        let call_provider = match var("DUECALL_CALL_PROVIDER").as_deref() {
            None if livekit.is_some() => CallProviderMode::LiveKit,
            None | Some("simulator") => CallProviderMode::Simulator,
            Some("livekit") if livekit.is_some() => CallProviderMode::LiveKit,
            Some("livekit") => {
                return Err(ConfigError {
                    var: "DUECALL_CALL_PROVIDER",
                    message: "livekit needs LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, LIVEKIT_SIP_TRUNK_ID and LIVEKIT_AGENT_NAME".into(),
                });
            }
            Some("none") => CallProviderMode::None,
            Some(other) => {
                return Err(ConfigError {
                    var: "DUECALL_CALL_PROVIDER",
                    message: format!("expected livekit, simulator or none, got {other:?}"),
                });
            }
        };
        let scheduler = parse_bool(&var, "DUECALL_SCHEDULER")?.unwrap_or(true);
        let scheduler_pause = match var("DUECALL_SCHEDULER_PAUSE").as_deref() {
            None => None,
            Some("after-claim") => Some(crate::reminders::Pause::AfterClaim),
            Some("after-dial") => Some(crate::reminders::Pause::AfterDial),
            Some(other) => {
                return Err(ConfigError {
                    var: "DUECALL_SCHEDULER_PAUSE",
                    message: format!("expected after-claim or after-dial, got {other:?}"),
                });
            }
        };
        let claim_lease_seconds = parse(
            &var,
            "DUECALL_CLAIM_LEASE_SECONDS",
            "a whole number of seconds",
        )?
        .unwrap_or(120);
        if !(1..=3600).contains(&claim_lease_seconds) {
            return Err(ConfigError {
                var: "DUECALL_CLAIM_LEASE_SECONDS",
                message: "expected 1 to 3600 seconds".into(),
            });
        }

        let mut standard: Vec<SecretString> = var("DUECALL_WEBHOOK_SECRETS")
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        let webhook_secret_generated = standard.is_empty();
        if webhook_secret_generated {
            standard.push(crate::webhooks::signature::Keys::generate_secret());
        }
        let legacy: Vec<SecretString> = var("WEBHOOK_SECRET")
            .map(SecretString::from)
            .into_iter()
            .collect();
        let legacy_webhook_secret = legacy.first().cloned();
        let standard_only = parse_bool(&var, "DUECALL_WEBHOOK_STANDARD_ONLY")?.unwrap_or(false);
        let webhook_keys = crate::webhooks::signature::Keys::new(&standard, &legacy, standard_only)
            .map_err(|err| ConfigError {
                var: "DUECALL_WEBHOOK_SECRETS",
                message: err.to_string(),
            })?;

        let ring_ms: u64 = parse(
            &var,
            "DUECALL_SIMULATOR_RING_MS",
            "a number of milliseconds",
        )?
        .unwrap_or(4_000);
        let talk_ms: u64 = parse(
            &var,
            "DUECALL_SIMULATOR_TALK_MS",
            "a number of milliseconds",
        )?
        .unwrap_or(15_000);
        if ring_ms > 600_000 || talk_ms > 600_000 {
            return Err(ConfigError {
                var: "DUECALL_SIMULATOR_TALK_MS",
                message: "a simulated call rings and talks for at most 10 minutes each".into(),
            });
        }
        let simulator_timing = crate::reminders::simulator::Timing {
            ring: std::time::Duration::from_millis(ring_ms),
            talk: std::time::Duration::from_millis(talk_ms),
        };

        Ok(Self {
            legacy_webhook_secret,
            simulator_timing,
            webhook_keys: std::sync::Arc::new(webhook_keys),
            webhook_secret_generated,
            addr,
            public_url,
            database_url: SecretString::from(database_url),
            database_max_connections,
            site_root,
            log_filter,
            log_format,
            demo,
            sign_in_per_minute,
            client_ip_header,
            session_days,
            max_body_bytes,
            call_status_queue,
            dev_mode,
            reload_port,
            zoho,
            zoho_redirect_url,
            keyring,
            sync_interval_hours,
            zoho_requests_per_minute,
            call_provider,
            livekit,
            scheduler,
            scheduler_pause,
            claim_lease_seconds,
        })
    }

    /// Whether Duecall is served over https (cookies then get `Secure`).
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The database URL, for connecting only.
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

fn parse<T: FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: Display,
{
    var(name)
        .map(|raw| {
            raw.parse::<T>().map_err(|err| ConfigError {
                var: name,
                message: format!("expected {expected}, got {raw:?} ({err})"),
            })
        })
        .transpose()
}

/// An optional http(s) URL, without a trailing slash.
fn http_url(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<String>, ConfigError> {
    var(name)
        .map(|url| {
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(url.trim_end_matches('/').to_owned())
            } else {
                Err(ConfigError {
                    var: name,
                    message: format!("expected an http:// or https:// URL, got {url:?}"),
                })
            }
        })
        .transpose()
}

fn parse_bool(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<bool>, ConfigError> {
    var(name)
        .map(|raw| match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError {
                var: name,
                message: format!("expected true or false, got {raw:?}"),
            }),
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_run_on_an_embedded_database() {
        let config = config(&[]).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url(), "sqlite://data/duecall.db");
        assert_eq!(config.public_url, "http://127.0.0.1:3000");
        assert!(!config.https());
        assert_eq!(config.log_format, LogFormat::Pretty);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("DUECALL_ADDR", "localhost"),
            ("DATABASE_URL", "mysql://root@localhost/db"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DUECALL_LOG_FORMAT", "xml"),
            ("DUECALL_DEMO", "maybe"),
            ("DUECALL_PUBLIC_URL", "duecall.example.com"),
            ("DUECALL_SIGN_IN_PER_MINUTE", "0"),
            ("DUECALL_LOG", "[[["),
            ("DUECALL_CLIENT_IP_HEADER", "not a header"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.var, name);
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn database_passwords_stay_out_of_messages_and_debug_output() {
        let err = config(&[("DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let config = config(&[("DATABASE_URL", "postgres://app:hunter2@db/duecall")]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn https_public_urls_make_cookies_secure() {
        let config = config(&[("DUECALL_PUBLIC_URL", "https://duecall.example.com/")]).unwrap();
        assert!(config.https());
        assert_eq!(config.public_url, "https://duecall.example.com");
    }

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn zoho_needs_an_encryption_key() {
        let err = config(&[("DUECALL_ZOHO_LOCAL", "true")]).unwrap_err();
        assert_eq!(err.var, "DUECALL_ENCRYPTION_KEY");
        let err = config(&[("DUECALL_ZOHO_CLIENT_ID", "1000.X")]).unwrap_err();
        assert_eq!(err.var, "DUECALL_ZOHO_CLIENT_SECRET");
        let err = config(&[
            ("DUECALL_ZOHO_CLIENT_ID", "1000.X"),
            ("DUECALL_ZOHO_CLIENT_SECRET", "s"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "DUECALL_ENCRYPTION_KEY");
        let err = config(&[
            ("DUECALL_ZOHO_LOCAL", "true"),
            ("DUECALL_ENCRYPTION_KEY", "short"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "DUECALL_ENCRYPTION_KEY");
        assert!(
            !err.message.contains("short"),
            "the key never appears in messages"
        );
    }

    #[test]
    fn zoho_modes_are_read_from_the_environment() {
        let off = config(&[]).unwrap();
        assert!(matches!(off.zoho, ZohoMode::Off));
        assert_eq!(off.sync_interval_hours, 4);
        let local =
            config(&[("DUECALL_ZOHO_LOCAL", "1"), ("DUECALL_ENCRYPTION_KEY", KEY)]).unwrap();
        assert!(matches!(local.zoho, ZohoMode::Local));
        assert_eq!(
            local.zoho_redirect_url,
            "http://127.0.0.1:3000/integrations/zoho/callback"
        );
        let real = config(&[
            ("DUECALL_ZOHO_CLIENT_ID", "1000.X"),
            ("DUECALL_ZOHO_CLIENT_SECRET", "s"),
            ("DUECALL_ENCRYPTION_KEY", KEY),
            ("DUECALL_PUBLIC_URL", "https://duecall.example.com/"),
        ])
        .unwrap();
        match real.zoho {
            ZohoMode::Zoho {
                client_id,
                accounts_url,
                ..
            } => {
                assert_eq!(client_id, "1000.X");
                assert_eq!(accounts_url, "https://accounts.zoho.com");
            }
            other => panic!("expected the real Zoho, got {other:?}"),
        }
        assert_eq!(
            real.zoho_redirect_url,
            "https://duecall.example.com/integrations/zoho/callback"
        );
        let both =
            config(&[("DUECALL_ZOHO_LOCAL", "1"), ("DUECALL_ZOHO_CLIENT_ID", "x")]).unwrap_err();
        assert_eq!(both.var, "DUECALL_ZOHO_LOCAL");
        let interval = config(&[("DUECALL_SYNC_INTERVAL_HOURS", "0")]).unwrap_err();
        assert_eq!(interval.var, "DUECALL_SYNC_INTERVAL_HOURS");
    }
}
