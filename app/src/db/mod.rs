//! The data layer: one pool, two backends.
//!
//! Duecall runs on an embedded SQLite file by default and on PostgreSQL for teams that run
//! several instances. Queries go through sqlx's `Any` driver with portable SQL: `$n`
//! placeholders (both backends accept them), `ON CONFLICT … DO UPDATE`, `RETURNING`, and column
//! types every backend shares: `BIGINT` ids, `TEXT`, flags as `INTEGER` 0/1 (the `Any` driver
//! cannot read SQLite's `BOOLEAN`), and timestamps as `BIGINT` Unix milliseconds in UTC (see
//! [`time`]). The few places where dialects differ ask
//! [`Db::dialect`]. Each backend has its own migration folder because DDL is where they differ
//! most (identity columns); `docs/ARCHITECTURE.md` explains the choice.

pub mod time;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use sqlx::Any as Backend;

/// A transaction on either backend.
pub type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// A connection on either backend, as the statements of a transaction take it: a [`Tx`]
/// derefs to one, and so does a connection whose transaction is begun and ended by its own
/// statements (see [`Db::writing_connection`]).
pub type Conn = sqlx::AnyConnection;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Picks the backend from a `DATABASE_URL`.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The dialect of an open connection (e.g. inside a transaction).
    pub fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name() == "SQLite" {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    /// Placeholders for a statement with many parameters, numbered from 1 in bind order:
    /// `$n` on PostgreSQL, anonymous `?` on SQLite. SQLite looks up a named parameter by
    /// scanning all of them, so binding a statement of n `$n` parameters costs n² steps —
    /// most of a bulk import's time at 4,000 parameters per statement.
    pub fn placeholders(self, count: usize) -> impl Iterator<Item = String> {
        (1..=count).map(move |n| match self {
            Self::Sqlite => "?".to_owned(),
            Self::Postgres => format!("${n}"),
        })
    }

    /// The `VALUES` list of a multi-row insert: `rows` tuples of `columns` [`placeholders`]
    /// each, every tuple written by `tuple` from its placeholders (`"?, ?, ?"`), so a
    /// statement can add constant columns.
    ///
    /// [`placeholders`]: Self::placeholders
    pub fn value_rows(self, rows: usize, columns: usize, tuple: impl Fn(&str) -> String) -> String {
        let mut marks = self.placeholders(rows * columns);
        (0..rows)
            .map(|_| tuple(&marks.by_ref().take(columns).collect::<Vec<_>>().join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The rows of a JSON array of objects, bound as the statement's one argument, as a `SELECT` of the typed `columns` (name, SQL type) of each object: a statement reads
    /// them as `WITH v AS ({json_rows}) UPDATE t … FROM v …` or `… INSERT … SELECT … FROM v`.
    ///
    /// Whatever the number of rows, the statement's text is the same, so each connection
    /// parses it once and keeps it prepared. A `VALUES` list with a placeholder per value is a
    /// new statement for every length, parsed and planned each time: most of a batch
    /// writer's work once its rows are many.
    pub fn json_rows(self, columns: &[(&str, &str)]) -> String {
        match self {
            // `json_each` hands each object out as JSON text, made anew from its parse at
            // every mention of `value`, and each `->>` parses that text again: a dozen columns
            // cost a dozen of each per row (a quarter of the call-status writer's time in
            // SQLite). Each object is instead turned into SQLite's binary JSON once, and the
            // columns are read off that in place.
            Self::Sqlite => format!(
                "WITH j(x) AS MATERIALIZED (SELECT jsonb(value) FROM json_each(?)) SELECT {} FROM j",
                columns
                    .iter()
                    .map(|(name, _)| format!("x ->> '{name}' AS {name}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Postgres => format!(
                "SELECT * FROM jsonb_to_recordset($1::jsonb) AS v({})",
                columns
                    .iter()
                    .map(|(name, ty)| format!("{name} {ty}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The values of a JSON array bound as the statement's one argument, as a one-column `SELECT` of SQL type `ty`, for `… IN ({json_values})`: like
    /// [`Dialect::json_rows`], one statement for any number of values.
    pub fn json_values(self, ty: &str) -> String {
        match self {
            Self::Sqlite => "SELECT value FROM json_each(?)".to_owned(),
            Self::Postgres => self.json_values_at(1, ty),
        }
    }

    /// [`Dialect::json_values`] of the JSON array bound as argument `$arg`, in a statement
    /// whose arguments are numbered.
    pub fn json_values_at(self, arg: usize, ty: &str) -> String {
        match self {
            Self::Sqlite => format!("SELECT value FROM json_each(${arg})"),
            Self::Postgres => {
                format!("SELECT CAST(jsonb_array_elements_text(${arg}::jsonb) AS {ty})")
            }
        }
    }

    /// A JSON array of `values` (SQL expressions, comma-separated), as a JSON value that nests
    /// in another [`Dialect::json_array`] or [`Dialect::json_array_text`].
    pub fn json_array(self, values: &str) -> String {
        match self {
            Self::Sqlite => format!("json_array({values})"),
            Self::Postgres => format!("json_build_array({values})"),
        }
    }

    /// A JSON array of `values`, as text.
    pub fn json_array_text(self, values: &str) -> String {
        match self {
            Self::Sqlite => format!("json_array({values})"),
            Self::Postgres => format!("CAST(json_build_array({values}) AS TEXT)"),
        }
    }

    /// An aggregate: the JSON text `item` of every row, as one JSON array (text; `[]` for no
    /// rows). Many rows come back as one value, decoded on this side.
    pub fn json_list(self, item: &str) -> String {
        let concat = match self {
            Self::Sqlite => "group_concat",
            Self::Postgres => "string_agg",
        };
        format!("COALESCE('[' || {concat}({item}, ',') || ']', '[]')")
    }
}

/// Decodes JSON text a statement returned (see [`Dialect::json_list`]); text that does not
/// decode is the database's answer failing to decode, like a column of the wrong type.
pub fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(json).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

/// `$from, $from+1, …`: `count` numbered placeholders for a list in a statement whose other
/// parameters come first (both backends accept `$n`).
pub fn numbered(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with sqlite: or postgres:")]
    UnsupportedScheme,
    #[error("could not create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The shared connection pool and the dialect it speaks.
///
/// On SQLite, transactions get a pool of their own with a single connection. SQLite lets one
/// connection write at a time; when several try, all but one sleep in SQLite's busy handler and
/// retry (1, 2, 5, 10 … 100 ms), which under load makes a queue of sleepers whose latency runs
/// into seconds. Waiting for the one writing connection in the pool instead is a fair queue
/// with no sleeping, and a transaction starts the moment the previous one ends. Reads outside
/// a transaction keep the other pool, and WAL lets them run while a transaction writes.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    writer: AnyPool,
    dialect: Dialect,
    /// Held by every clone: the checkpoint task stops once the last is dropped.
    _alive: std::sync::Arc<()>,
}

impl Db {
    /// Connects to `url`, creating the SQLite file (and its directory) on first use.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        Self::connect_restarting(url, max_connections, RESTART_LOG_PAGES).await
    }

    /// [`Db::connect`], restarting a SQLite log once it is longer than `restart_pages`.
    async fn connect_restarting(
        url: &str,
        max_connections: u32,
        restart_pages: i64,
    ) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or(DbError::UnsupportedScheme)?;
        let url = match dialect {
            Dialect::Sqlite => prepare_sqlite_url(url)?,
            Dialect::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = Self::pool_options(dialect, max_connections)
            .connect_with(options.clone())
            .await?;
        let writer = match dialect {
            Dialect::Sqlite => {
                Self::pool_options(dialect, 1)
                    // The writer never checkpoints: see `checkpoints`.
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            sqlite_settings(conn).await?;
                            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                            conn.execute(WRITER_CACHE).await?;
                            Ok(())
                        })
                    })
                    .acquire_timeout(Duration::from_secs(30))
                    // A file, not a server: nothing to test before each transaction (the test
                    // is a round trip to the connection's thread while writers queue).
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?
            }
            Dialect::Postgres => pool.clone(),
        };
        let alive = std::sync::Arc::new(());
        if dialect == Dialect::Sqlite {
            tokio::spawn(checkpoints(
                pool.clone(),
                writer.clone(),
                sqlite_file(&url),
                std::sync::Arc::downgrade(&alive),
                restart_pages,
            ));
        }
        Ok(Self {
            pool,
            writer,
            dialect,
            _alive: alive,
        })
    }

    /// The pool settings and per-connection set-up of `dialect`.
    fn pool_options(dialect: Dialect, max_connections: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        sqlite_settings(conn).await?;
                    } else {
                        // PostgreSQL's default costs a random page read as four sequential
                        // ones (spinning disks); on SSDs, with the searched tables cached, it
                        // then scans every customer's search text (12 ms at 20,000) rather
                        // than use the trigram index (3 ms). The usual SSD setting:
                        conn.execute("SET random_page_cost = 1.1").await?;
                    }
                    Ok(())
                })
            })
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A transaction (on SQLite, on the one writing connection: see [`Db`]).
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        self.writer.begin().await
    }

    /// [`Db::begin`] holding SQLite's write lock from the start (`BEGIN IMMEDIATE`), for a
    /// transaction that reads before it writes: one that began deferred could not take the
    /// lock later if another connection wrote meanwhile. On PostgreSQL, [`Db::begin`].
    pub async fn begin_immediate(&self) -> Result<Tx<'static>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.writer.begin().await,
        }
    }

    /// The writing connection itself (on SQLite the one connection of the writer pool: see
    /// [`Db`]), for a caller that begins and ends its transaction with statements of its own:
    /// `COMMIT` can then end a script of writes, and neither it nor `BEGIN` waits for the
    /// caller to acknowledge it, as sqlx's transaction does on SQLite. Such a caller must not
    /// give the connection back with its transaction still open:
    /// [`sqlx::pool::PoolConnection::close_on_drop`] when it cannot tell.
    pub async fn writing_connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.writer.acquire().await
    }

    /// Refreshes the query planner's statistics of `tables` after a bulk write, so the next
    /// queries pick the right indexes at once.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => {
                // Sampled (a few hundred rows per index), so it stays fast on large tables.
                let mut conn = self.pool.acquire().await?;
                sqlx::query("PRAGMA analysis_limit = 400")
                    .execute(&mut *conn)
                    .await?;
                for table in tables {
                    sqlx::query(&format!("ANALYZE {table}"))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Dialect::Postgres => {
                // The customers' search text has a table of its own here (kept by triggers),
                // whose statistics decide between its trigram index and a walk in name order.
                let mut tables = tables.to_vec();
                if tables.contains(&"customers") {
                    tables.push("customer_search");
                }
                sqlx::query(&format!("ANALYZE {}", tables.join(", ")))
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether the database answers a trivial query (the readiness probe).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Every SQLite connection's settings.
async fn sqlite_settings(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    // WAL lets page reads proceed while a sync writes; foreign keys are per-connection in
    // SQLite and must be switched on every time.
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    // A larger page cache (32 MiB rather than 2), memory-mapped reads and in-memory sort
    // space: large imports and lists touch many index pages.
    conn.execute("PRAGMA cache_size = -32768").await?;
    conn.execute("PRAGMA mmap_size = 268435456").await?;
    conn.execute("PRAGMA temp_store = MEMORY").await?;
    // The log file keeps the size of its largest burst and is reused from its start: cutting
    // it back (`journal_size_limit`) truncates it inside the first commit after each restart,
    // which held the write lock for over 100 ms under load.
    Ok(())
}

/// The writing connection's page cache: 8 MiB, a quarter of the readers'.
///
/// Every commit drops from the cache any page past the end of the database, and SQLite marks
/// the cache as holding one whenever a b-tree split renumbers pages (it parks a page at the
/// number of the lock-byte page, 1 GiB in, for the swap). The drop then walks the cache's whole
/// hash table, a slot per cached page: at 32 MiB that walk was a tenth of the call-status
/// writer's time in SQLite. The pages the writer reads without writing come from the memory
/// map, not the cache, so a smaller cache costs it little.
const WRITER_CACHE: &str = "PRAGMA cache_size = -8192";

/// How often the SQLite log is copied back into the database file.
///
/// Each round copies what was committed since the last, on a thread of its own: at 250 ms,
/// under 5,000 call-status reports a second, that was tens of megabytes at a time, a burst of
/// copying and syncing that took the writer's share of the two cores and stalled its commits
/// for 10–20 ms, four times a second. Rounds of a fifth of that keep the work even; a round
/// with nothing new is a no-op.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// A log longer than this (pages, 256 MiB at SQLite's 4 KiB) is restarted: its last pages are
/// copied back with the writer held, so that the next transaction writes the log from its
/// start again, after syncing its header. Every restart stalls the writer for its copy and
/// syncs (3–7 ms, plus the reports that queued meanwhile, in the call-status benchmark at
/// 5,000 reports a second, where the log grows by about 150 MB a second); at 64 MiB that came
/// more than once a second, at 1,000 pages four times.
const RESTART_LOG_PAGES: i64 = 65_536;

/// Copies SQLite's write-ahead log back into the database file, off the writing connection.
///
/// By default the connection whose commit takes the log past 1,000 pages copies it back
/// itself, inside that commit, syncing the database file to disk, with SQLite's write lock
/// held and every queued writer waiting. The writing connection does not checkpoint
/// (`wal_autocheckpoint = 0`); this task does, in three steps:
///
/// 1. A passive checkpoint from a reading connection copies what the log holds, without ever
///    blocking the writer. Under a steady stream of commits it never catches up with the log's
///    end, and SQLite then leaves the database file unsynced.
/// 2. The database file is synced from here (fsync is per file, whichever descriptor asks),
///    still off the writer.
/// 3. When the log has grown past [`RESTART_LOG_PAGES`], steps 1 and 2 are repeated, each
///    pass copying what was committed during the last, until that is a few dozen pages. Then
///    a checkpoint on the writing connection — between two transactions — copies those and
///    syncs the little that is new. The log is then wholly in the database file, and the next
///    transaction restarts it from its start. Without this step a log under constant writing
///    is never restarted and grows without end (every append a new block of the file).
///
/// Commits themselves do not sync (`synchronous = NORMAL`), so the writer never waits for the
/// disk except in step 3's short sync. Stops when the pool closes or the `Db` is dropped.
async fn checkpoints(
    pool: AnyPool,
    writer: AnyPool,
    file: Option<std::path::PathBuf>,
    alive: std::sync::Weak<()>,
    restart_pages: i64,
) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The log's length after the last round that synced: while it stays so, nothing was
    // committed since, and an idle database costs a no-op checkpoint a round, not a sync.
    let mut synced = 0;
    loop {
        every.tick().await;
        if pool.is_closed() || alive.strong_count() == 0 {
            return;
        }
        match checkpoint_once(&pool, &writer, file.as_deref(), &mut synced, restart_pages).await {
            Ok(()) => {}
            Err(_) if pool.is_closed() => return,
            Err(err) => tracing::warn!(error = %err, "SQLite checkpoint failed"),
        }
    }
}

/// One round of [`checkpoints`].
async fn checkpoint_once(
    pool: &AnyPool,
    writer: &AnyPool,
    file: Option<&Path>,
    synced: &mut i64,
    restart_pages: i64,
) -> Result<(), sqlx::Error> {
    let started = std::time::Instant::now();
    let (log, _) = checkpoint(pool).await?;
    if log <= 0 || log == *synced {
        return Ok(());
    }
    sync_file(file).await?;
    *synced = log;
    if log < restart_pages {
        return Ok(());
    }
    // What was committed while the previous pass ran and synced, until that is little: each
    // pass is shorter than the last (it copies and syncs only what came in meanwhile), and
    // what is left for the writer's turn is what it copies and syncs with every writer
    // waiting — a stall of tens of milliseconds at a thousand pages on a slow disk.
    let (mut log, mut copied) = (log, 0);
    for _ in 0..CATCH_UP_PASSES {
        (log, copied) = checkpoint(pool).await?;
        sync_file(file).await?;
        if log - copied <= FINISH_PAGES {
            break;
        }
    }
    let bulk = started.elapsed();
    let waited = std::time::Instant::now();
    let mut conn = writer.acquire().await?;
    let held = std::time::Instant::now();
    let (finished, finish_copied) = checkpoint(&mut *conn).await?;
    tracing::debug!(
        log,
        left = log - copied,
        finished,
        finish_copied,
        ?bulk,
        waited = ?(held - waited),
        held = ?held.elapsed(),
        "checkpoint to restart the log"
    );
    Ok(())
}

/// At most this many passes off the writer before its turn (see [`checkpoint_once`]).
const CATCH_UP_PASSES: usize = 4;

/// Few enough pages for the writer's turn to copy (see [`checkpoint_once`]).
const FINISH_PAGES: i64 = 64;

/// Flushes the database file to disk, from a thread that may block.
async fn sync_file(file: Option<&Path>) -> Result<(), sqlx::Error> {
    let Some(file) = file.map(Path::to_owned) else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || std::fs::File::open(file)?.sync_data())
        .await
        .map_err(std::io::Error::other)
        .and_then(|synced| synced)
        .map_err(sqlx::Error::Io)
}

