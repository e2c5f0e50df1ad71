//! Outbox rows, timers, ledger reservations and idempotency keys.

use super::{Backend, StoreError, Tx, from_json, millis, to_json};
use crate::runtime::{Effect, Timer};
use sqlx::Row;

/// Queues an effect for delivery after commit.
pub async fn enqueue(tx: &mut Tx, case_id: &str, kind: &str, payload: &Effect, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (case_id, kind, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id)
        .bind(kind)
        .bind(to_json(payload))
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The outbox's columns, as [`enqueue_all`] fills them.
const INSERT_OUTBOX: &str = "INSERT INTO outbox (case_id, kind, payload, created_at, next_attempt_at)";

/// Queues several effects, each with its kind (`email`, `webhook`, …), in one statement per
/// [`super::ROWS_PER_INSERT`].
pub async fn enqueue_all(tx: &mut Tx, case_id: &str, effects: &[(&str, &Effect)], now: i64) -> Result<(), StoreError> {
    super::insert_chunked(tx, INSERT_OUTBOX, 5, "", effects, |query, (kind, effect)| {
        query.bind(case_id).bind(*kind).bind(to_json(effect)).bind(now).bind(now)
    })
    .await
}

/// A timer to set (or set again) for a case.
pub struct Scheduled {
    pub key: String,
    pub case_id: String,
    pub at: i64,
    pub payload: String,
}

pub async fn schedule(
    tx: &mut Tx,
    key: &str,
    case_id: &str,
    at: jiff::Timestamp,
    timer: &Timer,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO timers (key, case_id, due_at, payload) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, attempts = 0, locked_until = NULL",
    )
    .bind(key)
    .bind(case_id)
    .bind(millis(at))
    .bind(to_json(timer))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn cancel(tx: &mut Tx, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM timers WHERE key = $1").bind(key).execute(&mut **tx).await?;
    Ok(())
}

/// A due timer claimed by one worker.
#[derive(Clone, Debug)]
pub struct DueTimer {
    pub key: String,
    pub case_id: String,
    pub timer: Timer,
}

/// Claims up to `limit` timers due at `now` for `lease_ms`: another worker (or node) skips
/// them until the lease runs out, and takes them over if this one dies.
pub async fn claim_timers(
    tx: &mut Tx,
    backend: Backend,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<DueTimer>, StoreError> {
    // SQLite has one writer at a time, which is its lock; PostgreSQL workers skip each
    // other's rows.
    let sql = match backend {
        Backend::Postgres => {
            "SELECT key, case_id, payload FROM timers WHERE due_at <= $1 AND (locked_until IS NULL OR locked_until < $2) \
             ORDER BY due_at, key LIMIT $3 FOR UPDATE SKIP LOCKED"
        }
        Backend::Sqlite => {
            "SELECT key, case_id, payload FROM timers WHERE due_at <= $1 AND (locked_until IS NULL OR locked_until < $2) \
             ORDER BY due_at, key LIMIT $3"
        }
    };
    let rows = sqlx::query(sql).bind(now).bind(now).bind(limit).fetch_all(&mut **tx).await?;
    let mut out = Vec::new();
    for r in rows {
        let key: String = r.get(0);
        sqlx::query("UPDATE timers SET locked_until = $1, attempts = attempts + 1 WHERE key = $2")
            .bind(now + lease_ms)
            .bind(&key)
            .execute(&mut **tx)
            .await?;
        out.push(DueTimer { key, case_id: r.get(1), timer: from_json(&r.get::<String, _>(2))? });
    }
    Ok(out)
}

/// Reserves `amount` öre in a frame of `frame` öre, or refuses without changing anything.
pub async fn reserve(
    tx: &mut Tx,
    frames: &str,
    portfolio: &str,
    year: i32,
    amount: i64,
    frame: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO ledger (frames, portfolio, year, reserved) VALUES ($1, $2, $3, 0) ON CONFLICT (frames, portfolio, year) DO NOTHING")
        .bind(frames)
        .bind(portfolio)
        .bind(i64::from(year))
        .execute(&mut **tx)
        .await?;
    // One conditional update: on PostgreSQL the row lock makes a concurrent reservation wait and
    // then re-check the condition against the new total.
    let done = sqlx::query("UPDATE ledger SET reserved = reserved + $1 WHERE frames = $2 AND portfolio = $3 AND year = $4 AND reserved + $5 <= $6")
        .bind(amount)
        .bind(frames)
        .bind(portfolio)
        .bind(i64::from(year))
        .bind(amount)
        .bind(frame)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let reserved = reserved(tx, frames, portfolio, year).await?;
    Err(StoreError::FrameExceeded { portfolio: portfolio.into(), year, left: frame - reserved })
}

pub async fn reserved(tx: &mut Tx, frames: &str, portfolio: &str, year: i32) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT reserved FROM ledger WHERE frames = $1 AND portfolio = $2 AND year = $3")
        .bind(frames)
        .bind(portfolio)
        .bind(i64::from(year))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map_or(0, |r| r.get(0)))
}

