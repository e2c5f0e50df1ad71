//! `beslut bench`: throughput measured as ratios to this machine's own limits, in one run.
//!
//! Machines here are shared and noisy, so every figure is set against a limit measured in the
//! same run, on the same disk and the same PostgreSQL: the raw rate of single-row durable
//! commits in SQLite (WAL, synchronous=FULL), and of a three-statement transaction in
//! PostgreSQL. Then the engine's durable decisions per second through the service layer (no
//! HTTP), at concurrency 1 and 32, each beside the same decisions' writes alone (applied
//! beforehand, only their rows committed: the database's share); HTTP approvals through
//! `beslut serve` as a child process ([`http`]); and the scale run ([`scale`]): the server on
//! a million closed and a hundred thousand open cases ([`seed`], [`replicate`]), and
//! `beslut check` on a thousand files. The results go to a table and to `BENCHMARKS.md`.
//!
//! Email delivery ([`email`]) renders and sends real task emails to a local SMTP server.

mod email;
mod http;
mod replicate;
mod scale;
mod seed;
mod server;

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
    /// Decisions in the HTTP closed loop (the open loop sends half as many).
    pub http_decisions: usize,
    /// Closed and open cases in the scale run's database.
    pub scale_closed: usize,
    pub scale_open: usize,
    /// Workflow files `beslut check` reads in the scale run.
    pub check_files: usize,
    /// Task emails queued and sent in the email measurement.
    pub emails: usize,
    pub out: PathBuf,
    /// The sections to run; all when empty.
    pub only: Vec<Section>,
}

/// A part of the run that can be asked for alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Engine,
    Http,
    Email,
    Scale,
}

impl Options {
    fn wants(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }
}

/// One line of the results.
pub(crate) struct Figure {
    pub what: String,
    /// The measured value, in `unit`.
    pub value: f64,
    pub unit: &'static str,
    pub target: Target,
    /// Anything else worth reading beside the figure (latencies, sizes).
    pub note: String,
}

/// What a figure is judged against.
pub(crate) enum Target {
    /// A limit itself, or a figure recorded without a target.
    None,
    /// At least `ratio` times the limit `name`, measured in the same run at `limit`.
    Ratio { name: String, limit: f64, ratio: f64 },
    /// At least this many `unit`.
    AtLeast(f64),
    /// At most this many `unit`.
    AtMost(f64),
}

impl Figure {
    pub fn limit(what: impl Into<String>, per_second: f64) -> Figure {
        Figure { what: what.into(), value: per_second, unit: "/s", target: Target::None, note: "(the limit)".into() }
    }

    pub fn new(what: impl Into<String>, value: f64, unit: &'static str, target: Target) -> Figure {
        Figure { what: what.into(), value, unit, target, note: String::new() }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Figure {
        self.note = note.into();
        self
    }

    /// Whether the target is met; a figure without one always is.
    pub fn met(&self) -> bool {
        match &self.target {
            Target::None => true,
            Target::Ratio { limit, ratio, .. } => self.value / limit >= *ratio,
            Target::AtLeast(v) => self.value >= *v,
            Target::AtMost(v) => self.value <= *v,
        }
    }
}

pub fn command(options: &Options) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(run(options))
}

/// Prints which step runs, for a person watching a long run.
pub(crate) fn step(what: &str) {
    eprintln!("beslut bench: {what} …");
}

async fn run(options: &Options) -> Result<bool, String> {
    std::fs::create_dir_all(&options.data_dir).map_err(|e| format!("{}: {e}", options.data_dir.display()))?;
    let mut figures = Vec::new();
    let raw_sqlite = engine_figures(options, &mut figures).await?;
    if options.wants(Section::Http) {
        figures.extend(http::figures(options, raw_sqlite).await?);
    }
    if options.wants(Section::Email) {
        figures.extend(email::figures(options, raw_sqlite).await?);
    }
    if options.wants(Section::Scale) {
        figures.extend(scale::figures(options).await?);
    }
    let report = report(&figures, options);
    println!("{}", table(&figures));
    std::fs::write(&options.out, report).map_err(|e| format!("{}: {e}", options.out.display()))?;
    eprintln!("beslut: resultaten finns i {}", options.out.display());
    Ok(figures.iter().all(Figure::met))
}

