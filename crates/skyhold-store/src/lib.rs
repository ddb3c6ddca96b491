//! The store seam: the only part of skyhold that speaks SQL.
//!
//! One [`Store`] type with one backend per database (SQLite in WAL mode, the
//! embedded default, and PostgreSQL for shared replicas). Both backends run
//! the same statements where the dialects agree; the `on_pool!` macro expands
//! one body per backend so each is compiled against its own driver types
//! (sqlx's `Any` driver is not used). Each backend has its own migrations,
//! run at start.

mod access;
mod actions;
mod audit;
mod batch;
mod blueprints;
mod budgets;
mod dns;
mod events;
mod jobs;
mod launches;
mod ledger;
mod policies;
mod prices;
mod quotas;
mod resources;
mod rollup;
mod users;
mod views;

pub use access::{Grant, GrantFilter, Group, NewUser, SshKey, UserPatch};
pub use actions::{ActionRow, IdempotencyClaim, NewAction, Outcome, Refresh};
pub use audit::{AuditQuery, AuditScope};
pub use blueprints::BlueprintRow;
pub use budgets::BudgetRow;
pub use dns::{DnsRecordRow, WantedRecord};
pub use events::{ChangeEvent, EventQuery};
pub use jobs::{
    JobOutcome, JobState, LeaseOutcome, SyncRun, REGIONS_STATUS_KIND, REGIONS_STATUS_REGION,
};
pub use launches::{LaunchOutcome, LaunchRow, NewLaunch};
pub use ledger::{Interval, LedgerStats, UsageBucket, UsageField, UsageFilter};
pub use policies::{
    Delivery, ExtendLink, NewExtendLink, NewNotification, NewStep, NewWarning, Notification,
    PolicyRun, StepRow,
};
pub use prices::PriceRow;
pub use quotas::{QuotaRow, QuotaScope};
pub use resources::{ApplyStats, CountBy, Page, SyncStatus};
pub use rollup::{KeyUsage, UsageSet};
pub use users::{ApiToken, SessionInfo, User};
pub use views::{SavedView, SummaryRow};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    /// A server name in use (by a live instance or a running launch).
    #[error("the name {0} is taken")]
    NameTaken(String),
    #[error("invalid database url: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Backend(sqlx::Error),
    /// A value the database cannot store as it is (PostgreSQL's text
    /// refuses NUL characters): the caller's input, so a 400.
    #[error("{0}")]
    Invalid(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // character_not_in_repertoire: a NUL in a text value.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("22021") => {
                StoreError::Invalid("text must not contain NUL characters".into())
            }
            _ => StoreError::Backend(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// SQLite's page cache per connection, in KiB (its default is 2,000). A
/// sync's writes touch pages all over a million resources' indexes;
/// with the default most of them were read back from the OS for every
/// batch (measured: docs/PERFORMANCE.md, "A million resources"). Pages
/// are cached as they are read, so a small database takes no more. With
/// 16 MiB the server's eight connections took its resident set to 215
/// MiB at a million resources (target 200 MB); 8 MiB each bounds the
/// caches at 64 MiB.
const SQLITE_CACHE_KIB: u32 = 8_192;

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database. Cheap to clone (pools are shared).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Free-text word sets lately probed, rare or common (see
    /// `resources::WordVerdicts`).
    word_verdicts: std::sync::Arc<resources::WordVerdicts>,
    /// Instance types sized for PostgreSQL quota checks (see `quotas.rs`).
    sized_types: std::sync::Arc<quotas::SizedTypes>,
}

/// Runs `$body` with `$p` bound to the backend's pool, once per backend.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Opens (creating if needed) the database named by `url` and runs its
    /// migrations. `sqlite://path` (or `sqlite::memory:`) selects SQLite,
    /// `postgres://` or `postgresql://` selects PostgreSQL.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("cache_size", format!("-{}", SQLITE_CACHE_KIB));
            if let Some(dir) = sqlite_parent_dir(url) {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StoreError::BadUrl(format!("cannot create directory {}: {e}", dir.display()))
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Generic plans from the first execution: the plans PostgreSQL
            // makes with the actual values of a common free-text word fetch
            // and sort every match (~40 ms at 100,000 resources), and each
            // pooled connection made five of them before switching.
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact_url(url))))?
                .options([
                    ("plan_cache_mode", "force_generic_plan"),
                    // No parallel workers: a page of 100 rows started two
                    // (a generic plan, its bound limit assumed to be a tenth
                    // of the rows), 5 ms at rest and 30 ms under load at
                    // 1,000,000 rows; on a small machine serving many users
                    // at once, workers only add to the wait.
                    ("max_parallel_workers_per_gather", "0"),
                ]);
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(format!(
                "{}: expected a sqlite:// or postgres:// URL",
                redact_url(url)
            )));
        };
        let store = Self {
            pool,
            word_verdicts: Default::default(),
            sized_types: Default::default(),
        };
        store.ensure_ledger_rollup().await?;
        Ok(store)
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self.pool, Pool::Sqlite(_))
    }

    /// A trivial round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// Refreshes the planner's statistics after large changes (a first sync
    /// of many resources), so listings keep using the right index.
    pub async fn analyze(&self) -> Result<()> {
        match &self.pool {
            // Deliberately nothing: without statistics SQLite walks the
            // sort index and stops at the page's LIMIT, which is what these
            // listings want; with ANALYZE statistics it preferred to collect
            // every free-text match first and sort them (measured: 7 ms became
            // 29 ms for a word matching 9,000 of 100,000 rows).
            Pool::Sqlite(_) => {}
            Pool::Postgres(p) => {
                // VACUUM also sets the visibility map, so index-only scans
                // (counts, the name walks) need not visit the table.
                sqlx::query("VACUUM (ANALYZE) resources").execute(p).await?;
                // The ledger grows with the inventory in the same passes;
                // without statistics its plans assume an empty table (a
                // first sync's ledger read by id then took a scan of the
                // whole ledger per batch: 0.5 s each at 100,000 resources).
                sqlx::query("ANALYZE ledger, ledger_days, ledger_keys, resource_events")
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// SQLite: folds the write-ahead log into the database file, so the
    /// file's size is the database's (nothing on PostgreSQL).
    pub async fn checkpoint(&self) -> Result<()> {
        if let Pool::Sqlite(p) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
        }
        Ok(())
    }

    /// PostgreSQL: the bytes the tables of the current schema take, with
    /// their indexes and TOAST (SQLite: 0; its file tells).
    pub async fn size_bytes(&self) -> Result<u64> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(0);
        };
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')",
        )
        .fetch_one(p)
        .await?;
        Ok(n.max(0) as u64)
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Into::into)
}

