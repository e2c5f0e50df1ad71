//! Case rows, case numbers, workflow versions and the open-task index.

use super::audit::Chain;
use super::{StoreError, Tx, from_json, millis, to_json};
use crate::runtime::{Case, Status};
use sqlx::Row;

/// Records a workflow version once; later calls with the same hash change nothing.
pub async fn save_version(tx: &mut Tx, workflow: &str, hash: &str, source: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO workflow_versions (workflow, hash, source, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (workflow, hash) DO NOTHING")
        .bind(workflow)
        .bind(hash)
        .bind(source)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn version_source(tx: &mut Tx, workflow: &str, hash: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT source FROM workflow_versions WHERE workflow = $1 AND hash = $2")
        .bind(workflow)
        .bind(hash)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.get::<String, _>(0)))
}

/// The next number of a series in a year. The row update takes a lock that is held to the
/// end of the transaction, so concurrent starts get consecutive numbers.
pub async fn next_number(tx: &mut Tx, series: &str, year: i64) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO case_numbers (series, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (series, year) DO UPDATE SET last = case_numbers.last + 1 RETURNING last",
    )
    .bind(series)
    .bind(year)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.get::<i64, _>(0))
}

pub(crate) fn status_columns(case: &Case) -> (&'static str, Option<String>) {
    match &case.status {
        Status::Open => ("open", None),
        Status::Closed { outcome, .. } => ("closed", Some(to_json(outcome).trim_matches('"').to_string())),
    }
}

/// The signal a case waits for, as stored in `wait_key`.
pub fn wait_key(signal: &str, key: &str) -> String {
    format!("{signal} {key}")
}

pub(crate) fn waiting_key(case: &Case) -> Option<String> {
    match &case.waiting {
        Some(crate::runtime::Waiting::Signal { name, key }) => Some(wait_key(name, key)),
        _ => None,
    }
}

fn starter(case: &Case) -> String {
    case.started_by.person.clone().unwrap_or_else(|| case.started_by.email.clone())
}

/// The case's `forvaltning` field, copied to a column for the case list's filter.
pub(crate) fn forvaltning(case: &Case) -> Option<&str> {
    case.data.get("forvaltning").and_then(|v| v.as_str())
}

