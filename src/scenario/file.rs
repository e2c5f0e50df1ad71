//! Scenario files: read from YAML into steps, with every mistake reported like a workflow
//! error (file, line, column, and how to fix it). Names are checked against the workflow and
//! the directory here, so that a misspelt person or action is a file error with a suggestion,
//! not a confusing failure halfway through a story.

use beslut_engine::definition::model::{Definition, StateKind};
use beslut_engine::definition::reader::{self, Obj};
use beslut_engine::diagnostic::{Msg, Report, suggest};
use beslut_engine::duration::Duration;
use beslut_engine::msg;
use beslut_engine::project::Project;
use beslut_engine::runtime::OutcomeId;
use beslut_engine::yaml::{self, Node, Pos, Value};
use jiff::Timestamp;
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

/// Where a story starts when the file does not say: Monday 2 March 2026, 09:00 in Stockholm.
pub const DEFAULT_START: &str = "2026-03-02 09:00";

/// The reasons a step may be expected to be refused for (the API's problem codes).
pub const REFUSALS: [&str; 11] = [
    "frame-exceeded",
    "comment-required",
    "not-assignee",
    "no-such-action",
    "invalid-data",
    "task-closed",
    "case-closed",
    "not-waiting",
    "already-decided",
    "not-allowed",
    "no-assignee",
];

const OUTCOMES: [(&str, Option<OutcomeId>); 6] = [
    ("approved", Some(OutcomeId::Approved)),
    ("rejected", Some(OutcomeId::Rejected)),
    ("withdrawn", Some(OutcomeId::Withdrawn)),
    ("completed", Some(OutcomeId::Completed)),
    ("cancelled", Some(OutcomeId::Cancelled)),
    ("open", None),
];

const KINDS: [&str; 7] =
    ["task_assigned", "reminder", "escalation", "delegated", "task_closed", "case_decided", "custom"];

/// A name as written, and where.
#[derive(Clone, Debug)]
pub struct Named {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub path: PathBuf,
    /// The path as shown in reports.
    pub shown: String,
    pub source: String,
    pub name: String,
    pub workflow: String,
    pub at: Timestamp,
    pub absences: Vec<Absence>,
    /// Portfolios added for this story (one the council has just decided, say), written as in
    /// `portfolios.yaml`.
    pub portfolios: Vec<beslut_engine::portfolios::Portfolio>,
    pub reserved: Vec<Reserved>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug)]
pub struct Absence {
    pub person: String,
    pub from: jiff::civil::Date,
    pub to: jiff::civil::Date,
    pub substitute: String,
}

#[derive(Clone, Debug)]
pub struct Reserved {
    pub ledger: String,
    pub portfolio: String,
    pub year: i32,
    /// Kronor.
    pub amount: i64,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub pos: Pos,
    /// The case the step acts on, when not the one started last.
    pub case: Option<Named>,
    pub action: Action,
    /// The step must be refused with this code.
    pub refused: Option<Named>,
}

#[derive(Clone, Debug)]
pub enum Action {
    Start { name: String, workflow: String, by: String, data: Map<String, Json> },
    Decide { action: String, by: String, task: Option<String>, form: Map<String, Json>, comment: Option<String> },
    Delegate { to: String, by: String, task: Option<String>, comment: Option<String> },
    Withdraw { by: String, comment: Option<String> },
    Advance(Duration),
    AdvanceTo(Timestamp),
    Signal { name: String, data: Json },
    Answer { ok: bool, response: Json },
    Expect(Vec<Expectation>),
}

impl Action {
    /// A short description of the step for reports.
    pub fn describe(&self) -> String {
        match self {
            Action::Start { workflow, by, .. } => format!("start {workflow} by {by}"),
            Action::Decide { action, by, .. } => format!("decide {action} by {by}"),
            Action::Delegate { to, by, .. } => format!("delegate to {to} by {by}"),
            Action::Withdraw { by, .. } => format!("withdraw by {by}"),
            Action::Advance(d) => format!("advance {d}"),
            Action::AdvanceTo(t) => format!("advance to {}", crate::commands::local(*t)),
            Action::Signal { name, .. } => format!("signal {name}"),
            Action::Answer { ok, .. } => format!("answer {}", if *ok { "ok" } else { "failed" }),
            Action::Expect(_) => "expect".into(),
        }
    }
}

