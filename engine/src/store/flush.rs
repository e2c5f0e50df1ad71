//! A commit batch's rows in one statement: the cases' conditional update and every row that
//! goes with it (assignments, who takes part, audit entries, timers, outbox, idempotency keys).
//!
//! A statement per table cost a round trip each. On PostgreSQL at 8 clients that was eight
//! statements of 150–300 µs, two thirds of a batch's time (measured); on SQLite each is a
//! hand-over to sqlx's worker thread and back. Each table's rows travel as one JSON array
//! parameter (JSONB inside the statement, parsed once), so the statement's text is the same
//! for every batch and is prepared once per connection, where a list of placeholders per row
//! would make a new statement for every batch size.
//!
//! On PostgreSQL the parts are data-modifying CTEs of one statement. They all see the snapshot
//! the statement started with and none sees another's rows, so no two parts may touch the same
//! row: the assignments are upserted and those no longer held deleted, instead of all deleted
//! and inserted again. SQLite has no data-modifying CTEs; there the parts are the statements of
//! one string, which its worker runs one after another in one round trip. The `$N` parameters
//! are numbered across the whole string, as sqlx binds them on both databases.

use super::audit::Linked;
use super::cases::{self, Change, Holder};
use super::effects::Scheduled;
use super::{Backend, StoreError, Tx, millis, to_json};
use serde::Serialize;
use sqlx::Row;

/// What a commit batch writes, each row as its table keeps it.
pub struct Rows<'a> {
    /// Cases to write, each only if nobody wrote it since it was read.
    pub cases: &'a [Change<'a>],
    /// Cases whose task holders changed, each with its holders now: their assignments are
    /// rewritten to these.
    pub moved: &'a [(&'a str, Vec<Holder>)],
    /// Audit entries, each with its case id.
    pub audit: &'a [(String, Linked)],
    /// Keys of timers to remove; none of them is also in `timers`.
    pub cancelled: &'a [String],
    pub timers: &'a [Scheduled],
    /// Outbox rows `(case id, kind, payload)`, which get ids in this order.
    pub outbox: &'a [(String, &'static str, String)],
    /// First results `(key, case id, result)` of idempotency keys.
    pub remembered: &'a [(String, String, String)],
}

/// Writes `rows` in one statement; returns the ids of the cases that were not written because
/// someone had written them since they were read. The caller must then roll back, since the
/// rest was written regardless. Such a case's audit entries may instead collide with the other
/// writer's, and the statement fail: a commit batch then applies its commands again one by one.
pub async fn write(tx: &mut Tx, backend: Backend, rows: &Rows<'_>, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let holders = holders_of(rows.moved);
    let query = sqlx::query(sqlx::AssertSqlSafe(statement(backend)))
        .bind(json(rows.cases.iter().map(case_row)))
        .bind(json(rows.moved.iter().map(|(id, _)| [id])))
        .bind(json(holders.iter()))
        .bind(json(
            rows.audit
                .iter()
                .map(|(case, r)| (case, r.seq, r.at, &r.actor, &r.channel, &r.what, &r.detail, &r.prev, &r.hash)),
        ))
        .bind(json(rows.cancelled.iter().map(|key| [key])))
        .bind(json(rows.timers.iter().map(|t| (&t.key, &t.case_id, t.at, &t.payload))))
        .bind(json(rows.outbox.iter()))
        .bind(json(rows.remembered.iter()))
        .bind(now_ms);
    let written: std::collections::HashSet<String> =
        query.fetch_all(&mut **tx).await?.iter().map(|r| r.get::<String, _>(0)).collect();
    Ok(rows.cases.iter().filter(|c| !written.contains(&c.case.id)).map(|c| c.case.id.clone()).collect())
}

/// One `assignments` row: case id, task, address, person, deadline.
type Held<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<i64>);

/// The holders of the moved cases, each assignment once (a person may be named twice, by a
/// role and by name), the first as the table would have kept it: PostgreSQL refuses an upsert
/// that meets the same row twice.
fn holders_of<'a>(moved: &'a [(&'a str, Vec<Holder>)]) -> Vec<Held<'a>> {
    let mut seen = std::collections::HashSet::new();
    let mut held = Vec::new();
    for (case, holders) in moved {
        for (task, email, person, deadline) in holders {
            if seen.insert((*case, task, email)) {
                held.push((*case, task.as_str(), email.as_str(), person.as_deref(), *deadline));
            }
        }
    }
    held
}

fn case_row<'a>(c: &'a Change<'a>) -> impl Serialize + 'a {
    let (status, outcome) = cases::status_columns(c.case);
    let case = c.case;
    (
        &case.id,
        c.read_version,
        c.from.seq,
        &case.state,
        status,
        outcome,
        millis(case.updated_at),
        case.version,
        cases::waiting_key(case),
        to_json(case),
        cases::forvaltning(case),
        &c.to.head,
        c.to.seq,
    )
}

fn json<T: Serialize>(rows: impl Iterator<Item = T>) -> String {
    to_json(&rows.collect::<Vec<T>>())
}

/// The statement for `backend`, built once: it never changes.
fn statement(backend: Backend) -> &'static str {
    static SQLITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| build(backend))
}

