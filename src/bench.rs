//! `beslut bench`: throughput measured as ratios to this machine's own limits, in one run.
//!
//! Machines here are shared and noisy, so every figure is set against a limit measured in the
//! same run, on the same disk and the same PostgreSQL: the raw rate of single-row durable
//! commits in SQLite (WAL, synchronous=FULL), and of a three-statement transaction in
//! PostgreSQL. Then the engine's durable decisions per second through the service layer (no
//! HTTP), at concurrency 1 and 32. The results go to a table and to `BENCHMARKS.md`.
//!
//! Still to come (issue 9): HTTP approvals through `beslut serve`, email delivery, and the
//! scale run with a million closed cases.

use beslut_engine::project::Project;
use beslut_engine::runtime::{Channel, Command};
use beslut_engine::service::Engine;
use beslut_engine::store::Store;
use serde_json::{Map, Value, json};
use sqlx::Executor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What `beslut bench` is asked to do.
pub struct Options {
    pub workflows: PathBuf,
    /// Where the SQLite files go: the disk being measured.
    pub data_dir: PathBuf,
    /// A PostgreSQL server; a database `beslut_bench` is made afresh on it.
    pub postgres: Option<String>,
    /// How long each raw limit is measured.
    pub seconds: f64,
    /// Decisions per engine measurement.
    pub decisions: usize,
    pub out: PathBuf,
}

/// One line of the results.
struct Figure {
    what: String,
    per_second: f64,
    /// The limit it is compared with, and the target ratio.
    against: Option<(String, f64, f64)>,
}

pub fn command(options: &Options) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(run(options))
}

fn step(n: usize, of: usize, what: &str) {
    eprintln!("[{n}/{of}] {what} …");
}

async fn run(options: &Options) -> Result<bool, String> {
    std::fs::create_dir_all(&options.data_dir).map_err(|e| format!("{}: {e}", options.data_dir.display()))?;
    let steps = if options.postgres.is_some() { 6 } else { 3 };
    let mut figures = Vec::new();

    step(1, steps, "SQLite: raw single-row durable commits");
    let raw_sqlite = sqlite_raw(&options.data_dir, options.seconds).await?;
    figures.push(Figure {
        what: "SQLite raw single-row commits, 1 client".into(),
        per_second: raw_sqlite,
        against: None,
    });
    for (n, concurrency) in [(2, 1), (3, 32)] {
        step(n, steps, &format!("engine on SQLite, concurrency {concurrency}"));
        let store = fresh_sqlite(&options.data_dir, &format!("engine-{concurrency}")).await?;
        let rate = engine_decisions(store, &options.workflows, options.decisions, concurrency).await?;
        let target = if concurrency == 1 { 0.7 } else { 2.0 };
        figures.push(Figure {
            what: format!("engine decisions on SQLite, concurrency {concurrency}"),
            per_second: rate,
            against: Some(("SQLite raw".into(), raw_sqlite, target)),
        });
    }
    if let Some(url) = &options.postgres {
        let url = fresh_postgres(url).await?;
        step(4, steps, "PostgreSQL: raw 3-statement transactions, 8 clients");
        let raw_pg = postgres_raw(&url, 8, options.seconds).await?;
        figures.push(Figure {
            what: "PostgreSQL raw 3-statement transactions, 8 clients".into(),
            per_second: raw_pg,
            against: None,
        });
        for (n, concurrency) in [(5, 8), (6, 32)] {
            step(n, steps, &format!("engine on PostgreSQL, concurrency {concurrency}"));
            let store = Store::connect(&url).await.map_err(|e| e.to_string())?;
            let rate = engine_decisions(store, &options.workflows, options.decisions, concurrency).await?;
            figures.push(Figure {
                what: format!("engine decisions on PostgreSQL, concurrency {concurrency}"),
                per_second: rate,
                against: (concurrency == 8).then(|| ("PostgreSQL raw, 8 clients".into(), raw_pg, 1.0)),
            });
        }
    }
    let report = report(&figures, options);
    println!("{}", table(&figures));
    std::fs::write(&options.out, report).map_err(|e| format!("{}: {e}", options.out.display()))?;
    eprintln!("beslut: resultaten finns i {}", options.out.display());
    Ok(figures.iter().all(|f| f.against.as_ref().is_none_or(|(_, limit, target)| f.per_second / limit >= *target)))
}

/// A new SQLite file under `dir`, named `name`.
async fn fresh_sqlite(dir: &Path, name: &str) -> Result<Store, String> {
    let folder = dir.join(name);
    let _ = std::fs::remove_dir_all(&folder);
    Store::open_sqlite(&folder).await.map_err(|e| e.to_string())
}

