//! SQLite's WAL checkpoint, moved off the write connection.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
//! commit copies some 4 MB into the database file and syncs it before it returns, and every
//! decision queued behind it waits. A busy server crosses that mark several times a second.
//! Here a task on a connection of its own runs a passive checkpoint shortly after writes: it
//! copies what no reader still needs without taking any lock that a writer or reader waits for.
//!
//! While decisions keep committing, that copy never quite reaches the end of the WAL, so SQLite
//! does not start the WAL over, and the write connection's own checkpoint
//! ([`WRITER_AUTOCHECKPOINT_PAGES`]) still runs now and then: it copies only what was committed
//! since the last background pass. Measured, and rejected: finishing each round with a passive
//! checkpoint on the write connection (so that the WAL starts over) held that connection for
//! 5–12 ms every 125 ms in the HTTP bench, and lowered its throughput.

use sqlx::AnyPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The write connection's own checkpoint threshold (pages of 4 KiB: 256 MiB of WAL). Each time
/// the WAL reaches it, one commit copies what the background pass has not yet copied and makes
/// the decisions behind it wait (16–24 ms at 8,192 pages), so it is set high enough that this
/// happens every few seconds under load instead of several times a second. Measured in the
/// HTTP bench's open loop: p99 47–61 ms at 8,192 pages, 32–56 ms at 65,536; at half the rate
/// sustained with emails, 39.6 against 21.9 ms. The cost is a WAL file of up to this size on
/// disk and, after a crash, reading it once when the server starts.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: i64 = 65536;

/// How long after a write the checkpoint runs: long enough to take in a burst of commits at
/// once, short enough that each copy stays at a few MB under load.
const AFTER_WRITES: Duration = Duration::from_millis(100);

/// Wakes the checkpoint task after writes.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    pool: AnyPool,
    due: Arc<Notify>,
}

impl Checkpointer {
    /// Starts the task on `pool` (one connection of its own). It ends with [`Checkpointer::close`].
    pub(crate) fn start(pool: AnyPool) -> Checkpointer {
        let due = Arc::new(Notify::new());
        tokio::spawn(run(pool.clone(), due.clone()));
        Checkpointer { pool, due }
    }

    /// Says that a write transaction began; the checkpoint follows [`AFTER_WRITES`] later.
    pub(crate) fn wrote(&self) {
        self.due.notify_one();
    }

    /// Closes the connection and ends the task.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
        self.due.notify_one();
    }
}

async fn run(pool: AnyPool, due: Arc<Notify>) {
    while !pool.is_closed() {
        due.notified().await;
        tokio::time::sleep(AFTER_WRITES).await;
        if pool.is_closed() {
            return;
        }
        // A failure only delays the copy: the next one, or the writer's own, catches up.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!(error = %e, "the background WAL checkpoint failed; the next one tries again");
        }
    }
}
