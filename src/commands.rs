//! The case commands of the CLI: start, list, show, decide and verify cases against the
//! configured database.

use beslut_engine::diagnostic::Lang;
use beslut_engine::project::Project;
use beslut_engine::runtime::{self, Case, Channel, Command, Party, Status};
use beslut_engine::service::{Engine, Error};
use beslut_engine::store::{self, Store, audit, cases};
use serde_json::{Map, Value};
use std::path::Path;

/// Prints a line; when the reader has gone away (`beslut show … | head`), stops quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
pub(crate) use out;

/// Opens the database and loads the workflows; a broken workflow file is reported, and
/// the valid ones still run.
pub async fn open(target: &crate::config::Config) -> Result<Engine, String> {
    let project =
        Project::load(&target.workflows).map_err(|e| format!("kan inte läsa {}: {e}", target.workflows.display()))?;
    if !project.is_valid() {
        eprint!("{}", project.render(Lang::Sv));
        eprintln!("varning: filer med fel ovan används inte förrän de rättats");
    }
    let store = match &target.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_sqlite(&target.data_dir).await,
    }
    .map_err(|e| format!("databasen kan inte öppnas: {e}"))?;
    let engine = Engine::new(store, project);
    Ok(match fixed_now()? {
        Some(at) => engine.with_clock(std::sync::Arc::new(move || at)),
        None => engine,
    })
}

/// `BESLUT_NOW=2026-07-10T08:00:00Z` makes every command act at that moment: for rehearsing a
/// process and for tests that must not depend on today's date. Never set it in production.
fn fixed_now() -> Result<Option<jiff::Timestamp>, String> {
    match std::env::var("BESLUT_NOW") {
        Ok(text) => text.parse().map(Some).map_err(|e| format!("BESLUT_NOW={text}: {e}")),
        Err(_) => Ok(None),
    }
}

/// A sentence for the person at the terminal.
pub fn describe(error: &Error) -> String {
    use runtime::Error as R;
    match error {
        Error::NoSuchCase(id) => format!("ärendet {id} finns inte"),
        Error::NoSuchWorkflow(w) => format!("arbetsflödet {w} finns inte eller har fel (kör `beslut check`)"),
        Error::Conflict => "ärendet ändrades av någon annan samtidigt; försök igen".into(),
        Error::BadPayload(why) => format!("webhookens innehåll passar inte arbetsflödet: {why}"),
        Error::Store(e) => format!("databasfel: {e}"),
        Error::Unavailable(e) => format!("databasen går inte att nå just nu ({e}); försök igen om en stund"),
        Error::Rejected(R::InvalidData(problems)) => {
            let lines: Vec<String> = problems.iter().map(|p| format!("  {}: {}", p.field, p.message.sv)).collect();
            format!("uppgifterna är inte giltiga:\n{}", lines.join("\n"))
        }
        Error::Rejected(R::AlreadyDecided { by, at, action }) => {
            format!("uppgiften är redan avgjord av {by} {}: {action}", local(*at))
        }
        Error::Rejected(R::NotAssignee(who)) => format!("{who} har inte den här uppgiften"),
        Error::Rejected(R::CommentRequired) => "den här handlingen kräver en kommentar (--comment)".into(),
        Error::Rejected(R::CaseClosed) => "ärendet är avslutat".into(),
        Error::Rejected(R::FrameExceeded { portfolio, year, left }) => {
            format!("ramen för {portfolio} {year} räcker inte: {} kr återstår", left / 100)
        }
        Error::Rejected(other) => format!("ej tillåtet: {other}"),
    }
}

fn read_json(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("{}: ogiltig JSON: {e}", path.display()))?;
    value.as_object().cloned().ok_or_else(|| format!("{}: ska vara ett JSON-objekt {{…}}", path.display()))
}

pub fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("ogiltig JSON: {e}"))?;
    value.as_object().cloned().ok_or_else(|| "ska vara ett JSON-objekt {…}".to_string())
}

/// The party for `--as`: a directory person, or an outside address.
fn party(engine: &Engine, who: &str) -> Result<Party, String> {
    engine
        .party(who)
        .ok_or_else(|| format!("{who} finns inte i katalogen; ange ett id från directory.yaml eller en e-postadress"))
}