/// One thing an `expect` step checks, and where it was written.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub pos: Pos,
    pub check: Check,
}

#[derive(Clone, Debug)]
pub enum Check {
    State(String),
    /// `None`: the case is still open.
    Outcome(Option<OutcomeId>),
    /// Exactly these open tasks (by `state` or `state.branch`) with exactly these holders.
    Tasks(Vec<(String, Vec<Holder>)>),
    Deadline {
        task: String,
        at: Timestamp,
    },
    Data {
        field: String,
        value: Json,
    },
    Email(EmailExpectation),
    NoEmailTo(String),
    /// These events, in this order, since the previous `expect`.
    Events(Vec<(String, Map<String, Json>)>),
    Ledger {
        ledger: String,
        portfolio: String,
        year: i32,
        reserved: Option<i64>,
        left: Option<i64>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holder {
    pub person: String,
    pub on_behalf_of: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.on_behalf_of {
            Some(other) => write!(f, "{} for {other}", self.person),
            None => f.write_str(&self.person),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EmailExpectation {
    pub to: String,
    pub subject: Option<String>,
    pub kind: Option<String>,
    pub actions: Option<Vec<String>>,
}

/// Parses `YYYY-MM-DD HH:MM` (or a date, meaning midnight) in Swedish time, or an RFC 3339
/// moment.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| text.parse::<jiff::civil::Date>().ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))?;
    civil.to_zoned(beslut_engine::calendar::stockholm()).ok().map(|z| z.timestamp())
}

/// Reads one scenario file. The workflow folder (`project`) is needed to check the names the
/// file uses.
pub fn read(path: &Path, project: &Project) -> std::io::Result<(Option<Scenario>, Report, String)> {
    let source = std::fs::read_to_string(path)?;
    let shown = path.display().to_string();
    let mut r = Report::new(&shown);
    let scenario = match yaml::parse(&source) {
        Ok(node) => Reader { r: &mut r, project, def: None, cases: vec![] }.scenario(path, &shown, &source, &node),
        Err(err) => {
            r.error(
                err.pos,
                "yaml-syntax",
                Msg::new(format!("YAML-fel: {}", err.message), format!("YAML error: {}", err.message)),
                Some(Msg::new(
                    "kontrollera indrag (mellanslag, inte tabb), kolon och citattecken på raden och raden ovanför",
                    "check indentation (spaces, not tabs), colons and quotes on this line and the one above",
                )),
            );
            None
        }
    };
    let scenario = scenario.filter(|_| !r.has_errors());
    Ok((scenario, r, source))
}

struct Reader<'a> {
    r: &'a mut Report,
    project: &'a Project,
    /// The workflow of the case being read about (the last started).
    def: Option<&'a Definition>,
    /// The names of the cases started so far, with their workflows.
    cases: Vec<(String, &'a Definition)>,
}

impl<'a> Reader<'a> {
    fn scenario(&mut self, path: &Path, shown: &str, source: &str, node: &Node) -> Option<Scenario> {
        let o = reader::obj(self.r, node, &Msg::new("scenariot", "the scenario"))?;
        o.check_keys(self.r, &["name", "workflow", "at", "absences", "portfolios", "reserved", "start", "steps"], None);
        let name = o.require(self.r, "name").and_then(|n| reader::string(self.r, n, &Msg::new("`name`", "`name`")));
        let workflow = self.workflow(path, &o)?;
        let at = match o.get("at") {
            Some(n) => self.time(n)?,
            None => parse_time(DEFAULT_START)?,
        };
        let absences = o.get("absences").map(|n| self.absences(n)).unwrap_or_default();
        let portfolios = o.get("portfolios").map(|n| self.portfolios(n)).unwrap_or_default();
        let reserved = o.get("reserved").map(|n| self.reserved(n, workflow)).unwrap_or_default();
        let mut steps = Vec::new();
        if let Some(start) = o.get("start") {
            steps.extend(self.start(start, start.pos, workflow, None));
        }
        if let Some(list) =
            o.require(self.r, "steps").and_then(|n| reader::list(self.r, n, &Msg::new("`steps`", "`steps`")))
        {
            for item in list {
                steps.extend(self.step(item, workflow));
            }
        }
        Some(Scenario {
            path: path.to_path_buf(),
            shown: shown.to_string(),
            source: source.to_string(),
            name: name?,
            workflow: workflow.id.clone(),
            at,
            absences,
            portfolios,
            reserved,
            steps,
        })
    }

    /// The workflow named in the file, or the one the folder is named after.
    fn workflow(&mut self, path: &Path, o: &Obj<'_>) -> Option<&'a Definition> {
        let (id, pos) = match o.get("workflow") {
            Some(n) => (reader::string(self.r, n, &Msg::new("`workflow`", "`workflow`"))?, n.pos),
            None => {
                let folder = path.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().to_string());
                (folder.unwrap_or_default(), o.pos)
            }
        };
        self.definition(&id, pos)
    }

    fn definition(&mut self, id: &str, pos: Pos) -> Option<&'a Definition> {
        let project: &'a Project = self.project;
        if let Some(file) = project.workflow(id) {
            if file.definition.is_none() {
                self.r.error(
                    pos,
                    "invalid-workflow",
                    msg!("arbetsflödet `{id}` har fel", "the workflow `{id}` has errors"),
                    Some(Msg::new("rätta det först (`beslut check`)", "fix it first (`beslut check`)")),
                );
            }
            return file.definition.as_ref().filter(|_| project.is_valid());
        }
        let ids: Vec<&str> = project.workflows.iter().map(|w| w.id.as_str()).collect();
        self.r.error(
            pos,
            "unknown-workflow",
            msg!("arbetsflödet `{id}` finns inte", "there is no workflow `{id}`"),
            Some(Msg::new(
                format!(
                    "lägg scenariot i tests/<arbetsflödets id>/ eller ange `workflow:`; {}",
                    suggest(id, ids.iter().copied()).sv
                ),
                format!(
                    "put the scenario in tests/<workflow id>/ or give `workflow:`; {}",
                    suggest(id, ids.iter().copied()).en
                ),
            )),
        );
        None
    }

    fn time(&mut self, node: &Node) -> Option<Timestamp> {
        let text = reader::string(self.r, node, &Msg::new("tidpunkten", "the time"))?;
        let t = parse_time(&text);
        if t.is_none() {
            self.r.error(
                node.pos,
                "invalid-time",
                msg!("`{text}` är ingen tidpunkt", "`{text}` is not a time"),
                Some(Msg::new(
                    "skriv t.ex. `2026-03-02 09:00` (svensk tid)",
                    "write e.g. `2026-03-02 09:00` (Swedish time)",
                )),
            );
        }
        t
    }

    fn date(&mut self, node: &Node) -> Option<jiff::civil::Date> {
        let text = reader::string(self.r, node, &Msg::new("datumet", "the date"))?;
        let d = text.parse::<jiff::civil::Date>().ok();
        if d.is_none() {
            self.r.error(
                node.pos,
                "invalid-date",
                msg!("`{text}` är inget datum", "`{text}` is not a date"),
                Some(Msg::new("skriv t.ex. `2026-03-02`", "write e.g. `2026-03-02`")),
            );
        }
        d
    }

    fn person(&mut self, node: &Node) -> Option<String> {
        let name = reader::string(self.r, node, &Msg::new("personen", "the person"))?;
        self.known_person(&name, node.pos).then_some(name)
    }

    /// A directory person id, or an e-mail address (outside parties).
    fn known_person(&mut self, name: &str, pos: Pos) -> bool {
        let directory = &self.project.directory;
        if name.contains('@') || directory.person(name).is_some() {
            return true;
        }
        self.r.error(
            pos,
            "unknown-person",
            msg!("`{name}` finns inte i directory.yaml", "`{name}` is not in directory.yaml"),
            Some(suggest(name, directory.people.iter().map(|p| p.id.as_str()))),
        );
        false
    }

    fn absences(&mut self, node: &Node) -> Vec<Absence> {
        let what = Msg::new("`absences`", "`absences`");
        let Some(items) = reader::list(self.r, node, &what) else { return Vec::new() };
        let mut out = Vec::new();
        for item in items {
            let Some(o) = reader::obj(self.r, item, &what) else { continue };
            o.check_keys(self.r, &["person", "from", "to", "substitute"], None);
            let person = o.require(self.r, "person").and_then(|n| self.person(n));
            let from = o.require(self.r, "from").and_then(|n| self.date(n));
            let to = o.require(self.r, "to").and_then(|n| self.date(n));
            let substitute = o.require(self.r, "substitute").and_then(|n| self.person(n));
            if let (Some(person), Some(from), Some(to), Some(substitute)) = (person, from, to, substitute) {
                out.push(Absence { person, from, to, substitute });
            }
        }
        out
    }

    /// `portfolios:` in the form of `portfolios.yaml`'s own key.
    fn portfolios(&mut self, node: &Node) -> Vec<beslut_engine::portfolios::Portfolio> {
        let key = yaml::Key { name: "portfolios".into(), pos: node.pos };
        let wrapper = Node { value: Value::Map(vec![(key, node.clone())]), pos: node.pos };
        beslut_engine::portfolios::parse(self.r, &wrapper).portfolios
    }

    fn reserved(&mut self, node: &Node, def: &Definition) -> Vec<Reserved> {
        let what = Msg::new("`reserved`", "`reserved`");
        let Some(items) = reader::list(self.r, node, &what) else { return Vec::new() };
        let mut out = Vec::new();
        for item in items {
            let Some(o) = reader::obj(self.r, item, &what) else { continue };
            o.check_keys(self.r, &["ledger", "key", "amount"], None);
            let key = self.ledger_key(&o, def);
            let amount = o.require(self.r, "amount").and_then(|n| self.kronor(n));
            if let (Some((ledger, portfolio, year)), Some(amount)) = (key, amount) {
                out.push(Reserved { ledger, portfolio, year, amount });
            }
        }
        out
    }

    /// `ledger: <name>` and `key: [<portfolio>, <year>]`.
    fn ledger_key(&mut self, o: &Obj<'_>, def: &Definition) -> Option<(String, String, i32)> {
        let node = o.require(self.r, "ledger")?;
        let ledger = reader::string(self.r, node, &Msg::new("`ledger`", "`ledger`"))?;
        if !def.ledgers.iter().any(|l| l.id == ledger) {
            self.r.error(
                node.pos,
                "unknown-ledger",
                msg!("arbetsflödet har ingen ledger `{ledger}`", "the workflow has no ledger `{ledger}`"),
                Some(suggest(&ledger, def.ledgers.iter().map(|l| l.id.as_str()))),
            );
            return None;
        }
        let key_node = o.require(self.r, "key")?;
        let key = reader::list(self.r, key_node, &Msg::new("`key`", "`key`"))?;
        let year = key.get(1).and_then(|n| match n.value {
            Value::Int(y) => i32::try_from(y).ok(),
            _ => None,
        });
        match (key.first().and_then(|n| reader::string(self.r, n, &Msg::new("portföljen", "the portfolio"))), year) {
            (Some(portfolio), Some(year)) if key.len() == 2 => Some((ledger, portfolio, year)),
            _ => {
                self.r.error(
                    key_node.pos,
                    "invalid-value",
                    Msg::new("`key` ska vara [portfölj, år]", "`key` must be [portfolio, year]"),
                    Some(Msg::new("skriv t.ex. `key: [innovation, 2026]`", "write e.g. `key: [innovation, 2026]`")),
                );
                None
            }
        }
    }

    fn kronor(&mut self, node: &Node) -> Option<i64> {
        match node.value {
            Value::Int(i) => Some(i),
            _ => {
                reader::wrong_type(
                    self.r,
                    node,
                    &Msg::new("beloppet", "the amount"),
                    &Msg::new("ett heltal kronor", "whole kronor"),
                );
                None
            }
        }
    }

    /// The top-level `start` or a `start:` step: `by`, `data`, `as`, `workflow`.
    fn start(&mut self, node: &Node, pos: Pos, default: &'a Definition, verb: Option<&Node>) -> Option<Step> {
        let o = reader::obj(self.r, node, &Msg::new("`start`", "`start`"))?;
        let mut allowed = vec!["by", "data", "workflow", "refused"];
        allowed.push(if verb.is_some() { "start" } else { "as" });
        o.check_keys(self.r, &allowed, None);
        let name = match (verb, o.get("as")) {
            (Some(n), _) | (None, Some(n)) => reader::string(self.r, n, &Msg::new("ärendets namn", "the case's name"))?,
            (None, None) => "main".to_string(),
        };
        let def = match o.get("workflow") {
            Some(n) => {
                let id = reader::string(self.r, n, &Msg::new("`workflow`", "`workflow`"))?;
                self.definition(&id, n.pos)?
            }
            None => default,
        };
        let by = o.require(self.r, "by").and_then(|n| self.person(n));
        let data = o.get("data").map(|n| self.json_map(n)).unwrap_or_default();
        let refused = self.refused(&o);
        self.cases.push((name.clone(), def));
        self.def = Some(def);
        Some(Step { pos, case: None, action: Action::Start { name, workflow: def.id.clone(), by: by?, data }, refused })
    }

    fn step(&mut self, node: &Node, default: &'a Definition) -> Option<Step> {
        let o = reader::obj(self.r, node, &Msg::new("steget", "the step"))?;
        const VERBS: [&str; 9] =
            ["decide", "delegate", "withdraw", "advance", "advance_to", "signal", "answer", "start", "expect"];
        let verbs: Vec<_> = o.entries.iter().filter(|(k, _)| VERBS.contains(&k.name.as_str())).collect();
        let [(verb, value)] = verbs.as_slice() else {
            let (sv, en) =
                if verbs.is_empty() { ("saknar", "has no") } else { ("har mer än ett", "has more than one") };
            self.r.error(
                node.pos,
                "invalid-step",
                Msg::new(format!("steget {sv} verb"), format!("the step {en} verb")),
                Some(msg!(
                    "varje steg börjar med ett av: {list}",
                    "each step starts with one of: {list}",
                    list = VERBS.join(", ")
                )),
            );
            if verbs.is_empty() {
                o.check_keys(self.r, &VERBS, None);
            }
            return None;
        };
        if verb.name == "start" {
            return self.start(node, node.pos, default, Some(value));
        }
        let case = match o.get("case") {
            Some(n) => self.case_name(n),
            None => None,
        };
        let refused = self.refused(&o);
        let action = self.action(&verb.name, value, &o)?;
        if refused.is_some() && matches!(action, Action::Expect(_) | Action::Advance(_) | Action::AdvanceTo(_)) {
            self.r.error(
                node.pos,
                "unknown-key",
                msg!("`refused` passar inte med `{v}`", "`refused` does not go with `{v}`", v = &verb.name),
                Some(Msg::new("ta bort `refused`", "remove `refused`")),
            );
        }
        Some(Step { pos: node.pos, case, action, refused })
    }

    fn case_name(&mut self, node: &Node) -> Option<Named> {
        let name = reader::string(self.r, node, &Msg::new("`case`", "`case`"))?;
        match self.cases.iter().find(|(n, _)| *n == name) {
            Some((_, def)) => {
                self.def = Some(def);
                Some(Named { name, pos: node.pos })
            }
            None => {
                self.r.error(
                    node.pos,
                    "unknown-case",
                    msg!("inget ärende heter `{name}` här", "no case is called `{name}` here"),
                    Some(suggest(&name, self.cases.iter().map(|(n, _)| n.as_str()))),
                );
                None
            }
        }
    }

    fn refused(&mut self, o: &Obj<'_>) -> Option<Named> {
        let node = o.get("refused")?;
        let code = reader::string(self.r, node, &Msg::new("`refused`", "`refused`"))?;
        if !REFUSALS.contains(&code.as_str()) {
            self.r.error(
                node.pos,
                "invalid-value",
                msg!("`{code}` är ingen orsak att vägra", "`{code}` is not a reason for refusal"),
                Some(suggest(&code, REFUSALS.iter().copied())),
            );
            return None;
        }
        Some(Named { name: code, pos: node.pos })
    }

    fn action(&mut self, verb: &str, value: &Node, o: &Obj<'_>) -> Option<Action> {
        let keys: &[&str] = match verb {
            "decide" => &["decide", "by", "task", "form", "comment", "case", "refused"],
            "delegate" => &["delegate", "by", "task", "comment", "case", "refused"],
            "withdraw" => &["withdraw", "comment", "case", "refused"],
            "signal" => &["signal", "data", "case", "refused"],
            "answer" => &["answer", "response", "case", "refused"],
            "expect" => &["expect", "case"],
            _ => &[verb, "case"],
        };
        o.check_keys(self.r, keys, None);
        let comment = o.get("comment").and_then(|n| reader::string(self.r, n, &Msg::new("`comment`", "`comment`")));
        let task = o.get("task").and_then(|n| self.task_key(n));
        match verb {
            "decide" => {
                let action = self.action_id(value)?;
                let by = o.require(self.r, "by").and_then(|n| self.person(n))?;
                let form = o.get("form").map(|n| self.json_map(n)).unwrap_or_default();
                Some(Action::Decide { action, by, task, form, comment })
            }
            "delegate" => {
                let to = self.person(value)?;
                let by = o.require(self.r, "by").and_then(|n| self.person(n))?;
                Some(Action::Delegate { to, by, task, comment })
            }
            "withdraw" => Some(Action::Withdraw { by: self.person(value)?, comment }),
            "advance" => reader::duration(self.r, value, &Msg::new("`advance`", "`advance`")).map(Action::Advance),
            "advance_to" => self.time(value).map(Action::AdvanceTo),
            "signal" => {
                let name = reader::string(self.r, value, &Msg::new("signalen", "the signal"))?;
                let data = o.get("data").map(json).unwrap_or(Json::Object(Map::new()));
                Some(Action::Signal { name, data })
            }
            "answer" => {
                let ok = reader::choice(
                    self.r,
                    value,
                    &Msg::new("svaret", "the answer"),
                    &[("ok", true), ("failed", false)],
                )?;
                let response = o.get("response").map(json).unwrap_or(Json::Object(Map::new()));
                Some(Action::Answer { ok, response })
            }
            _ => self.expect(value).map(Action::Expect),
        }
    }

    /// An action id that some task of the workflow has.
    fn action_id(&mut self, node: &Node) -> Option<String> {
        let id = reader::string(self.r, node, &Msg::new("åtgärden", "the action"))?;
        let def = self.def?;
        let all: Vec<&str> =
            def.states.iter().flat_map(|s| s.tasks()).flat_map(|t| t.actions.iter().map(|a| a.id.as_str())).collect();
        if all.contains(&id.as_str()) {
            return Some(id);
        }
        self.r.error(
            node.pos,
            "unknown-action",
            msg!("`{w}` har ingen åtgärd `{id}`", "`{w}` has no action `{id}`", w = &def.id),
            Some(suggest(&id, all.iter().copied())),
        );
        None
    }

    /// `state` or `state.branch` of a state that has tasks.
    fn task_key(&mut self, node: &Node) -> Option<String> {
        let key = reader::string(self.r, node, &Msg::new("uppgiften", "the task"))?;
        let def = self.def?;
        let keys = task_keys(def);
        if keys.contains(&key) {
            return Some(key);
        }
        self.r.error(
            node.pos,
            "unknown-task",
            msg!("`{w}` har ingen uppgift `{key}`", "`{w}` has no task `{key}`", w = &def.id),
            Some(Msg::new(
                format!(
                    "skriv tillståndets id, eller `tillstånd.gren` för en parallell granskning; {}",
                    suggest(&key, keys.iter().map(String::as_str)).sv
                ),
                format!(
                    "write the state's id, or `state.branch` for a parallel review; {}",
                    suggest(&key, keys.iter().map(String::as_str)).en
                ),
            )),
        );
        None
    }

    fn state_id(&mut self, node: &Node) -> Option<String> {
        let id = reader::string(self.r, node, &Msg::new("tillståndet", "the state"))?;
        let def = self.def?;
        if def.state(&id).is_some() {
            return Some(id);
        }
        self.r.error(
            node.pos,
            "unknown-state",
            msg!("`{w}` har inget tillstånd `{id}`", "`{w}` has no state `{id}`", w = &def.id),
            Some(suggest(&id, def.states.iter().map(|s| s.id.as_str()))),
        );
        None
    }

    fn json_map(&mut self, node: &Node) -> Map<String, Json> {
        match json(node) {
            Json::Object(map) => map,
            Json::Null => Map::new(),
            _ => {
                reader::wrong_type(self.r, node, &Msg::new("datat", "the data"), &Msg::new("en mappning", "a mapping"));
                Map::new()
            }
        }
    }

    fn expect(&mut self, node: &Node) -> Option<Vec<Expectation>> {
        let o = reader::obj(self.r, node, &Msg::new("`expect`", "`expect`"))?;
        const KEYS: [&str; 9] =
            ["state", "outcome", "tasks", "deadlines", "data", "emails", "no_emails_to", "events", "ledger"];
        o.check_keys(self.r, &KEYS, None);
        let mut out = Vec::new();
        for (key, value) in o.entries {
            let pos = key.pos;
            let push = |out: &mut Vec<Expectation>, check| out.push(Expectation { pos, check });
            match key.name.as_str() {
                "state" => {
                    if let Some(id) = self.state_id(value) {
                        push(&mut out, Check::State(id));
                    }
                }
                "outcome" => {
                    if let Some(o) = reader::choice(self.r, value, &Msg::new("`outcome`", "`outcome`"), &OUTCOMES) {
                        push(&mut out, Check::Outcome(o));
                    }
                }
                "tasks" => {
                    if let Some(tasks) = self.tasks(value) {
                        push(&mut out, Check::Tasks(tasks));
                    }
                }
                "deadlines" => self.deadlines(value, &mut out),
                "data" => {
                    let Some(o) = reader::obj(self.r, value, &Msg::new("`data`", "`data`")) else { continue };
                    for (k, v) in o.entries {
                        out.push(Expectation {
                            pos: k.pos,
                            check: Check::Data { field: k.name.clone(), value: json(v) },
                        });
                    }
                }
                "emails" => self.emails(value, &mut out),
                "no_emails_to" => {
                    for item in
                        reader::list(self.r, value, &Msg::new("`no_emails_to`", "`no_emails_to`")).unwrap_or(&[])
                    {
                        if let Some(p) = self.person(item) {
                            out.push(Expectation { pos: item.pos, check: Check::NoEmailTo(p) });
                        }
                    }
                }
                "events" => {
                    if let Some(events) = self.events(value) {
                        push(&mut out, Check::Events(events));
                    }
                }
                "ledger" => self.ledgers(value, &mut out),
                _ => {} // reported by check_keys
            }
        }
        Some(out)
    }

    fn tasks(&mut self, node: &Node) -> Option<Vec<(String, Vec<Holder>)>> {
        let o = reader::obj(self.r, node, &Msg::new("`tasks`", "`tasks`"))?;
        let mut out = Vec::new();
        for (key, value) in o.entries {
            let key_node = Node { value: Value::Str(key.name.clone()), pos: key.pos };
            let Some(task) = self.task_key(&key_node) else { continue };
            let items = reader::list(self.r, value, &Msg::new("innehavarna", "the holders")).unwrap_or(&[]);
            let mut holders = Vec::new();
            for item in items {
                let Some(text) = reader::string(self.r, item, &Msg::new("innehavaren", "the holder")) else { continue };
                let mut words = text.split_whitespace();
                let person = words.next().unwrap_or_default().to_string();
                let on_behalf_of = match (words.next(), words.next(), words.next()) {
                    (None, _, _) => None,
                    (Some("for" | "för"), Some(other), None) => Some(other.to_string()),
                    _ => {
                        self.r.error(
                            item.pos,
                            "invalid-value",
                            msg!("`{text}` är ingen innehavare", "`{text}` is not a holder"),
                            Some(Msg::new(
                                "skriv ett person-id, eller `ersättare for frånvarande`",
                                "write a person id, or `substitute for absent`",
                            )),
                        );
                        continue;
                    }
                };
                let known = self.known_person(&person, item.pos)
                    && on_behalf_of.as_deref().is_none_or(|p| self.known_person(p, item.pos));
                if known {
                    holders.push(Holder { person, on_behalf_of });
                }
            }
            holders.sort();
            out.push((task, holders));
        }
        Some(out)
    }

    fn deadlines(&mut self, node: &Node, out: &mut Vec<Expectation>) {
        let Some(o) = reader::obj(self.r, node, &Msg::new("`deadlines`", "`deadlines`")) else { return };
        for (key, value) in o.entries {
            let key_node = Node { value: Value::Str(key.name.clone()), pos: key.pos };
            if let (Some(task), Some(at)) = (self.task_key(&key_node), self.time(value)) {
                out.push(Expectation { pos: key.pos, check: Check::Deadline { task, at } });
            }
        }
    }

    fn emails(&mut self, node: &Node, out: &mut Vec<Expectation>) {
        let what = Msg::new("`emails`", "`emails`");
        for item in reader::list(self.r, node, &what).unwrap_or(&[]) {
            let Some(o) = reader::obj(self.r, item, &what) else { continue };
            o.check_keys(self.r, &["to", "subject", "kind", "actions"], None);
            let to = o.require(self.r, "to").and_then(|n| self.person(n));
            let subject = o.get("subject").and_then(|n| reader::string(self.r, n, &Msg::new("`subject`", "`subject`")));
            let kind = o.get("kind").and_then(|n| {
                let options: Vec<(&str, &str)> = KINDS.iter().map(|k| (*k, *k)).collect();
                reader::choice(self.r, n, &Msg::new("`kind`", "`kind`"), &options).map(str::to_string)
            });
            let actions = o.get("actions").map(|n| {
                reader::list(self.r, n, &Msg::new("`actions`", "`actions`"))
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|a| self.action_id(a))
                    .collect()
            });
            if let Some(to) = to {
                out.push(Expectation {
                    pos: item.pos,
                    check: Check::Email(EmailExpectation { to, subject, kind, actions }),
                });
            }
        }
    }

    fn events(&mut self, node: &Node) -> Option<Vec<(String, Map<String, Json>)>> {
        let items = reader::list(self.r, node, &Msg::new("`events`", "`events`"))?;
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::Map(entries) if entries.len() == 1 => {
                    let (key, value) = &entries[0];
                    out.push((key.name.clone(), self.json_map(value)));
                }
                _ => {
                    let name = reader::string(self.r, item, &Msg::new("händelsen", "the event"))?;
                    out.push((name, Map::new()));
                }
            }
        }
        Some(out)
    }

    fn ledgers(&mut self, node: &Node, out: &mut Vec<Expectation>) {
        let what = Msg::new("`ledger`", "`ledger`");
        let Some(def) = self.def else { return };
        for item in reader::list(self.r, node, &what).unwrap_or(&[]) {
            let Some(o) = reader::obj(self.r, item, &what) else { continue };
            o.check_keys(self.r, &["ledger", "key", "reserved", "left"], None);
            let reserved = o.get("reserved").and_then(|n| self.kronor(n));
            let left = o.get("left").and_then(|n| self.kronor(n));
            if let Some((ledger, portfolio, year)) = self.ledger_key(&o, def) {
                out.push(Expectation {
                    pos: item.pos,
                    check: Check::Ledger { ledger, portfolio, year, reserved, left },
                });
            }
        }
    }
}

/// Every task of a workflow as scenarios name it: the state, or `state.branch`.
pub fn task_keys(def: &Definition) -> Vec<String> {
    let mut keys = Vec::new();
    for state in &def.states {
        match &state.kind {
            StateKind::Task(_) => keys.push(state.id.clone()),
            StateKind::Parallel(p) => keys.extend(p.branches.iter().map(|b| format!("{}.{}", state.id, b.id))),
            _ => {}
        }
    }
    keys
}

/// A YAML value as JSON, the way case data is stored.
pub fn json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(json).collect()),
        Value::Map(entries) => Json::Object(entries.iter().map(|(k, v)| (k.name.clone(), json(v))).collect()),
    }
}