/// The raw limits and the engine's decisions; returns the raw SQLite commit rate, which later
/// figures are compared with.
async fn engine_figures(options: &Options, figures: &mut Vec<Figure>) -> Result<f64, String> {
    step("SQLite: raw single-row durable commits");
    let (raw_sqlite, raw_cost) = sqlite_raw(&options.data_dir, options.seconds).await?;
    let note = format!(
        "(the limit) {} µs CPU and {:.1} KiB written per commit",
        raw_cost.cpu.as_micros(),
        raw_cost.bytes as f64 / 1024.0
    );
    figures.push(Figure::limit("SQLite raw single-row commits, 1 client", raw_sqlite).with_note(note));
    if !options.wants(Section::Engine) {
        return Ok(raw_sqlite);
    }
    for concurrency in [1, 32] {
        step(&format!("engine on SQLite, concurrency {concurrency}"));
        let store = fresh_sqlite(&options.data_dir, &format!("engine-{concurrency}")).await?;
        let (rate, cost) = engine_decisions(store, &options.workflows, options.decisions, concurrency).await?;
        let ratio = if concurrency == 1 { 0.7 } else { 2.0 };
        figures.push(
            Figure::new(
                format!("engine decisions on SQLite, concurrency {concurrency}"),
                rate,
                "/s",
                Target::Ratio { name: "SQLite raw".into(), limit: raw_sqlite, ratio },
            )
            .with_note(cost_note(cost)),
        );
        // With one writer, 32 concurrent decisions share commits about 32 at a time.
        step(&format!("SQLite: the same writes alone, {concurrency} per commit"));
        let store = fresh_sqlite(&options.data_dir, &format!("writes-{concurrency}")).await?;
        let floor = writes_alone(store, &options.workflows, options.decisions, concurrency, 1).await?;
        figures.push(floor_figure(format!("SQLite, {concurrency} per commit, 1 writer"), floor, rate));
    }
    let Some(url) = &options.postgres else { return Ok(raw_sqlite) };
    let url = fresh_postgres(url).await?;
    step("PostgreSQL: raw 3-statement transactions, 8 clients");
    let raw_pg = postgres_raw(&url, 8, options.seconds).await?;
    figures.push(Figure::limit("PostgreSQL raw 3-statement transactions, 8 clients", raw_pg));
    for concurrency in [1, 8, 32] {
        step(&format!("engine on PostgreSQL, concurrency {concurrency}"));
        let store = Store::connect(&url).await.map_err(|e| e.to_string())?;
        let (rate, cost) = engine_decisions(store, &options.workflows, options.decisions, concurrency).await?;
        let target = if concurrency == 8 {
            Target::Ratio { name: "PostgreSQL raw, 8 clients".into(), limit: raw_pg, ratio: 1.0 }
        } else {
            Target::None
        };
        let what = format!("engine decisions on PostgreSQL, concurrency {concurrency}");
        figures.push(Figure::new(what, rate, "/s", target).with_note(cost_note(cost)));
        if concurrency == 8 {
            // Eight decisions at a time can share commits in these ways; the best of them bounds
            // what any grouping of the engine's could reach.
            for (per_commit, clients) in [(1, 8), (4, 2), (8, 1)] {
                let clients_word = if clients == 1 { "client" } else { "clients" };
                let how = format!("PostgreSQL, {per_commit} per commit, {clients} {clients_word}");
                step(&format!("PostgreSQL: the same writes alone, {per_commit} per commit, {clients} {clients_word}"));
                let store = Store::connect(&url).await.map_err(|e| e.to_string())?;
                let floor = writes_alone(store, &options.workflows, options.decisions, per_commit, clients).await?;
                figures.push(floor_figure(how, floor, rate));
            }
        }
    }
    Ok(raw_sqlite)
}

/// The rate of a decision's writes alone, and how much of it the engine reached.
fn floor_figure(how: String, (rate, cost): (f64, Cost), engine: f64) -> Figure {
    let note = format!(
        "the rows each decision writes, applied beforehand; {}; the engine's decisions reached {:.2} of this rate",
        cost_note(cost),
        engine / rate.max(1e-9)
    );
    Figure::new(format!("a decision's writes alone on {how}"), rate, "/s", Target::None).with_note(note)
}