pub async fn start(engine: &Engine, workflow: &str, data: &Path, who: &str, key: Option<&str>) -> Result<(), String> {
    let data = read_json(data)?;
    let starter = party(engine, who)?;
    let case = engine.start(workflow, data, starter, Channel::Cli, key).await.map_err(|e| describe(&e))?;
    print_case(engine, &case).await
}

pub async fn list(engine: &Engine, workflow: Option<&str>, state: Option<&str>) -> Result<(), String> {
    let rows = cases::list(&engine.store.pool, workflow, state, 200).await.map_err(|e| e.to_string())?;
    for r in rows {
        let outcome = r.outcome.as_deref().unwrap_or("");
        out!("{:<16} {:<22} {:<28} {:<6} {:<10} {}", r.number, r.workflow, r.state, r.status, outcome, r.title);
    }
    Ok(())
}

pub async fn show(engine: &Engine, id: &str, json: bool) -> Result<(), String> {
    let case = engine.case(id).await.map_err(|e| describe(&e))?;
    if json {
        out!("{}", serde_json::to_string_pretty(&case).map_err(|e| e.to_string())?);
        return Ok(());
    }
    print_case(engine, &case).await
}

async fn print_case(engine: &Engine, case: &Case) -> Result<(), String> {
    let status = match &case.status {
        Status::Open => "öppet".to_string(),
        Status::Closed { outcome, .. } => {
            format!("avslutat: {}", beslut_engine::definition::model::Outcome::from(*outcome).label(Lang::Sv))
        }
    };
    out!("{} ({}) – {}", case.number, case.id, case.workflow);
    out!("tillstånd: {}  status: {status}", case.state);
    for task in case.open_tasks() {
        let who: Vec<String> = task
            .assignees
            .iter()
            .map(|a| match &a.on_behalf_of {
                Some(o) => format!("{} (för {o})", a.party.person.clone().unwrap_or(a.party.email.clone())),
                None => a.party.person.clone().unwrap_or(a.party.email.clone()),
            })
            .collect();
        let deadline = task.deadline.map(|d| format!(", senast {}", local(d))).unwrap_or_default();
        let branch = task.branch.as_deref().map(|b| format!(" [{b}]")).unwrap_or_default();
        out!("öppen uppgift {}: {}{branch} – {}{deadline}", task.id, task.state, who.join(", "));
    }
    let outbox = store::effects::outbox_of(&engine.store.pool, &case.id).await.map_err(|e| e.to_string())?;
    let waiting = outbox.iter().filter(|(_, _, status, _)| status == "pending").count();
    let dead: Vec<String> = outbox
        .iter()
        .filter(|(_, _, status, _)| status == "dead")
        .map(|(id, kind, _, n)| format!("{kind} #{id} efter {n} försök"))
        .collect();
    out!("utskick: {} totalt, {waiting} väntar på leverans", outbox.len());
    if !dead.is_empty() {
        out!("MISSLYCKADE UTSKICK: {}", dead.join(", "));
    }
    out!("historik:");
    for e in audit::entries(&engine.store.pool, &case.id).await.map_err(|e| e.to_string())? {
        let at = store::from_millis(e.at).map(local).unwrap_or_default();
        out!("  {:>3} {at} {:<10} {:<20} {}", e.seq, e.actor, e.what, compact(&e.detail));
    }
    Ok(())
}

/// A moment as people in Sweden read it: `2026-12-14 12:09`.
pub fn local(t: jiff::Timestamp) -> String {
    t.to_zoned(beslut_engine::calendar::stockholm()).strftime("%Y-%m-%d %H:%M").to_string()
}

fn compact(detail: &Value) -> String {
    let text = detail.to_string();
    if text.chars().count() > 120 { format!("{}…", text.chars().take(120).collect::<String>()) } else { text }
}

pub struct Decision<'a> {
    pub case: &'a str,
    pub task: &'a str,
    pub action: &'a str,
    pub who: &'a str,
    pub comment: Option<String>,
    pub form: Map<String, Value>,
    pub key: Option<&'a str>,
}

pub async fn decide(engine: &Engine, d: Decision<'_>) -> Result<(), String> {
    let command = Command::Decide {
        task: d.task.into(),
        actor: d.who.into(),
        action: d.action.into(),
        comment: d.comment,
        form: d.form,
    };
    let case = engine.execute(d.case, command, Channel::Cli, Map::new(), d.key).await.map_err(|e| describe(&e))?;
    print_case(engine, &case).await
}