/// The URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".to_owned(),
    }
}

fn map_unique(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => e.into(),
    }
}

/// Starts a transaction that will write. SQLite must take its write lock up
/// front (`BEGIN IMMEDIATE`): a deferred transaction that reads first and
/// writes later fails with SQLITE_BUSY instead of waiting when another writer
/// got there first.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = std::result::Result<WriteTx<Self::Db>, sqlx::Error>> + Send;

    /// This process's turn to write, for a single statement outside a
    /// transaction (held until dropped; nothing to wait for on PostgreSQL).
    fn write_turn(
        &self,
    ) -> impl std::future::Future<Output = std::result::Result<WriteTurn, sqlx::Error>> + Send;
}

/// A turn to write taken by [`BeginWrite::write_turn`].
pub(crate) struct WriteTurn(#[allow(dead_code)] Option<tokio::sync::OwnedMutexGuard<()>>);

/// A transaction begun by [`BeginWrite`]: used as the connection it runs
/// on (`&mut *tx`), ended by `commit` (dropping it rolls back). On SQLite
/// it also holds this process's turn to write the database file.
pub(crate) struct WriteTx<DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    pub(crate) async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        // The turn is given up only after the commit.
        let WriteTx { tx, _turn } = self;
        tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// One queue of writers per SQLite file in this process. SQLite has one
/// writer at a time; writers that find the lock taken poll for it from the
/// busy handler, sleeping up to 100 ms between tries, so under contention a
/// short transaction can wait many times its length. Taking turns here
/// first (in arrival order, woken as soon as the previous one commits)
/// leaves the busy handler only for other processes and for single
/// statements outside transactions.
fn sqlite_write_turns(file: &std::path::Path) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: std::sync::LazyLock<
        std::sync::Mutex<
            std::collections::HashMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>,
        >,
    > = std::sync::LazyLock::new(Default::default);
    let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    turns.entry(file.to_path_buf()).or_default().clone()
}

/// How long a writer waits for its turn. Longer than SQLite's busy handler
/// (`busy_timeout`, for other processes): at a million resources a sync
/// job's transaction (a kind's 25,000 instances) holds the file for
/// seconds, and with four jobs queued a ten-second wait ran out
/// (docs/PERFORMANCE.md, "A million resources").
const SQLITE_WRITE_WAIT: Duration = Duration::from_secs(60);

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> std::result::Result<WriteTx<sqlx::Sqlite>, sqlx::Error> {
        let WriteTurn(turn) = self.write_turn().await?;
        let tx = self.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    async fn write_turn(&self) -> std::result::Result<WriteTurn, sqlx::Error> {
        let turns = sqlite_write_turns(self.connect_options().get_filename());
        let turn = tokio::time::timeout(SQLITE_WRITE_WAIT, turns.lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        Ok(WriteTurn(Some(turn)))
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> std::result::Result<WriteTx<sqlx::Postgres>, sqlx::Error> {
        Ok(WriteTx {
            tx: self.begin().await?,
            _turn: None,
        })
    }

    async fn write_turn(&self) -> std::result::Result<WriteTurn, sqlx::Error> {
        Ok(WriteTurn(None))
    }
}

/// Reading a column by name on either backend, for the types the schema
/// uses: one set of trait bounds here instead of on every row decoder.
pub(crate) trait ReadRow {
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
}

impl<R> ReadRow for R
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }

    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
}