/// Writes a new case whose audit chain ends at `chain`.
pub async fn insert(tx: &mut Tx, case: &Case, title: &str, chain: &Chain) -> Result<(), StoreError> {
    let (status, outcome) = status_columns(case);
    sqlx::query(
        "INSERT INTO cases (id, number, workflow, definition_hash, state, status, outcome, started_by, title, started_at, updated_at, version, wait_key, body, forvaltning, audit_head, audit_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&case.id)
    .bind(&case.number)
    .bind(&case.workflow)
    .bind(&case.definition_hash)
    .bind(&case.state)
    .bind(status)
    .bind(outcome)
    .bind(starter(case))
    .bind(title)
    .bind(millis(case.started_at))
    .bind(millis(case.updated_at))
    .bind(case.version)
    .bind(waiting_key(case))
    .bind(to_json(case))
    .bind(forvaltning(case))
    .bind(&chain.head)
    .bind(chain.seq)
    .execute(&mut **tx)
    .await?;
    involve(tx, &case.id, &starter(case).to_lowercase()).await?;
    refresh_assignments(tx, case).await
}

/// Writes a case and the new end of its audit chain, if nobody wrote either since
/// `expected_version` and the chain's end `from` were read.
pub async fn update(
    tx: &mut Tx,
    case: &Case,
    expected_version: i64,
    from: &Chain,
    to: &Chain,
) -> Result<(), StoreError> {
    let change = Change { case, read_version: expected_version, from, to };
    if !update_one(tx, &change).await? {
        return Err(StoreError::Conflict);
    }
    refresh_assignments(tx, case).await
}

/// The conditional update of one case row; false when someone else wrote it first.
async fn update_one(tx: &mut Tx, c: &Change<'_>) -> Result<bool, StoreError> {
    let (status, outcome) = status_columns(c.case);
    let done = sqlx::query(
        "UPDATE cases SET state = $1, status = $2, outcome = $3, updated_at = $4, version = $5, wait_key = $6, body = $7, \
         forvaltning = $10, audit_head = $11, audit_seq = $12 WHERE id = $8 AND version = $9 AND audit_seq = $13",
    )
    .bind(&c.case.state)
    .bind(status)
    .bind(outcome)
    .bind(millis(c.case.updated_at))
    .bind(c.case.version)
    .bind(waiting_key(c.case))
    .bind(to_json(c.case))
    .bind(&c.case.id)
    .bind(c.read_version)
    .bind(forvaltning(c.case))
    .bind(&c.to.head)
    .bind(c.to.seq)
    .bind(c.from.seq)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn refresh_assignments(tx: &mut Tx, case: &Case) -> Result<(), StoreError> {
    refresh_assignments_of(tx, &[case]).await
}

/// One row of the `assignments` table: task, address (lower case), person, deadline.
pub type Holder = (String, String, Option<String>, Option<i64>);

/// Who holds the case's open tasks, as the `assignments` table keeps it.
pub fn holders(case: &Case) -> Vec<Holder> {
    case.open_tasks()
        .flat_map(|task| {
            task.assignees.iter().map(move |a| {
                (task.id.clone(), a.party.email.to_lowercase(), a.party.person.clone(), task.deadline.map(millis))
            })
        })
        .collect()
}

/// Rewrites the assignments of `cases` from their open tasks, in three statements however
/// many cases there are, and records every holder as taking part in their case.
pub async fn refresh_assignments_of(tx: &mut Tx, cases: &[&Case]) -> Result<(), StoreError> {
    if cases.is_empty() {
        return Ok(());
    }
    let ids = super::effects::placeholders(1, cases.len());
    let mut delete = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM assignments WHERE case_id IN ({ids})")));
    for case in cases {
        delete = delete.bind(&case.id);
    }
    delete.execute(&mut **tx).await?;
    let held: Vec<(&str, Holder)> =
        cases.iter().flat_map(|case| holders(case).into_iter().map(|h| (case.id.as_str(), h))).collect();
    if held.is_empty() {
        return Ok(());
    }
    let insert = "INSERT INTO assignments (case_id, task_id, email, person, deadline)";
    super::insert_chunked(tx, insert, 5, "ON CONFLICT DO NOTHING", &held, |query, (case_id, holder)| {
        let (task, email, person, deadline) = holder;
        query.bind(*case_id).bind(task.as_str()).bind(email.as_str()).bind(person.as_deref()).bind(*deadline)
    })
    .await?;
    // Whoever holds a task now takes part in the case from now on: one statement, the same
    // derivation as the migration's backfill.
    let sql = format!(
        "INSERT INTO case_people (case_id, who) SELECT DISTINCT case_id, COALESCE(person, email) FROM assignments \
         WHERE case_id IN ({ids}) ON CONFLICT DO NOTHING"
    );
    let mut people = sqlx::query(sqlx::AssertSqlSafe(sql));
    for case in cases {
        people = people.bind(&case.id);
    }
    people.execute(&mut **tx).await?;
    Ok(())
}

/// Records that `who` (a person id or an address) takes part in the case.
async fn involve(tx: &mut Tx, case_id: &str, who: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO case_people (case_id, who) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(case_id)
        .bind(who)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A case by id or number, with the end of its audit chain, for a change to it.
pub async fn load_for_write(tx: &mut Tx, id: &str) -> Result<Option<(Case, Chain)>, StoreError> {
    let row = sqlx::query("SELECT body, audit_seq, audit_head FROM cases WHERE id = $1 OR number = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let case = from_json(&row.get::<String, _>(0))?;
    let seq: i64 = row.get(1);
    let head: String = row.get(2);
    let chain = if seq == 0 { Chain::start() } else { Chain { seq, head } };
    Ok(Some((case, chain)))
}

/// Cases by id or number, each with the end of its audit chain, in one statement: a shared
/// commit reads every case it changes at once.
pub async fn load_many_for_write(tx: &mut Tx, ids: &[&str]) -> Result<Vec<(Case, Chain)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The same placeholders twice: each value is bound once and matched as id or number.
    let list = super::effects::placeholders(1, ids.len());
    let sql = format!("SELECT body, audit_seq, audit_head FROM cases WHERE id IN ({list}) OR number IN ({list})");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|row| {
            let case = from_json(&row.get::<String, _>(0))?;
            let seq: i64 = row.get(1);
            let chain = if seq == 0 { Chain::start() } else { Chain { seq, head: row.get(2) } };
            Ok((case, chain))
        })
        .collect()
}

/// A case to write over its stored row: the version and chain end it was read at, and the
/// chain end it has now.
pub struct Change<'a> {
    pub case: &'a Case,
    pub read_version: i64,
    pub from: &'a Chain,
    pub to: &'a Chain,
}

pub async fn load(tx: &mut Tx, id: &str) -> Result<Option<Case>, StoreError> {
    let row =
        sqlx::query("SELECT body FROM cases WHERE id = $1 OR number = $1").bind(id).fetch_optional(&mut **tx).await?;
    row.map(|r| from_json(&r.get::<String, _>(0))).transpose()
}

/// A line in a list of cases.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub id: String,
    pub number: String,
    pub workflow: String,
    pub state: String,
    pub status: String,
    pub outcome: Option<String>,
    pub title: String,
    pub updated_at: i64,
}

