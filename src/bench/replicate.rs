//! The scale run's database: the real cases that `seed` wrote, copied in SQL into as many
//! closed and open cases as asked, each copy with its own id, number and start moment, spread
//! over the past years.
//!
//! Every copy gets its template's row, body and audit trail; open copies also its assignments
//! and timers. The people of the copies' index rows (`started_by`, `case_people`,
//! `assignments`) are rotated through the directory, copy by copy, so that tasks and cases are
//! spread over everyone rather than piled on the few people of the scenarios. The bodies keep
//! the template's people, and the audit hashes are the template's (a copy's chain does not
//! verify): neither changes what the lists cost. Copies' timers are due a month or more ahead,
//! so that the server's timer worker does not fire a hundred thousand escalations while it
//! is being measured.

use beslut_engine::directory::Directory;
use sqlx::{AnyPool, Executor, Row};
use std::path::Path;

/// How many copies of which kind, and the moment they are counted back from.
pub(super) struct Sizes {
    pub closed: usize,
    pub open: usize,
    pub now_ms: i64,
}

/// The rows of the finished database.
pub(super) struct Counts {
    pub cases: i64,
    pub audit: i64,
    pub assignments: i64,
    pub templates: (i64, i64),
}

/// Copies the cases in the SQLite file `file` into `sizes` closed and open cases. The engine
/// must have closed the file: the journal is switched off WAL while the copies are written.
pub(super) async fn copies(file: &Path, directory: &Directory, sizes: &Sizes) -> Result<Counts, String> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", file.display());
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.map_err(|e| e.to_string())?;
    // Nothing to lose while building: a crash means building again.
    run(&pool, "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY").await?;
    let templates = templates(&pool).await?;
    if templates.0 == 0 || templates.1 == 0 {
        return Err(format!(
            "the scenarios left {} closed and {} open cases; both are needed",
            templates.0, templates.1
        ));
    }
    people(&pool, directory).await?;
    params(&pool, sizes, templates, directory.people.len()).await?;
    for (what, sql) in STATEMENTS {
        sqlx::query(sql).execute(&pool).await.map_err(|e| format!("copying {what}: {e}"))?;
    }
    run(&pool, "PRAGMA journal_mode = WAL").await?;
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM audit), (SELECT COUNT(*) FROM assignments)",
    )
    .fetch_one(&pool)
    .await
    .map_err(|e| e.to_string())?;
    let counts = Counts { cases: row.get(0), audit: row.get(1), assignments: row.get(2), templates };
    pool.close().await;
    Ok(counts)
}

async fn run(pool: &AnyPool, sql: &'static str) -> Result<(), String> {
    pool.execute(sql).await.map(drop).map_err(|e| format!("{sql}: {e}"))
}

/// Numbers the written cases per status; returns how many are closed and open.
async fn templates(pool: &AnyPool) -> Result<(i64, i64), String> {
    run(
        pool,
        "CREATE TEMP TABLE bench_templates (status TEXT NOT NULL, k BIGINT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (status, k)); \
         INSERT INTO bench_templates SELECT status, ROW_NUMBER() OVER (PARTITION BY status ORDER BY id) - 1, id FROM cases",
    )
    .await?;
    let rows = sqlx::query("SELECT status, COUNT(*) FROM bench_templates GROUP BY status")
        .fetch_all(pool)
        .await
        .map_err(|e| e.to_string())?;
    let of = |status: &str| rows.iter().find(|r| r.get::<String, _>(0) == status).map_or(0, |r| r.get::<i64, _>(1));
    Ok((of("closed"), of("open")))
}

