//! All SQL of Beslut: one module per aggregate, each function taking the caller's transaction
//! so that a state change, its audit entries, outbox rows and timers commit together.
//!
//! SQLite (one file, WAL) is the embedded default and PostgreSQL serves several nodes; both
//! are reached through sqlx's `Any` driver with one set of portable queries (`$1` parameters,
//! integer millisecond timestamps, JSON as text), and each has its own migration folder.
//!
//! - [`cases`]: case rows, numbers, workflow versions, task assignments.
//! - [`audit`]: the hash-chained audit trail and its verification.
//! - [`effects`]: outbox, timers, ledger reservations, idempotency keys.
//! - [`flush`]: a commit batch's rows of every table in one statement.
//! - [`mail`]: link tokens (hashed) and the log of rendered emails.
//! - [`hooks`]: webhook subscriptions, events, deliveries and their log.
//! - [`tokens`]: API tokens (hashed) and their scopes.

pub mod audit;
pub mod cases;
mod checkpoint;
pub mod effects;
pub(crate) mod flush;
mod gate;
pub mod hooks;
pub mod mail;
pub mod tokens;
pub mod web;

pub use gate::{Foreground, MAX_DEFER};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::path::Path;
use std::time::Duration;

/// A transaction on either database.
pub type Tx = Transaction<'static, Any>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why the store failed; the service turns these into sentences for people.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database cannot be reached or answered with an error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the database schema could not be brought up to date: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("someone else changed the case at the same moment")]
    Conflict,
    #[error("the frame of {portfolio} {year} has {left} öre left")]
    FrameExceeded { portfolio: String, year: i32, left: i64 },
}

/// The database and which kind it is.
#[derive(Clone, Debug)]
pub struct Store {
    /// For reads, and on PostgreSQL for everything.
    pub pool: AnyPool,
    /// Where [`Store::begin`] takes its connection: on SQLite one connection of its own, so
    /// that this process's writers queue for it in order (an async wait) instead of meeting at
    /// SQLite's lock, where the loser sleeps in growing steps (up to 100 ms each) and a busy
    /// server's writes stall; on PostgreSQL the same pool as reads.
    writer: AnyPool,
    /// Who goes first for the write connection (SQLite only; see [`gate`]).
    gate: std::sync::Arc<gate::Gate>,
    /// SQLite only: the WAL checkpoint off the write connection (see [`checkpoint`]).
    checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
    pub backend: Backend,
}

/// The name of the SQLite file in the data directory.
pub const SQLITE_FILE: &str = "beslut.sqlite3";

impl Store {
    /// Opens (creating if needed) the SQLite file in `data_dir`, in WAL mode.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Corrupt(format!("{}: {e}", data_dir.display())))?;
        let url = format!("sqlite://{}?mode=rwc", data_dir.join(SQLITE_FILE).display());
        Store::connect(&url).await
    }

    /// Connects to `sqlite://…` or `postgres://…` and runs the migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let (pool, writer, checkpointer) = match backend {
            Backend::Sqlite => {
                let writer_pragmas =
                    format!("PRAGMA wal_autocheckpoint = {};", checkpoint::WRITER_AUTOCHECKPOINT_PAGES);
                let writer = sqlite_pool(options.clone(), 1, url, WRITER_CACHE_KIB, &writer_pragmas).await?;
                let own = sqlite_pool(options.clone(), 1, url, CHECKPOINT_CACHE_KIB, "").await?;
                let readers = sqlite_pool(options, 4, url, READER_CACHE_KIB, "").await?;
                let checkpointer = checkpoint::Checkpointer::start(own);
                (readers, writer, Some(std::sync::Arc::new(checkpointer)))
            }
            Backend::Postgres => {
                let pool = options.max_connections(16).connect(url).await?;
                (pool.clone(), pool, None)
            }
        };
        let store = Store { pool, writer, gate: Default::default(), checkpointer, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // On PostgreSQL the migrator holds an advisory lock, so several nodes starting at once
        // migrate exactly once.
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    /// Closes every connection to the database, for a caller that must have the file to itself.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close().await;
        }
    }

    /// Begins a write transaction that someone is waiting for. SQLite takes its write lock at
    /// once, so two writers never deadlock upgrading a read lock.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let _turn = self.foreground();
        self.begin_now().await
    }

    /// Begins a write transaction for background work (emails, webhooks, timers): on SQLite
    /// it waits until no foreground write is waiting or under way, at most [`MAX_DEFER`].
    pub async fn begin_background(&self) -> Result<Tx, StoreError> {
        if self.backend == Backend::Postgres {
            return self.begin_now().await;
        }
        let _lane = self.gate.background().await;
        self.begin_now().await
    }

    /// Marks foreground write work under way for as long as it is held, such as a commit
    /// batch with more decisions queued behind it, so that background writers wait for it.
    pub fn foreground(&self) -> Foreground<'_> {
        self.gate.foreground()
    }

    async fn begin_now(&self) -> Result<Tx, StoreError> {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.wrote();
        }
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }
}