/// Cases, newest first, optionally by workflow and state.
pub async fn list(
    pool: &sqlx::AnyPool,
    workflow: Option<&str>,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<Summary>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, number, workflow, state, status, outcome, title, updated_at FROM cases \
         WHERE ($1 = '' OR workflow = $1) AND ($2 = '' OR state = $2) ORDER BY updated_at DESC, id DESC LIMIT $3",
    )
    .bind(workflow.unwrap_or(""))
    .bind(state.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(summary_row).collect())
}

/// A `Summary` from the first eight columns of a row: id, number, workflow, state, status,
/// outcome, title, updated_at.
fn summary_row(r: &sqlx::any::AnyRow) -> Summary {
    Summary {
        id: r.get(0),
        number: r.get(1),
        workflow: r.get(2),
        state: r.get(3),
        status: r.get(4),
        outcome: r.get(5),
        title: r.get(6),
        updated_at: r.get(7),
    }
}

pub async fn ids(pool: &sqlx::AnyPool) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT id FROM cases ORDER BY id").fetch_all(pool).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The id of the open case waiting for `signal` under `key`.
pub async fn waiting_for(pool: &sqlx::AnyPool, signal: &str, key: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT id FROM cases WHERE wait_key = $1 AND status = 'open'")
        .bind(wait_key(signal, key))
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// What a list of cases is filtered by; every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub workflow: Option<String>,
    pub state: Option<String>,
    /// `open` or `closed`.
    pub status: Option<String>,
    /// A person id or address: cases they started or hold an open task in.
    pub person: Option<String>,
    /// Cases this person (id or address) started or was ever given a task in: what a person
    /// without a viewing role may see.
    pub involving: Option<String>,
    /// The förvaltning id of the case's `forvaltning` field.
    pub forvaltning: Option<String>,
    /// Started at or after (ms).
    pub from: Option<i64>,
    /// Started before (ms).
    pub to: Option<i64>,
    /// Words in the title or number.
    pub text: Option<String>,
    /// Continue after this (started_at, id), newest first.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// A line in a list of cases, with when it started.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub summary: Summary,
    pub started_by: String,
    pub started_at: i64,
}

/// Cases matching `f`, newest first, at most `f.limit`.
pub async fn search(pool: &sqlx::AnyPool, f: &Filter) -> Result<Vec<Listed>, StoreError> {
    let text = f.text.as_ref().map(|t| format!("%{}%", t.to_lowercase().replace(['%', '_'], "")));
    let person = f.person.as_ref().map(|p| p.to_lowercase());
    let (after_at, after_id) = f.after.clone().map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let rows = sqlx::query(
        "SELECT id, number, workflow, state, status, outcome, title, updated_at, started_by, started_at FROM cases c \
         WHERE (CAST($1 AS TEXT) IS NULL OR workflow = $1) AND (CAST($2 AS TEXT) IS NULL OR state = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR LOWER(started_by) = $4 OR EXISTS (SELECT 1 FROM assignments a \
              WHERE a.case_id = c.id AND (a.person = $4 OR a.email = $4))) \
         AND (CAST($5 AS BIGINT) IS NULL OR started_at >= $5) AND (CAST($6 AS BIGINT) IS NULL OR started_at < $6) \
         AND (CAST($7 AS TEXT) IS NULL OR LOWER(title) LIKE $7 OR LOWER(number) LIKE $7) \
         AND (CAST($8 AS BIGINT) IS NULL OR started_at < $8 OR (started_at = $8 AND id < $9)) \
         AND (CAST($11 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM case_people p WHERE p.case_id = c.id AND p.who = $11)) \
         AND (CAST($12 AS TEXT) IS NULL OR forvaltning = $12) \
         ORDER BY started_at DESC, id DESC LIMIT $10",
    )
    .bind(f.workflow.as_deref())
    .bind(f.state.as_deref())
    .bind(f.status.as_deref())
    .bind(person.as_deref())
    .bind(f.from)
    .bind(f.to)
    .bind(text.as_deref())
    .bind(after_at)
    .bind(after_id.as_deref().unwrap_or(""))
    .bind(f.limit)
    .bind(f.involving.as_ref().map(|p| p.to_lowercase()))
    .bind(f.forvaltning.as_deref())
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|r| Listed { summary: summary_row(r), started_by: r.get(8), started_at: r.get(9) }).collect())
}