pub async fn command(engine: &Engine, case: &str, command: Command) -> Result<(), String> {
    let case = engine.execute(case, command, Channel::Cli, Map::new(), None).await.map_err(|e| describe(&e))?;
    print_case(engine, &case).await
}

/// Delivers a signal to the case waiting for it under `key`.
pub async fn signal(engine: &Engine, name: &str, key: &str, payload: Value) -> Result<(), String> {
    let id = cases::waiting_for(&engine.store.pool, name, key).await.map_err(|e| e.to_string())?;
    let Some(id) = id else {
        return Err(format!("inget öppet ärende väntar på signalen {name} med nyckeln {key}"));
    };
    command(engine, &id, Command::Signal { name: name.into(), payload }).await
}

/// Fires the timers due at `at` (default: now), then starts and finishes sub-cases.
pub async fn run_timers(engine: &Engine, at: Option<&str>) -> Result<(), String> {
    let at = match at {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("--at {text}: {e} (skriv t.ex. 2026-12-01T08:00:00Z)"))?,
        None => engine.now(),
    };
    let fired = engine.fire_due_timers(at).await.map_err(|e| describe(&e))?;
    let internal = engine.process_internal().await.map_err(|e| describe(&e))?;
    out!("{fired} tidsgränser utlösta, {internal} delärenden startade eller avslutade");
    Ok(())
}

/// Verifies one case's audit chain, or every case's; true when all are intact.
pub async fn verify(engine: &Engine, id: Option<&str>) -> Result<bool, String> {
    let pool = &engine.store.pool;
    let ids = match id {
        Some(id) => vec![engine.case(id).await.map_err(|e| describe(&e))?.id],
        None => cases::ids(pool).await.map_err(|e| e.to_string())?,
    };
    let mut intact = true;
    for id in &ids {
        let head = audit::remembered_head(pool, id).await.map_err(|e| e.to_string())?;
        let breaks = audit::verify(pool, id, head.as_deref()).await.map_err(|e| e.to_string())?;
        for b in &breaks {
            out!("{id}: post {}: {}", b.seq, b.problem);
        }
        intact &= breaks.is_empty();
    }
    out!(
        "{} ärenden kontrollerade: {}",
        ids.len(),
        if intact { "spårbarheten är obruten" } else { "SPÅRBARHETEN ÄR BRUTEN" }
    );
    Ok(intact)
}

/// One line of a command stream for `beslut apply`.
#[derive(serde::Deserialize)]
struct StreamLine {
    /// The idempotency key: re-applying the line after a crash has no second effect.
    key: String,
    #[serde(default)]
    start: Option<StreamStart>,
    #[serde(default)]
    case: Option<String>,
    #[serde(default)]
    command: Option<Command>,
}

#[derive(serde::Deserialize)]
struct StreamStart {
    workflow: String,
    data: Map<String, Value>,
    #[serde(rename = "as")]
    who: String,
}

/// Applies a stream of commands (JSON lines) in order, printing `ack KEY CASE` after each
/// commit, or `rejected KEY REASON` when the workflow refuses it. Safe to run again on the
/// same file after a crash: every line carries an idempotency key.
pub async fn apply_stream(engine: &Engine, path: &Path) -> Result<bool, String> {
    use std::io::Write;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line: StreamLine = serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        let key = Some(line.key.as_str());
        let result = match (line.start, line.case, line.command) {
            (Some(s), _, _) => {
                let starter = party(engine, &s.who)?;
                engine.start(&s.workflow, s.data, starter, Channel::Cli, key).await
            }
            (None, Some(case), Some(command)) => engine.execute(&case, command, Channel::Cli, Map::new(), key).await,
            _ => return Err(format!("{}:{}: a line needs `start`, or `case` and `command`", path.display(), n + 1)),
        };
        let printed = match result {
            Ok(case) => writeln!(out, "ack {} {}", line.key, case.id),
            Err(Error::Store(e)) => return Err(format!("databasfel: {e}")),
            Err(e) => writeln!(out, "rejected {} {}", line.key, describe(&e).replace('\n', " ")),
        };
        printed.and_then(|_| out.flush()).map_err(|e| e.to_string())?;
    }
    Ok(true)
}