/// A new SQLite file under `dir`, named `name`.
async fn fresh_sqlite(dir: &Path, name: &str) -> Result<Store, String> {
    let folder = dir.join(name);
    let _ = std::fs::remove_dir_all(&folder);
    Store::open_sqlite(&folder).await.map_err(|e| e.to_string())
}

async fn sqlite_raw(dir: &Path, seconds: f64) -> Result<(f64, Cost), String> {
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
    let cost = Cost::now();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed().as_secs_f64() < seconds {
        sqlx::query("INSERT INTO t (v) VALUES ($1)").bind("x").execute(&pool).await.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok((n as f64 / started.elapsed().as_secs_f64(), Cost::per(cost, n)))
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

/// CPU time (user and system, all threads) this process has used so far, from /proc.
pub(crate) fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks of 1/100 s.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Bytes this process has handed to write calls so far (`wchar` in /proc/self/io): with SQLite
/// these are the WAL frames and checkpoints, a page per changed page.
pub(crate) fn bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// What a decision costs in CPU and in bytes written, neither of which depends on how busy
/// the machine is.
fn cost_note(cost: Cost) -> String {
    format!("{} µs CPU and {:.1} KiB written per decision", cost.cpu.as_micros(), cost.bytes as f64 / 1024.0)
}

/// The cost of one decision (or one raw commit), averaged.
#[derive(Clone, Copy)]
struct Cost {
    cpu: Duration,
    bytes: u64,
}

impl Cost {
    fn now() -> Cost {
        Cost { cpu: cpu_time(), bytes: bytes_written() }
    }

    /// The average since `start` over `n` operations.
    fn per(start: Cost, n: usize) -> Cost {
        let end = Cost::now();
        let n = n.max(1);
        Cost {
            cpu: end.cpu.saturating_sub(start.cpu) / n as u32,
            bytes: end.bytes.saturating_sub(start.bytes) / n as u64,
        }
    }
}

/// An open task to decide: case id, task id and the person holding it.
type Work = (String, String, String);

/// Starts `count` funding applications (not timed); returns each one's first task.
async fn start_work(engine: &Engine, count: usize) -> Result<Vec<Work>, String> {
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
    Ok(work)
}

/// The decision every engine measurement makes: ask the applicant for more, with a comment.
fn decision((_, task, holder): &Work) -> Command {
    Command::Decide {
        task: task.clone(),
        actor: holder.clone(),
        action: "komplettering".into(),
        comment: Some("Ange kostnaden per år.".into()),
        form: Map::new(),
    }
}

/// Starts `count` cases (not timed), then decides one task in each from `concurrency` workers:
/// durable decisions per second, each acknowledged only after its commit, and the CPU time
/// this process spent per decision.
async fn engine_decisions(
    store: Store,
    workflows: &Path,
    count: usize,
    concurrency: usize,
) -> Result<(f64, Cost), String> {
    let engine = engine_on(store, workflows)?;
    let work = start_work(&engine, count).await?;
    timed(work, count, concurrency, move |w| {
        let engine = engine.clone();
        async move {
            engine.execute(&w.0, decision(&w), Channel::Api, Map::new(), None).await.map_err(|e| e.to_string())?;
            Ok(())
        }
    })
    .await
}

/// The same decisions as [`engine_decisions`], applied beforehand (not timed) in groups of
/// `per_commit`; then `clients` workers commit one group per transaction and nothing else. The
/// database's share of a decision: its rate is what the engine would reach if all it did
/// besides were free.
async fn writes_alone(
    store: Store,
    workflows: &Path,
    count: usize,
    per_commit: usize,
    clients: usize,
) -> Result<(f64, Cost), String> {
    let engine = engine_on(store, workflows)?;
    let work = start_work(&engine, count).await?;
    let mut prepared = Vec::new();
    for group in work.chunks(per_commit.max(1)) {
        let commands = group.iter().map(|w| (w.0.clone(), decision(w))).collect();
        prepared.push(engine.prepare_writes(commands).await.map_err(|e| e.to_string())?);
    }
    timed(prepared, count, clients, move |p| {
        let engine = engine.clone();
        async move { engine.commit_prepared(p).await.map_err(|e| e.to_string()) }
    })
    .await
}

/// An engine on `store` with the workflows folder `workflows`.
fn engine_on(store: Store, workflows: &Path) -> Result<Arc<Engine>, String> {
    let project = Project::load(workflows).map_err(|e| e.to_string())?;
    Ok(Arc::new(Engine::new(store, project)))
}

/// Runs `op` on every item from `workers` concurrent workers, each taking the next item when
/// done with its last: `decisions` over the time taken, and the cost of each decision.
async fn timed<T, F, Fut>(items: Vec<T>, decisions: usize, workers: usize, op: F) -> Result<(f64, Cost), String>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let queue = Arc::new(std::sync::Mutex::new(items));
    let op = Arc::new(op);
    let cost = Cost::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (queue, op) = (queue.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(item) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                    return Ok::<(), String>(());
                };
                op(item).await?;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    Ok((decisions as f64 / elapsed.as_secs_f64(), Cost::per(cost, decisions)))
}

fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| measurement | figure | compared with | ratio | target | met | notes |\n|---|---:|---|---:|---:|---|---|\n",
    );
    for f in figures {
        let value = format!("{} {}", round(f.value), f.unit).replace(" /s", "/s");
        let met = if f.met() { "yes" } else { "**no**" };
        let (against, ratio, target, met) = match &f.target {
            Target::None => (String::new(), String::new(), String::new(), ""),
            Target::Ratio { name, limit, ratio } => {
                (format!("{name} ({}/s)", round(*limit)), format!("{:.2}", f.value / limit), format!("≥ {ratio}"), met)
            }
            Target::AtLeast(v) => (String::new(), String::new(), format!("≥ {} {}", round(*v), f.unit), met),
            Target::AtMost(v) => (String::new(), String::new(), format!("≤ {} {}", round(*v), f.unit), met),
        };
        out.push_str(&format!("| {} | {value} | {against} | {ratio} | {target} | {met} | {} |\n", f.what, f.note));
    }
    out
}