/// An open task held by someone, for task lists.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Held {
    pub case_id: String,
    pub task_id: String,
    pub email: String,
    pub person: Option<String>,
    pub deadline: Option<i64>,
}

/// Open tasks held by a person (id or address), or by anyone when `person` is None, most
/// urgent first.
pub async fn held(pool: &sqlx::AnyPool, person: Option<&str>, limit: i64) -> Result<Vec<Held>, StoreError> {
    let Some(person) = person else {
        let rows = sqlx::query(
            "SELECT case_id, task_id, email, person, deadline FROM assignments ORDER BY deadline, case_id, task_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?;
        return Ok(rows.iter().map(held_row).collect());
    };
    let rows = sqlx::query(HELD_BY).bind(person.to_lowercase()).bind(limit).fetch_all(pool).await?;
    Ok(rows.iter().map(held_row).collect())
}

/// A person's open tasks, most urgent first, each with its case, in one query: a task list
/// costs one round trip, not one per line.
pub async fn held_with_cases(pool: &sqlx::AnyPool, person: &str, limit: i64) -> Result<Vec<(Held, Case)>, StoreError> {
    let rows = sqlx::query(HELD_WITH_CASES).bind(person.to_lowercase()).bind(limit).fetch_all(pool).await?;
    rows.iter().map(|r| Ok((held_row(r), from_json(&r.get::<String, _>(5))?))).collect()
}

/// The rows of one holder by person id and by address: each branch is a range of its index
/// in deadline order, so the database merges the two and stops at the limit. A person id never
/// holds an '@', so no row is in both branches.
const HELD_BY: &str = "SELECT case_id, task_id, email, person, deadline FROM assignments WHERE person = $1 \
     UNION ALL SELECT case_id, task_id, email, person, deadline FROM assignments WHERE email = $1 \
     ORDER BY deadline, case_id, task_id LIMIT $2";

const HELD_WITH_CASES: &str = "SELECT h.case_id, h.task_id, h.email, h.person, h.deadline, c.body FROM \
     (SELECT case_id, task_id, email, person, deadline FROM assignments WHERE person = $1 \
      UNION ALL SELECT case_id, task_id, email, person, deadline FROM assignments WHERE email = $1 \
      ORDER BY deadline, case_id, task_id LIMIT $2) h \
     JOIN cases c ON c.id = h.case_id ORDER BY h.deadline, h.case_id, h.task_id";

fn held_row(r: &sqlx::any::AnyRow) -> Held {
    Held { case_id: r.get(0), task_id: r.get(1), email: r.get(2), person: r.get(3), deadline: r.get(4) }
}

/// The stored versions of a workflow (hash, first used), oldest first.
pub async fn versions(pool: &sqlx::AnyPool, workflow: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let rows =
        sqlx::query("SELECT hash, created_at FROM workflow_versions WHERE workflow = $1 ORDER BY created_at, hash")
            .bind(workflow)
            .fetch_all(pool)
            .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The published version (hash) of every workflow.
pub async fn published(tx: &mut Tx) -> Result<Vec<(String, String)>, StoreError> {
    let rows =
        sqlx::query("SELECT workflow, hash FROM workflow_current ORDER BY workflow").fetch_all(&mut **tx).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Makes `hash` the version of `workflow` that new cases start on, on every node.
pub async fn publish(tx: &mut Tx, workflow: &str, hash: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workflow_current (workflow, hash, published_at) VALUES ($1, $2, $3) \
         ON CONFLICT (workflow) DO UPDATE SET hash = excluded.hash, published_at = excluded.published_at",
    )
    .bind(workflow)
    .bind(hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