/// The statement's parts, in the order SQLite runs them. The case update comes first only for
/// the reader: what it finds decides whether the caller commits or rolls back all of it.
fn build(backend: Backend) -> String {
    let rows = |n: usize| match backend {
        // JSONB on both: the text is parsed once. Rows as JSON text are parsed again by every
        // `->>`, and a case row holds the whole case: measured on PostgreSQL, that made the
        // one statement slower than the eight it replaced.
        Backend::Sqlite => format!("jsonb_each(${n}) AS e"),
        Backend::Postgres => format!("jsonb_array_elements(CAST(${n} AS jsonb)) WITH ORDINALITY AS e(value, key)"),
    };
    // `column IN (SELECT …)` over a function's rows is planned on PostgreSQL as a hash join
    // against every row of the table (measured: a sequential scan of `assignments`, the
    // decision rate down to a quarter); `= ANY (ARRAY(…))` is an index scan.
    let one_of = |column: &str, n: usize| match backend {
        Backend::Sqlite => format!("{column} IN (SELECT e.value ->> 0 FROM {})", rows(n)),
        Backend::Postgres => format!("{column} = ANY (ARRAY(SELECT e.value ->> 0 FROM {}))", rows(n)),
    };
    let text = |i: usize| format!("e.value ->> {i}");
    let int = |i: usize| format!("CAST(e.value ->> {i} AS BIGINT)");
    let parts = [
        (
            "changed",
            format!(
                "UPDATE cases SET state = {}, status = {}, outcome = {}, updated_at = {}, version = {}, \
                 wait_key = {}, body = {}, forvaltning = {}, audit_head = {}, audit_seq = {} FROM {} \
                 WHERE cases.id = {} AND cases.version = {} AND cases.audit_seq = {} RETURNING cases.id",
                text(3),
                text(4),
                text(5),
                int(6),
                int(7),
                text(8),
                text(9),
                text(10),
                text(11),
                int(12),
                rows(1),
                text(0),
                int(1),
                int(2),
            ),
        ),
        (
            "released",
            format!(
                "DELETE FROM assignments WHERE {} AND NOT EXISTS (SELECT 1 FROM {} \
                 WHERE {} = assignments.case_id AND {} = assignments.task_id AND {} = assignments.email)",
                one_of("case_id", 2),
                rows(3),
                text(0),
                text(1),
                text(2),
            ),
        ),
        // `WHERE true`: without it SQLite reads the upsert's ON as a join's.
        (
            "held",
            format!(
                "INSERT INTO assignments (case_id, task_id, email, person, deadline) SELECT {}, {}, {}, {}, {} \
                 FROM {} WHERE true ON CONFLICT (case_id, task_id, email) DO UPDATE SET person = excluded.person, \
                 deadline = excluded.deadline",
                text(0),
                text(1),
                text(2),
                text(3),
                int(4),
                rows(3),
            ),
        ),
        // Whoever holds a task takes part in the case from now on.
        (
            "involved",
            format!(
                "INSERT INTO case_people (case_id, who) SELECT DISTINCT {}, COALESCE({}, {}) FROM {} WHERE true \
                 ON CONFLICT DO NOTHING",
                text(0),
                text(3),
                text(2),
                rows(3),
            ),
        ),
        (
            "audited",
            format!(
                "INSERT INTO audit (case_id, seq, at, actor, channel, what, detail, prev_hash, hash) \
                 SELECT {}, {}, {}, {}, {}, {}, {}, {}, {} FROM {}",
                text(0),
                int(1),
                int(2),
                text(3),
                text(4),
                text(5),
                text(6),
                text(7),
                text(8),
                rows(4),
            ),
        ),
        ("stopped", format!("DELETE FROM timers WHERE {}", one_of("key", 5))),
        (
            "timed",
            format!(
                "INSERT INTO timers (key, case_id, due_at, payload) SELECT {}, {}, {}, {} FROM {} WHERE true \
                 ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, \
                 attempts = 0, locked_until = NULL",
                text(0),
                text(1),
                int(2),
                text(3),
                rows(6),
            ),
        ),
        (
            "queued",
            format!(
                "INSERT INTO outbox (case_id, kind, payload, created_at, next_attempt_at) \
                 SELECT {}, {}, {}, $9, $9 FROM {} ORDER BY e.key",
                text(0),
                text(1),
                text(2),
                rows(7),
            ),
        ),
        (
            "remembered",
            format!(
                "INSERT INTO idempotency (key, case_id, result, created_at) SELECT {}, {}, {}, $9 FROM {}",
                text(0),
                text(1),
                text(2),
                rows(8),
            ),
        ),
    ];
    match backend {
        Backend::Sqlite => parts.map(|(_, sql)| sql).join(";\n"),
        Backend::Postgres => {
            let ctes: Vec<String> = parts.iter().map(|(name, sql)| format!("{name} AS ({sql})")).collect();
            format!("WITH {} SELECT id FROM changed", ctes.join(",\n"))
        }
    }
}
