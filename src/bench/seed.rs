//! Real cases for the scale run: every scenario file under `workflows/tests/` replayed through
//! the engine onto a store, on a clock that moves as the scenario says (timers fire when due).
//! What the engine writes (case rows, bodies, audit trails, assignments, timers) is what the
//! scale run then copies a million times, so the copies are as large and as varied as real
//! cases of the three workflows, closed and open.
//!
//! The scenarios' own absences and extra portfolios are not applied (the directory is the
//! folder's), so a few steps are refused; a refused step changes nothing and the story goes on.

use crate::scenario::file::{self, Action, Step};
use beslut_engine::project::Project;
use beslut_engine::runtime::{Channel, Command, Waiting, assign};
use beslut_engine::service::{Engine, Error};
use beslut_engine::store::{Store, millis};
use jiff::Timestamp;
use serde_json::Map;
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The engine's clock, moved by the scenarios.
type Clock = Arc<Mutex<Timestamp>>;

fn now(clock: &Clock) -> Timestamp {
    *clock.lock().unwrap_or_else(|p| p.into_inner())
}

fn set(clock: &Clock, at: Timestamp) {
    *clock.lock().unwrap_or_else(|p| p.into_inner()) = at;
}

/// Replays every scenario of `workflows` onto `store`; returns how many cases were started.
pub(super) async fn replay(store: Store, workflows: &Path) -> Result<usize, String> {
    let project = Project::load(workflows).map_err(|e| format!("{}: {e}", workflows.display()))?;
    let clock: Clock = Arc::new(Mutex::new(Timestamp::now()));
    let reading = clock.clone();
    let engine = Engine::new(store, project).with_clock(Arc::new(move || now(&reading)));
    let mut started = 0;
    for path in scenario_files(&workflows.join("tests"))? {
        let (scenario, report, _) =
            file::read(&path, &engine.project()).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(scenario) = scenario.filter(|_| !report.has_errors()) else { continue };
        set(&clock, scenario.at);
        let mut cases: Vec<(String, String)> = Vec::new();
        for step in &scenario.steps {
            match act(&engine, &clock, &mut cases, step).await {
                Ok(()) | Err(Error::Rejected(_) | Error::NoSuchCase(_)) => {}
                Err(e) => return Err(format!("{}: {}: {e}", path.display(), step.action.describe())),
            }
            engine.process_internal().await.map_err(|e| e.to_string())?;
        }
        started += cases.len();
    }
    Ok(started)
}

/// The `.yaml` files one folder below `tests`, sorted.
fn scenario_files(tests: &Path) -> Result<Vec<PathBuf>, String> {
    let read = |dir: &Path| std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()));
    let mut files = Vec::new();
    for folder in read(tests)?.flatten().filter(|e| e.path().is_dir()) {
        files.extend(
            read(&folder.path())?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yaml")),
        );
    }
    files.sort();
    Ok(files)
}

/// Carries out one step of a scenario on the engine.
async fn act(engine: &Engine, clock: &Clock, cases: &mut Vec<(String, String)>, step: &Step) -> Result<(), Error> {
    if let Action::Start { name, workflow, by, data } = &step.action {
        let starter = engine.party(by).ok_or_else(|| Error::NoSuchCase(by.clone()))?;
        let case = engine.start(workflow, data.clone(), starter, Channel::Api, None).await?;
        cases.push((name.clone(), case.id));
        return Ok(());
    }
    let named = step.case.as_ref().map(|n| &n.name);
    let found = cases.iter().rev().find(|(name, _)| named.is_none_or(|n| n == name));
    let Some((_, case)) = found.cloned() else { return Ok(()) };
    match &step.action {
        Action::Decide { action, by, form, comment, .. } => {
            let command = |task: String| Command::Decide {
                task,
                actor: by.clone(),
                action: action.clone(),
                comment: comment.clone(),
                form: form.clone(),
            };
            on_held_task(engine, &case, by, command).await
        }
        Action::Delegate { to, by, comment, .. } => {
            let command =
                |task: String| Command::Delegate { task, actor: by.clone(), to: to.clone(), comment: comment.clone() };
            on_held_task(engine, &case, by, command).await
        }
        Action::Withdraw { by, comment } => {
            let command = Command::Withdraw { actor: by.clone(), comment: comment.clone() };
            engine.execute(&case, command, Channel::Web, Map::new(), None).await.map(drop)
        }
        Action::Advance(duration) => advance(engine, clock, assign::after(now(clock), *duration)).await,
        Action::AdvanceTo(at) => advance(engine, clock, *at).await,
        Action::Signal { name, data } => {
            let command = Command::Signal { name: name.clone(), payload: data.clone() };
            engine.execute(&case, command, Channel::Webhook, Map::new(), None).await.map(drop)
        }
        Action::Answer { ok, response } => {
            let Some(Waiting::Call { request_id }) = engine.case(&case).await?.waiting else { return Ok(()) };
            let command = Command::CallAnswered { request_id, ok: *ok, response: response.clone() };
            engine.execute(&case, command, Channel::Webhook, Map::new(), None).await.map(drop)
        }
        Action::Start { .. } | Action::Expect(_) => Ok(()),
    }
}

/// Sends `command` for each open task `who` holds until one is accepted (a refused command
/// changes nothing, so trying the next is safe).
async fn on_held_task(
    engine: &Engine,
    case: &str,
    who: &str,
    command: impl Fn(String) -> Command,
) -> Result<(), Error> {
    let loaded = engine.case(case).await?;
    let held: Vec<String> =
        loaded.open_tasks().filter(|t| t.assignment_of(who).is_some()).map(|t| t.id.clone()).collect();
    let mut last = Ok(());
    for task in held {
        last = engine.execute(case, command(task), Channel::EmailLink, Map::new(), None).await.map(drop);
        if last.is_ok() {
            break;
        }
    }
    last
}

/// Moves the clock to `to`, firing each timer at the moment it is due, in order. A timer
/// that fails stays leased and is not looked at again.
async fn advance(engine: &Engine, clock: &Clock, to: Timestamp) -> Result<(), Error> {
    for _ in 0..10_000 {
        let row = sqlx::query(
            "SELECT MIN(due_at) FROM timers WHERE due_at <= $1 AND (locked_until IS NULL OR locked_until < $2)",
        )
        .bind(millis(to))
        .bind(millis(now(clock)))
        .fetch_one(&engine.store.pool)
        .await
        .map_err(|e| Error::Store(e.into()))?;
        let Some(due) = row.get::<Option<i64>, _>(0) else { break };
        let at = Timestamp::from_millisecond(due).unwrap_or(to).max(now(clock));
        set(clock, at);
        match engine.fire_due_timers(at).await {
            Ok(_) | Err(Error::Rejected(_)) => {}
            Err(e) => return Err(e),
        }
        engine.process_internal().await?;
    }
    set(clock, to.max(now(clock)));
    Ok(())
}