/// A figure as people read it: whole numbers from 100 up, else three significant digits.
fn round(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
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
         on the same disk (`{dir}`) and the same PostgreSQL server.\n\nReproduce:\n\n```sh\ncargo run --release -- bench{postgres} --seconds {s} --decisions {d} --http-decisions {h} --emails {e} \
         --closed-cases {closed} --open-cases {open} --check-files {files}\n```\n\n{table}\n\
         Engine decisions each commit the case, its audit entries, its outbox rows (the emails and the `task.decided` \
         event) and its timers in one transaction, and are acknowledged only after that commit. Concurrent decisions \
         share a commit (group commit: one lane for SQLite, two by case id for PostgreSQL). The CPU and bytes \
         written per decision are this process's own (`/proc/self/stat`, `/proc/self/io`), which, unlike the rates, \
         do not depend on how busy the machine is. A decision's writes alone are the same decisions applied \
         beforehand (not timed) and then only their rows written and committed: the database's share of a decision, \
         which bounds what the engine could reach if all it does besides were free.\n\n\
         HTTP approvals go through `beslut serve` as a child process on SQLite, from 64 clients with one keep-alive \
         connection each, on a load generator pinned to another CPU than the server's. Email delivery renders real \
         task emails and hands them to a local SMTP server over pooled connections. The scale run copies the cases \
         the scenario files leave (replayed through the engine) into the database in SQL; the lists are timed after a \
         warm-up, one request at a time.\n{analysis}",
        date = now.strftime("%Y-%m-%d %H:%M %Z"),
        machine = machine(),
        dir = options.data_dir.display(),
        s = options.seconds,
        d = options.decisions,
        h = options.http_decisions,
        closed = options.scale_closed,
        open = options.scale_open,
        files = options.check_files,
        e = options.emails,
        table = table(figures),
        analysis = analysis(),
    )
}

/// The reading of the figures, written by hand in `docs/benchmarks-analysis.md`: why a missed
/// target is missed, as measured. A run from another folder leaves it out.
fn analysis() -> String {
    let path = std::path::Path::new("docs/benchmarks-analysis.md");
    std::fs::read_to_string(path).map(|text| format!("\n{text}")).unwrap_or_default()
}