pub async fn record_reservation(tx: &mut Tx, case_id: &str, effect: &Effect, now: i64) -> Result<(), StoreError> {
    if let Effect::Reserve { ledger, frames, portfolio, year, amount } = effect {
        sqlx::query("INSERT INTO ledger_entries (case_id, ledger, frames, portfolio, year, amount, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(case_id)
            .bind(ledger)
            .bind(frames)
            .bind(portfolio)
            .bind(i64::from(*year))
            .bind(*amount)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The stored first result of a command with this key, if it was seen before.
pub async fn seen(tx: &mut Tx, key: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT result FROM idempotency WHERE key = $1").bind(key).fetch_optional(&mut **tx).await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn remember(tx: &mut Tx, key: &str, case_id: &str, result: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO idempotency (key, case_id, result, created_at) VALUES ($1, $2, $3, $4)")
        .bind(key)
        .bind(case_id)
        .bind(result)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The stored first results of those of `keys` seen before, by key, in one statement.
pub async fn seen_many(tx: &mut Tx, keys: &[&str]) -> Result<std::collections::HashMap<String, String>, StoreError> {
    if keys.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!("SELECT key, result FROM idempotency WHERE key IN ({})", placeholders(1, keys.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for key in keys {
        query = query.bind(*key);
    }
    Ok(query.fetch_all(&mut **tx).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Outbox rows by status, for `beslut show` and metrics.
pub async fn outbox_of(pool: &sqlx::AnyPool, case_id: &str) -> Result<Vec<(i64, String, String, i64)>, StoreError> {
    let rows = sqlx::query("SELECT id, kind, status, attempts FROM outbox WHERE case_id = $1 ORDER BY id")
        .bind(case_id)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

/// An outbox row claimed for delivery.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: i64,
    pub case_id: String,
    pub kind: String,
    pub effect: Effect,
    pub attempts: i64,
}

/// The oldest pending row of `kind` that is due, locked for this transaction (on PostgreSQL
/// other workers skip it; SQLite has one writer at a time).
pub async fn next_due(tx: &mut Tx, backend: Backend, kind: &str, now: i64) -> Result<Option<OutboxRow>, StoreError> {
    Ok(due(tx, backend, kind, now, 1).await?.pop())
}

/// The oldest pending rows of `kind` that are due and not leased. The partial index
/// `outbox_pending (kind, id)` gives them in order, so a claim reads about `limit` rows however
/// many emails wait behind them.
const DUE: &str = "SELECT id, case_id, kind, payload, attempts FROM outbox WHERE status = 'pending' AND kind = $1 \
                   AND next_attempt_at <= $2 AND (locked_until IS NULL OR locked_until < $3) ORDER BY id LIMIT $4";

/// Up to `limit` rows of [`DUE`], locked for this transaction (on PostgreSQL other workers skip
/// them; SQLite has one writer at a time).
pub(crate) async fn due(
    tx: &mut Tx,
    backend: Backend,
    kind: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = match backend {
        Backend::Postgres => sqlx::AssertSqlSafe(format!("{DUE} FOR UPDATE SKIP LOCKED")),
        Backend::Sqlite => sqlx::AssertSqlSafe(DUE.to_string()),
    };
    let rows = sqlx::query(sql).bind(kind).bind(now).bind(now).bind(limit).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.get(0),
                case_id: r.get(1),
                kind: r.get(2),
                effect: from_json(&r.get::<String, _>(3))?,
                attempts: r.get(4),
            })
        })
        .collect()
}

/// Leases a row to this worker while it delivers outside a transaction; another worker takes
/// it over when the lease runs out (the worker died).
pub async fn lease(tx: &mut Tx, id: i64, until: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox SET locked_until = $1 WHERE id = $2").bind(until).bind(id).execute(&mut **tx).await?;
    Ok(())
}

pub async fn mark_done(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox SET status = 'done', attempts = attempts + 1, last_error = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records a failed attempt: retried after `next_attempt_at`, or `dead` (kept and visible,
/// never dropped) when attempts run out.
pub async fn mark_failed(
    tx: &mut Tx,
    id: i64,
    error: &str,
    next_attempt_at: i64,
    dead: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, status = $3 WHERE id = $4",
    )
    .bind(error)
    .bind(next_attempt_at)
    .bind(if dead { "dead" } else { "pending" })
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Exponential backoff from 30 s, doubling, capped at 6 hours.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exponent = attempts.clamp(0, 10) as u32;
    (30_000_i64 * 2_i64.pow(exponent)).min(6 * 3_600_000)
}

/// Claims up to `limit` due rows of `kind`, oldest first, and leases them until `until`, in the
/// caller's transaction: a worker that works through a batch outside a transaction keeps it
/// to itself, and another worker (or node) takes the rows over when the lease runs out. On
/// PostgreSQL concurrent workers skip each other's rows; SQLite has one writer at a time.
pub async fn claim_due(
    tx: &mut Tx,
    backend: Backend,
    kind: &str,
    now: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let claimed = due(tx, backend, kind, now, limit).await?;
    if claimed.is_empty() {
        return Ok(claimed);
    }
    let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
    lease_all(tx, &ids, Some(until)).await?;
    Ok(claimed)
}

/// Sets the lease of every row of `ids` that is still pending to `until`, in one statement:
/// a worker extends what it holds while it works, and gives back (`None`) what it will not
/// get to, so that another worker need not wait for the lease to run out.
pub async fn lease_all(tx: &mut Tx, ids: &[i64], until: Option<i64>) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    // The ids are bound; only their placeholders are written into the text.
    let sql = format!(
        "UPDATE outbox SET locked_until = $1 WHERE status = 'pending' AND id IN ({})",
        placeholders(2, ids.len())
    );
    let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(until);
    for id in ids {
        update = update.bind(*id);
    }
    update.execute(&mut **tx).await?;
    Ok(())
}

/// Marks every row of `ids` done in one statement: a batch's successes.
pub async fn mark_all_done(tx: &mut Tx, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE outbox SET status = 'done', attempts = attempts + 1, last_error = NULL WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        update = update.bind(*id);
    }
    update.execute(&mut **tx).await?;
    Ok(())
}

/// `$from, $from+1, …`, `count` of them: the bound parameters of an `IN` list.
pub(crate) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    /// A claim must walk the pending rows of its kind in order and stop at its limit: reading
    /// every pending row (and sorting them) made each claim as slow as the email backlog long.
    #[tokio::test]
    async fn claiming_reads_the_pending_rows_of_one_kind_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open_sqlite(dir.path()).await.unwrap();
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", super::DUE)))
            .bind("email")
            .bind(0_i64)
            .bind(0_i64)
            .bind(64_i64)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect();
        assert!(plan.iter().any(|step| step.contains("USING INDEX outbox_pending (kind=?)")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
    }
}