async fn sqlite_raw(dir: &Path, seconds: f64) -> Result<f64, String> {
    let path = dir.join("raw.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .map_err(|e| e.to_string())?;
    pool.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
    )
    .await
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        sqlx::query("INSERT INTO t (v) VALUES ($1)").bind("x").execute(&pool).await.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Makes the database `beslut_bench` afresh on the server of `url`; returns its URL.
async fn fresh_postgres(url: &str) -> Result<String, String> {
    sqlx::any::install_default_drivers();
    let admin =
        sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.map_err(|e| format!("{url}: {e}"))?;
    admin.execute("DROP DATABASE IF EXISTS beslut_bench").await.map_err(|e| e.to_string())?;
    admin.execute("CREATE DATABASE beslut_bench").await.map_err(|e| e.to_string())?;
    let base = url.rsplit_once('/').map_or(url, |(server, _)| server);
    Ok(format!("{base}/beslut_bench"))
}

async fn postgres_raw(url: &str, clients: usize, seconds: f64) -> Result<f64, String> {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(clients as u32)
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    pool.execute(
        "CREATE TABLE raw_counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); \
         CREATE TABLE raw_a (id BIGSERIAL PRIMARY KEY, v TEXT); CREATE TABLE raw_b (id BIGSERIAL PRIMARY KEY, v TEXT); \
         INSERT INTO raw_counter SELECT g, 0 FROM generate_series(1, 64) g",
    )
    .await
    .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for client in 0..clients {
        let (pool, done) = (pool.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while started.elapsed().as_secs_f64() < seconds {
                let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
                sqlx::query("UPDATE raw_counter SET n = n + 1 WHERE id = $1")
                    .bind(client as i64 + 1)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("INSERT INTO raw_a (v) VALUES ($1)")
                    .bind("x")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("INSERT INTO raw_b (v) VALUES ($1)")
                    .bind("x")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }));
    }
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// A funding application whose first task goes to the Tillgänglighet group.
fn application() -> Map<String, Value> {
    let data = json!({
        "rubrik": "Mätning", "projektagare": "tomas-lindberg", "forvaltning": "sbf", "malbidrag": "Snabbare",
        "portfolj": "tillganglighet", "belopp": 100000, "budgetar": 2026, "kategori": "differentierande",
        "genomforandeplan": "Q1", "nyttorealisering": "Halverad tid", "systemagare": "Byggnadsnämnden",
        "systemagare_accepterat": true, "lopttid_manader": 9
    });
    data.as_object().cloned().unwrap_or_default()
}

/// Starts `count` cases (not timed), then decides one task in each from `concurrency` workers:
/// durable decisions per second, each acknowledged only after its commit.
async fn engine_decisions(store: Store, workflows: &Path, count: usize, concurrency: usize) -> Result<f64, String> {
    let project = Project::load(workflows).map_err(|e| e.to_string())?;
    let engine = Arc::new(Engine::new(store, project));
    let starter = engine.party("tomas-lindberg").ok_or("tomas-lindberg is not in the directory")?;
    let mut work = Vec::with_capacity(count);
    for _ in 0..count {
        let case = engine
            .start("finansieringsansokan", application(), starter.clone(), Channel::Api, None)
            .await
            .map_err(|e| e.to_string())?;
        let task = case.tasks.first().ok_or("the case has no task")?;
        let holder = task.assignees.first().and_then(|a| a.party.person.clone()).ok_or("the task has no holder")?;
        work.push((case.id.clone(), task.id.clone(), holder));
    }
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (engine, work, next) = (engine.clone(), work.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((case, task, holder)) = work.get(i) else { return Ok::<(), String>(()) };
                let command = Command::Decide {
                    task: task.clone(),
                    actor: holder.clone(),
                    action: "komplettering".into(),
                    comment: Some("Ange kostnaden per år.".into()),
                    form: Map::new(),
                };
                engine.execute(case, command, Channel::Api, Map::new(), None).await.map_err(|e| e.to_string())?;
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    Ok(count as f64 / elapsed.as_secs_f64())
}

fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| measurement | per second | compared with | ratio | target | met |\n|---|---:|---|---:|---:|---|\n",
    );
    for f in figures {
        match &f.against {
            Some((name, limit, target)) => {
                let ratio = f.per_second / limit;
                let met = if ratio >= *target { "yes" } else { "**no**" };
                out.push_str(&format!(
                    "| {} | {:.0} | {name} ({limit:.0}/s) | {ratio:.2} | ≥ {target} | {met} |\n",
                    f.what, f.per_second
                ));
            }
            None if f.what.contains(" raw ") => {
                out.push_str(&format!("| {} | {:.0} | (the limit) | | | |\n", f.what, f.per_second))
            }
            None => out.push_str(&format!("| {} | {:.0} | – | | | |\n", f.what, f.per_second)),
        }
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0) / 1024 / 1024)
        })
        .unwrap_or(0);
    format!("{cores} cores ({cpu}), {memory} GiB memory")
}

fn report(figures: &[Figure], options: &Options) -> String {
    let now = jiff::Zoned::now().with_time_zone(beslut_engine::calendar::stockholm());
    let postgres = if options.postgres.is_some() { " --postgres URL" } else { "" };
    format!(
        "# Benchmarks\n\nMeasured {date} on {machine}, with a release build. Every ratio is to a limit measured in the same run, \
         on the same disk (`{dir}`) and the same PostgreSQL server.\n\nReproduce:\n\n```sh\ncargo run --release -- bench{postgres} --seconds {s} --decisions {d}\n```\n\n{table}\n\
         Engine decisions each commit the case, its audit entries, its outbox rows (the emails and the `task.decided` \
         event) and its timers in one transaction, and are acknowledged only after that commit.\n\n\
         Not yet measured (issue 9): HTTP approvals through `beslut serve`, email delivery to a local SMTP server, and \
         the scale run with 1,000,000 closed and 100,000 open cases. Group commit is not built yet, so the SQLite \
         target at concurrency 32 (2 × the raw commit rate) cannot be met by one commit per decision.\n",
        date = now.strftime("%Y-%m-%d %H:%M %Z"),
        machine = machine(),
        dir = options.data_dir.display(),
        s = options.seconds,
        d = options.decisions,
        table = table(figures),
    )
}