/// SQLite's page cache of the write connection. Its default, 2 MiB, is less than the index
/// pages one decision touches in a database of some size, and every miss is a `pread` from
/// the operating system's cache: measured, about a fifth of the writer thread's time.
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// The page cache of each of the four read connections.
const READER_CACHE_KIB: i64 = 8 * 1024;
/// The checkpoint connection reads WAL frames and writes database pages, both uncached.
const CHECKPOINT_CACHE_KIB: i64 = 1024;

/// A pool of up to `size` connections on the SQLite file; pragmas (the common ones and
/// `more_pragmas`) are per connection. The busy timeout still matters for other processes on
/// the same file (`beslut apply`, `beslut work`).
async fn sqlite_pool(
    options: AnyPoolOptions,
    size: u32,
    url: &str,
    cache_kib: i64,
    more_pragmas: &str,
) -> Result<AnyPool, StoreError> {
    let more_pragmas = more_pragmas.to_string();
    let pool = options
        .max_connections(size)
        .after_connect(move |conn, _| {
            let more_pragmas = more_pragmas.clone();
            Box::pin(async move {
                use sqlx::Executor;
                let pragmas = format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000; \
                     PRAGMA foreign_keys = ON; PRAGMA cache_size = -{cache_kib}; {more_pragmas}"
                );
                conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// Rows per multi-row INSERT whose row count the caller does not bound: at ten columns, well
/// under the bound-parameter limits of both databases (SQLite 32,766, PostgreSQL 65,535).
pub(crate) const ROWS_PER_INSERT: usize = 200;

/// `{insert} VALUES ($1, $2), ($3, $4) {tail}`: a multi-row INSERT of `rows` rows of `columns`
/// values. One statement instead of one per row matters: each statement is a round trip to the
/// database (or, for SQLite, to its worker thread). Only numbered placeholders are added to the
/// two literal parts, so the statement is as safe as they are.
pub(crate) fn insert_many(
    insert: &'static str,
    rows: usize,
    columns: usize,
    tail: &'static str,
) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{insert} VALUES {} {tail}", value_rows(rows, columns)))
}

/// A query on either database, as [`insert_chunked`] builds them.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Inserts `rows` with [`insert_many`], [`ROWS_PER_INSERT`] rows per statement, `bind` adding
/// one row's `columns` values: any number of rows stays within the bound-parameter limits.
pub(crate) async fn insert_chunked<'r, T>(
    tx: &mut Tx,
    insert: &'static str,
    columns: usize,
    tail: &'static str,
    rows: &'r [T],
    bind: impl Fn(AnyQuery<'r>, &'r T) -> AnyQuery<'r>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let query = sqlx::query(insert_many(insert, chunk.len(), columns, tail));
        chunk.iter().fold(query, &bind).execute(&mut **tx).await?;
    }
    Ok(())
}

/// `($1, …, $columns), ($columns+1, …)`: `rows` rows of bound parameters.
fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows).map(|r| format!("({})", effects::placeholders(r * columns + 1, columns))).collect::<Vec<_>>().join(", ")
}

/// Milliseconds since the epoch: sorts the same on both databases.
pub fn millis(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

pub fn from_millis(ms: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    /// Two branches that each add the next migration number would both be applied as one
    /// version, and the second fails at start on every database.
    #[test]
    fn every_migration_has_its_own_version_and_both_databases_have_the_same() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let versions = |db: &str| {
            let mut names: Vec<String> = std::fs::read_dir(dir.join(db))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let sqlite = versions("sqlite");
        assert_eq!(sqlite, versions("postgres"), "the two folders must hold the same migrations");
        let mut numbers: Vec<&str> = sqlite.iter().map(|n| n.split('_').next().unwrap()).collect();
        let count = numbers.len();
        numbers.dedup();
        assert_eq!(numbers.len(), count, "two migrations share a version: {sqlite:?}");
    }

    #[test]
    fn placeholders_number_every_value_of_every_row() {
        assert_eq!(super::value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::value_rows(1, 1), "($1)");
    }
}