/// A passive checkpoint on a connection of `pool`: the pages in the log, and how many of them
/// are now in the database file.
async fn checkpoint<'c, E>(executor: E) -> Result<(i64, i64), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let (_busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(executor)
        .await?;
    Ok((log, copied))
}

/// The database file of a SQLite URL (none for an in-memory database).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let (path, query) = sqlite_path(url);
    (!path.is_empty() && path != ":memory:" && !query.contains("mode=memory"))
        .then(|| std::path::PathBuf::from(path))
}

/// A SQLite URL's file path and its query (`sqlite://data/a.db?mode=rwc` → `data/a.db`,
/// `mode=rwc`).
fn sqlite_path(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split_once('?').unwrap_or((rest, ""))
}

/// Makes sure the SQLite file can be created: its directory exists and the URL asks for
/// read-write-create mode.
fn prepare_sqlite_url(url: &str) -> Result<String, DbError> {
    let (path, query) = sqlite_path(url);
    if path != ":memory:"
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let mut url = url.to_owned();
    if !query.split('&').any(|kv| kv.starts_with("mode=")) {
        url.push(if query.is_empty() { '?' } else { '&' });
        url.push_str("mode=rwc");
    }
    Ok(url)
}

/// Statements to run together, in order, in one transaction. On SQLite they go as one
/// multi-statement execution — one trip to the connection's thread, each statement taking its
/// `?` arguments in turn — where statement by statement each trip waits for that thread to be
/// woken and for the answer to come back. PostgreSQL's protocol takes one statement with
/// arguments at a time, so there they run one by one.
pub struct Script {
    dialect: Dialect,
    /// The statements and their arguments; on SQLite one entry, the statements joined.
    statements: Vec<(String, sqlx::any::AnyArguments<'static>)>,
    /// The first argument that could not be encoded.
    error: Option<sqlx::error::BoxDynError>,
}

/// The most arguments a [`Script`] statement kept prepared takes: about one row of each table a
/// call report writes.
const KEEP_PREPARED_ARGUMENTS: usize = 64;

/// The arguments of a [`Script`]'s statement, bound in order.
pub struct Bind<'s> {
    arguments: &'s mut sqlx::any::AnyArguments<'static>,
    error: &'s mut Option<sqlx::error::BoxDynError>,
}