/// The directory's people, numbered, for rotating them through the copies.
async fn people(pool: &AnyPool, directory: &Directory) -> Result<(), String> {
    run(pool, "CREATE TEMP TABLE bench_people (idx BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, email TEXT NOT NULL)")
        .await?;
    for (idx, p) in directory.people.iter().enumerate() {
        sqlx::query("INSERT INTO bench_people (idx, id, email) VALUES ($1, $2, $3)")
            .bind(idx as i64)
            .bind(&p.id)
            .bind(p.email.to_lowercase())
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The numbers every statement reads, as a one-row table `k`.
async fn params(
    pool: &AnyPool,
    sizes: &Sizes,
    (closed_templates, open_templates): (i64, i64),
    people: usize,
) -> Result<(), String> {
    run(
        pool,
        "CREATE TEMP TABLE bench_params (closed BIGINT, open BIGINT, now_ms BIGINT, closed_templates BIGINT, \
         open_templates BIGINT, people BIGINT)",
    )
    .await?;
    sqlx::query("INSERT INTO bench_params VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(sizes.closed as i64)
        .bind(sizes.open as i64)
        .bind(sizes.now_ms)
        .bind(closed_templates)
        .bind(open_templates)
        .bind(people as i64)
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The copying statements, in order. `k` is the row of `bench_params`; `src` and `dst` rotate
/// a person of the template by the copy's number (anyone not in the directory stays).
const STATEMENTS: [(&str, &str); 6] = [
    // One row per copy: its number `n`, template, id, registry number, start, and how far its
    // times are shifted from the template's. Copies 1..=closed are of closed templates, the
    // rest of open ones, each kind taking its templates in turn. Closed copies start over ten
    // years up to a month ago, open ones over the last year, with up to an hour of jitter; ids
    // and numbers have the engine's form with the year of the start, and the copy's number
    // keeps them distinct.
    (
        "numbering the copies",
        "CREATE TEMP TABLE bench_replicas AS \
         WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < (SELECT closed + open FROM bench_params)), \
         starts AS (SELECT n, CASE WHEN n <= k.closed THEN k.now_ms - 30 * 86400000 - n * (3650 * 86400000 / k.closed) \
                              ELSE k.now_ms - (n - k.closed) * (365 * 86400000 / k.open) END + (n * 7919) % 3600000 AS started_at, \
                    CASE WHEN n <= k.closed THEN 'closed' ELSE 'open' END AS status, \
                    CASE WHEN n <= k.closed THEN n % k.closed_templates ELSE n % k.open_templates END AS slot, \
                    k.now_ms AS now_ms \
                    FROM counter CROSS JOIN bench_params k), \
         dated AS (SELECT s.n, s.started_at, s.now_ms, c.id AS template, c.number AS tnumber, c.started_at AS tstart, \
                   c.updated_at AS tupdated, strftime('%Y', s.started_at / 1000, 'unixepoch') AS year \
                   FROM starts s JOIN bench_templates t ON t.status = s.status AND t.k = s.slot JOIN cases c ON c.id = t.id) \
         SELECT n, template, \
                substr(template, 1, instr(template, '-') - 1) || '-' || year || '-' || printf('%07d', n) AS id, \
                substr(tnumber, 1, instr(tnumber, ' ') - 1) || ' ' || year || '/' || printf('%07d', n) AS number, \
                started_at, MIN(now_ms, started_at + (tupdated - tstart)) AS updated_at, started_at - tstart AS shift \
         FROM dated ORDER BY n",
    ),
    (
        "cases",
        "INSERT INTO cases (id, number, workflow, definition_hash, state, status, outcome, started_by, title, \
         started_at, updated_at, version, wait_key, audit_head, body, forvaltning) \
         SELECT r.id, r.number, c.workflow, c.definition_hash, c.state, c.status, c.outcome, COALESCE(dst.id, c.started_by), \
         c.title, r.started_at, r.updated_at, c.version, c.wait_key, c.audit_head, \
         json_set(c.body, '$.id', r.id, '$.number', r.number, \
                  '$.started_at', strftime('%Y-%m-%dT%H:%M:%fZ', r.started_at / 1000.0, 'unixepoch'), \
                  '$.updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', r.updated_at / 1000.0, 'unixepoch')), \
         c.forvaltning \
         FROM bench_replicas r CROSS JOIN bench_params k JOIN cases c ON c.id = r.template \
         LEFT JOIN bench_people src ON src.id = c.started_by LEFT JOIN bench_people dst ON dst.idx = (src.idx + r.n) % k.people \
         ORDER BY r.n",
    ),
    (
        "audit trails",
        "INSERT INTO audit (case_id, seq, at, actor, channel, what, detail, prev_hash, hash) \
         SELECT r.id, a.seq, a.at + r.shift, a.actor, a.channel, a.what, a.detail, a.prev_hash, a.hash \
         FROM bench_replicas r JOIN audit a ON a.case_id = r.template ORDER BY r.n, a.seq",
    ),
    (
        "participants",
        "INSERT INTO case_people (case_id, who) SELECT r.id, COALESCE(dst.id, p.who) \
         FROM bench_replicas r CROSS JOIN bench_params k JOIN case_people p ON p.case_id = r.template \
         LEFT JOIN bench_people src ON src.id = p.who LEFT JOIN bench_people dst ON dst.idx = (src.idx + r.n) % k.people \
         WHERE true ON CONFLICT DO NOTHING",
    ),
    (
        "assignments",
        "INSERT INTO assignments (case_id, task_id, email, person, deadline) \
         SELECT r.id, a.task_id, COALESCE(dst.email, a.email), COALESCE(dst.id, a.person), a.deadline + r.shift \
         FROM bench_replicas r CROSS JOIN bench_params k JOIN assignments a ON a.case_id = r.template \
         LEFT JOIN bench_people src ON src.id = a.person LEFT JOIN bench_people dst ON dst.idx = (src.idx + r.n) % k.people \
         WHERE true ON CONFLICT DO NOTHING",
    ),
    (
        "timers",
        "INSERT INTO timers (key, case_id, due_at, payload) \
         SELECT replace(t.key, r.template, r.id), r.id, k.now_ms + 30 * 86400000 + (r.n * 7919 + length(t.key)) % (30 * 86400000), \
         replace(t.payload, r.template, r.id) \
         FROM bench_replicas r CROSS JOIN bench_params k JOIN timers t ON t.case_id = r.template",
    ),
];
