//! Crash test: `beslut apply` works through a stream of starts and decisions and is killed
//! with SIGKILL at random moments, then restarted with every line it had not acknowledged.
//! Afterwards every acknowledged command is present exactly once and every case is
//! consistent, on SQLite and on PostgreSQL.

use crate::root;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CASES: usize = 150;

/// Each grant is 5 kr, so all of them fit in the fixture's 1000 kr frame.
const AMOUNT: i64 = 5;

/// A small deterministic generator, so a failing run can be repeated from its printed seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn stream(year: i16) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for i in 1..=CASES {
        let data =
            serde_json::json!({ "rubrik": format!("Ansökan {i}"), "portfolj": "a", "ar": 2026, "belopp": AMOUNT });
        let line = serde_json::json!({ "key": format!("s-{i}"), "start": { "workflow": "bidrag", "data": data, "as": "stina" } });
        lines.push((format!("s-{i}"), line.to_string()));
    }
    for i in 1..=CASES {
        let command = serde_json::json!({ "command": "decide", "task": "t1", "actor": "g1", "action": "bevilja", "comment": null, "form": {} });
        let line =
            serde_json::json!({ "key": format!("d-{i}"), "case": format!("bi-{year}-{i:04}"), "command": command });
        lines.push((format!("d-{i}"), line.to_string()));
    }
    lines
}

struct Outcome {
    runs: usize,
    kills: usize,
}

/// Runs `beslut apply` until every line is acknowledged, killing it at random moments.
fn crash_until_done(dir: &Path, env: &[(&str, String)], seed: u64) -> Outcome {
    let year = jiff::Zoned::now().year();
    let mut remaining = stream(year);
    let mut rng = Lcg(seed);
    let (mut runs, mut kills) = (0, 0);
    while !remaining.is_empty() {
        runs += 1;
        assert!(runs < 200, "no progress after {runs} runs");
        let file = dir.join("stream.jsonl");
        std::fs::write(&file, remaining.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_beslut"))
            .args(["--workflows", "engine/tests/fixtures", "apply", file.to_str().unwrap()])
            .current_dir(root())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let reader = {
            let acked = acked.clone();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    assert_eq!(words.first(), Some(&"ack"), "every line must be acknowledged, got: {line}");
                    acked.lock().unwrap().insert(words[1].to_string());
                }
            })
        };
        std::thread::sleep(Duration::from_millis(5 + rng.below(150)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        if status.success() {
            assert_eq!(acked.lock().unwrap().len(), remaining.len(), "a clean exit acknowledges every line");
        }
        let acked = acked.lock().unwrap();
        remaining.retain(|(key, _)| !acked.contains(key));
    }
    assert!(kills >= 3, "the run must actually be interrupted; only {kills} kills");
    Outcome { runs, kills }
}

/// Checks the database after the crashes, through the binary and the tables.
async fn check(pool: &sqlx::AnyPool, env: &[(&str, String)]) -> (usize, usize) {
    use sqlx::Row;
    let cases: Vec<(String, String, String)> = sqlx::query("SELECT id, status, outcome FROM cases")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(cases.len(), CASES, "every start happened exactly once");
    assert!(cases.iter().all(|(_, status, outcome)| status == "closed" && outcome == "approved"), "{cases:?}");
    let decided: i64 =
        sqlx::query("SELECT COUNT(*) FROM audit WHERE what = 'task.decided'").fetch_one(pool).await.unwrap().get(0);
    let reserved: i64 = sqlx::query("SELECT reserved FROM ledger").fetch_one(pool).await.unwrap().get(0);
    assert_eq!(reserved, CASES as i64 * AMOUNT * 100, "each grant reserved exactly once");
    let verify = Command::new(env!("CARGO_BIN_EXE_beslut"))
        .args(["--workflows", "engine/tests/fixtures", "audit", "verify"])
        .current_dir(root())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let doubled = decided as usize - CASES.min(decided as usize);
    let lost = CASES - (decided as usize).min(CASES);
    (lost, doubled)
}

fn seed() -> u64 {
    let seed = std::env::var("BESLUT_CRASH_SEED").ok().and_then(|s| s.parse().ok());
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    })
}

#[test]
fn killed_at_random_moments_on_sqlite_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("BESLUT_DATA_DIR", data.to_str().unwrap().to_string())];
    let seed = seed();
    let outcome = crash_until_done(dir.path(), &env, seed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (lost, doubled) = runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", data.join("beslut.sqlite3").display());
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        check(&pool, &env).await
    });
    println!(
        "sqlite: seed {seed}, {} commands, {} runs, {} kills, lost {lost}, doubled {doubled}",
        CASES * 2,
        outcome.runs,
        outcome.kills
    );
    assert_eq!((lost, doubled), (0, 0));
}

#[test]
fn killed_at_random_moments_on_postgres_nothing_is_lost_or_doubled() {
    if std::env::var("BESLUT_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("skipping PostgreSQL: BESLUT_TEST_SKIP_POSTGRES=1");
        return;
    }
    let base =
        std::env::var("BESLUT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("beslut_crash_{}_{}", std::process::id(), seed() % 1_000_000);
    let url = format!("{}/{name}", base.rsplit_once('/').expect("URL ends with /DATABASE").0);
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.expect("PostgreSQL (set BESLUT_TEST_SKIP_POSTGRES=1 to skip)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let env = [("BESLUT_DATABASE_URL", url.clone())];
    let seed = seed();
    let outcome = crash_until_done(dir.path(), &env, seed);
    let (lost, doubled) = runtime.block_on(async {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        check(&pool, &env).await
    });
    println!(
        "postgres: seed {seed}, {} commands, {} runs, {} kills, lost {lost}, doubled {doubled}",
        CASES * 2,
        outcome.runs,
        outcome.kills
    );
    assert_eq!((lost, doubled), (0, 0));
}