impl Bind<'_> {
    /// Binds `rows` as JSON text (see [`Dialect::json_rows`]): a slice of structs deriving
    /// `Serialize`, written straight to text, or a `serde_json::Value`.
    pub fn json<T: serde::Serialize + ?Sized>(&mut self, rows: &T) -> &mut Self {
        match serde_json::to_string(rows) {
            Ok(text) => self.bind(text),
            Err(err) => {
                self.error.get_or_insert(Box::new(err));
                self
            }
        }
    }

    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'static + sqlx::Encode<'static, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        use sqlx::Arguments;
        if let Err(err) = self.arguments.add(value) {
            self.error.get_or_insert(err);
        }
        self
    }
}

impl Script {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            statements: Vec::new(),
            error: None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Adds `sql` (written with [`Dialect::placeholders`]); bind its arguments, in order, on
    /// the [`Bind`] returned.
    pub fn statement(&mut self, sql: &str) -> Bind<'_> {
        match (self.dialect, self.statements.last_mut()) {
            (Dialect::Sqlite, Some((script, _))) => {
                script.push_str(";\n");
                script.push_str(sql);
            }
            _ => self.statements.push((sql.to_owned(), Default::default())),
        }
        let (_, arguments) = self.statements.last_mut().expect("a statement was added");
        Bind {
            arguments,
            error: &mut self.error,
        }
    }

    /// Runs every statement in `tx`.
    pub async fn run(self, tx: &mut Conn) -> Result<(), sqlx::Error> {
        if let Some(err) = self.error {
            return Err(sqlx::Error::Encode(err));
        }
        for (sql, arguments) in self.statements {
            // A short script (one reminder's change, say) recurs word for word: kept prepared,
            // it is parsed once per connection. A long one is a list whose length varies, and
            // would only crowd the connection's cache of prepared statements.
            let keep = sqlx::Arguments::len(&arguments) <= KEEP_PREPARED_ARGUMENTS;
            sqlx::query_with(&sql, arguments)
                .persistent(keep)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_follows_the_url_scheme() {
        assert_eq!(
            Dialect::from_url("sqlite://data/x.db"),
            Some(Dialect::Sqlite)
        );
        assert_eq!(
            Dialect::from_url("postgres://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::from_url("postgresql://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("mysql://u@h/db"), None);
    }

    /// Rows bound as JSON come back as they were: integers at the edges of their range,
    /// nulls, empty and quoted text, text that is not ASCII — whatever the number of rows.
    #[tokio::test]
    async fn json_rows_round_trip() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        sqlx::query("CREATE TABLE t (n BIGINT, s TEXT, o BIGINT)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let rows = serde_json::json!([
            {"n": i64::MAX, "s": "it's \"quoted\"", "o": null},
            {"n": i64::MIN, "s": "", "o": 0},
            {"n": 7, "s": "Zoë · 東京 · 🙂", "o": -1},
        ]);
        let sql = format!(
            "WITH v AS ({}) INSERT INTO t (n, s, o) SELECT n, s, o FROM v",
            Dialect::Sqlite.json_rows(&[("n", "BIGINT"), ("s", "TEXT"), ("o", "BIGINT")])
        );
        let mut script = Script::new(Dialect::Sqlite);
        script.statement(&sql).json(&rows);
        script.run(&mut tx).await.unwrap();
        let stored: Vec<(i64, String, Option<i64>)> =
            sqlx::query_as("SELECT n, s, o FROM t ORDER BY rowid")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        assert_eq!(
            stored,
            vec![
                (i64::MAX, "it's \"quoted\"".to_owned(), None),
                (i64::MIN, String::new(), Some(0)),
                (7, "Zoë · 東京 · 🙂".to_owned(), Some(-1)),
            ]
        );
        let listed = format!(
            "SELECT COUNT(*) FROM t WHERE n IN ({})",
            Dialect::Sqlite.json_values("BIGINT")
        );
        let found: i64 = sqlx::query_scalar(&listed)
            .bind(serde_json::json!([7, i64::MIN, 5]).to_string())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(found, 2);
        // Rows back as one JSON value: nested arrays, every kind of value, and `[]` for none.
        let read = format!(
            "SELECT {} FROM t WHERE n IN ({})",
            Dialect::Sqlite.json_list(
                &Dialect::Sqlite
                    .json_array_text(&format!("{}, s, o", Dialect::Sqlite.json_array("n, n - 1")))
            ),
            Dialect::Sqlite.json_values_at(1, "BIGINT")
        );
        let listed =
            |ids: serde_json::Value| sqlx::query_scalar::<_, String>(&read).bind(ids.to_string());
        let json = listed(serde_json::json!([i64::MAX, 7]))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let mut back: Vec<((i64, i64), String, Option<i64>)> = serde_json::from_str(&json).unwrap();
        back.sort();
        assert_eq!(
            back,
            vec![
                ((7, 6), "Zoë · 東京 · 🙂".to_owned(), Some(-1)),
                ((i64::MAX, i64::MAX - 1), "it's \"quoted\"".to_owned(), None),
            ]
        );
        let none = listed(serde_json::json!([]))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(none, "[]");
    }

    /// The writer leaves the log alone; the checkpoint task copies it into the database file.
    #[tokio::test]
    async fn the_log_is_checkpointed_off_the_writer() {
        let dir = std::env::temp_dir().join(format!("duecall-checkpoint-{}", std::process::id()));
        let file = dir.join("c.db");
        let db = Db::connect(&format!("sqlite://{}", file.display()), 2)
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        sqlx::query("CREATE TABLE t (b TEXT)")
            .execute(&mut *tx)
            .await
            .unwrap();
        for _ in 0..64 {
            sqlx::query("INSERT INTO t VALUES ($1)")
                .bind("x".repeat(64 * 1024))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let before = std::fs::metadata(&file).unwrap().len();
        assert!(before < 1 << 20, "the 4 MiB are still in the log");
        tokio::time::sleep(CHECKPOINT_EVERY * 4).await;
        let after = std::fs::metadata(&file).unwrap().len();
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(after > 4 << 20, "checkpointed: {before} → {after} bytes");
    }

    /// Under writes that never pause, the log is still restarted from its start: it stays a
    /// fraction of all that was written instead of growing with it.
    #[tokio::test]
    async fn a_log_under_constant_writing_is_restarted() {
        let dir = std::env::temp_dir().join(format!("duecall-restart-{}", std::process::id()));
        let file = dir.join("r.db");
        let db = Db::connect_restarting(&format!("sqlite://{}", file.display()), 2, 1_000)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (b TEXT)")
            .execute(db.pool())
            .await
            .unwrap();
        let blob = "x".repeat(16 * 1024);
        let log_file = dir.join("r.db-wal");
        let mut written = 0_u64;
        let started = std::time::Instant::now();
        // Without restarts the log holds everything written (and more: a page is written
        // again by each commit that touches it). On a busy machine a restart may take a few
        // rounds to come, so this writes until the log is half of what was written, for at
        // most 20 seconds.
        let log = loop {
            let mut tx = db.begin().await.unwrap();
            sqlx::query("INSERT INTO t VALUES ($1)")
                .bind(blob.clone())
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            written += blob.len() as u64;
            let log = std::fs::metadata(&log_file).unwrap().len();
            if (written > 32 << 20 && log < written / 2)
                || started.elapsed() > std::time::Duration::from_secs(20)
            {
                break log;
            }
        };
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(log < written / 2, "log {log} bytes after {written} written");
    }

    #[test]
    fn sqlite_urls_get_create_mode_once() {
        let dir = std::env::temp_dir().join(format!("duecall-url-{}", std::process::id()));
        let url = format!("sqlite://{}/a.db", dir.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.is_dir());
        let with_mode = format!("{url}?mode=ro");
        assert_eq!(prepare_sqlite_url(&with_mode).unwrap(), with_mode);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
