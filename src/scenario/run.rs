//! Running one scenario on the in-memory runtime (`runtime::sim`): the same core that serves
//! production, a fake clock, and the emails rendered as staff would get them.

use super::coverage::Trace;
use super::file::{Action, Check, EmailExpectation, Expectation, Holder, Scenario, Step};
use crate::commands::local;
use crate::mail::{Compose, task_actions};
use beslut_engine::definition::model::Definition;
use beslut_engine::diagnostic::Lang;
use beslut_engine::directory::{self, Directory};
use beslut_engine::portfolios::Portfolios;
use beslut_engine::project::Project;
use beslut_engine::runtime::assign::{after, party};
use beslut_engine::runtime::sim::{Mail, Sim};
use beslut_engine::runtime::{Case, Channel, Command, Error, NoticeKind, Party, Status, Task, Waiting, World};
use beslut_engine::yaml::Pos;
use beslut_notifications::render::{self, Renderer};
use serde_json::{Map, Value};

/// Where emails in scenario output point; nothing is served there.
const BASE_URL: &str = "https://beslut.example";

/// An email as the recipient would read it.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub case: String,
    pub to: Party,
    pub kind: NoticeKind,
    pub subject: String,
    pub text: String,
    /// The decision links, as (action id, label); handing over is left out.
    pub actions: Vec<(String, String)>,
    /// Why the email could not be rendered: in production it would never be sent.
    pub error: Option<String>,
}

/// What one step did, for `--emails`.
#[derive(Clone, Debug)]
pub struct StepLog {
    pub pos: Pos,
    pub what: String,
    pub emails: Vec<Rendered>,
}

/// Why a scenario failed, and where.
#[derive(Clone, Debug)]
pub struct Failure {
    pub pos: Pos,
    /// 1-based step number and what the step does.
    pub step: usize,
    pub what: String,
    /// One line per expectation that did not hold (or the refusal).
    pub problems: Vec<Problem>,
    /// Where the case was: number, state, open tasks and holders.
    pub case: String,
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub pos: Pos,
    pub expected: String,
    pub actual: String,
}

pub struct Outcome {
    pub failure: Option<Failure>,
    pub steps: Vec<StepLog>,
    pub trace: Trace,
}

/// Runs `scenario` on the definitions of `project`.
pub fn run(
    project: &Project,
    definitions: &[Definition],
    renderer: &Renderer,
    scenario: &Scenario,
    lang: Lang,
) -> Outcome {
    let directory = with_absences(&project.directory, scenario);
    let frames = with_portfolios(&project.frames, scenario);
    let world = World { directory: &directory, frames: &frames };
    let mut sim = Sim::new(world, definitions, scenario.at);
    for r in &scenario.reserved {
        if let Some(frames) = ledger_frames(definitions, &scenario.workflow, &r.ledger) {
            *sim.reserved.entry((frames, r.portfolio.clone(), r.year)).or_insert(0) += r.amount * 100;
        }
    }
    let mut runner = Runner {
        sim,
        renderer,
        lang,
        cases: Vec::new(),
        rendered: Vec::new(),
        window: (0, 0),
        trace: Trace::default(),
        audited: 0,
        logs: Vec::new(),
    };
    let mut failure = None;
    for (index, step) in scenario.steps.iter().enumerate() {
        let mut problems = runner.step(step);
        runner.trace_audit();
        let emails = runner.render_new();
        problems.extend(emails.iter().filter_map(|m| runner.unrenderable(m, step.pos)));
        runner.logs.push(StepLog { pos: step.pos, what: step.action.describe(), emails });
        if !problems.is_empty() {
            let case = runner.where_case(step);
            failure = Some(Failure { pos: step.pos, step: index + 1, what: step.action.describe(), problems, case });
            break;
        }
    }
    Outcome { failure, steps: runner.logs, trace: runner.trace }
}

/// The directory with the scenario's own absences added.
fn with_absences(base: &Directory, scenario: &Scenario) -> Directory {
    let mut directory = base.clone();
    for a in &scenario.absences {
        if let Some(person) = directory.people.iter_mut().find(|p| p.id == a.person) {
            person.absences.push(directory::Absence { from: a.from, to: a.to, substitute: a.substitute.clone() });
        }
    }
    directory
}

/// The frames files with the scenario's own portfolios added to each.
fn with_portfolios(base: &[(String, Portfolios)], scenario: &Scenario) -> Vec<(String, Portfolios)> {
    let mut frames = base.to_vec();
    for (_, file) in &mut frames {
        file.portfolios.extend(scenario.portfolios.iter().cloned());
    }
    frames
}

fn ledger_frames(definitions: &[Definition], workflow: &str, ledger: &str) -> Option<String> {
    let def = definitions.iter().find(|d| d.id == workflow)?;
    def.ledgers.iter().find(|l| l.id == ledger).map(|l| l.frames.name.clone())
}

struct Runner<'a> {
    sim: Sim<'a>,
    renderer: &'a Renderer,
    /// The language of the failure report.
    lang: Lang,
    /// Scenario names of cases and their ids, in the order started.
    cases: Vec<(String, String)>,
    /// The simulator's emails, each rendered once, at the end of the step that sent it.
    rendered: Vec<Option<Rendered>>,
    /// Indexes into the simulator's emails and events where the current `expect` window starts.
    window: (usize, usize),
    trace: Trace,
    /// How many audit entries the trace has read.
    audited: usize,
    logs: Vec<StepLog>,
}

impl<'a> Runner<'a> {
    /// The case a step is about: the one it names, or the one started last.
    fn case_id(&self, step: &Step) -> Option<String> {
        match &step.case {
            Some(named) => self.cases.iter().find(|(n, _)| *n == named.name).map(|(_, id)| id.clone()),
            None => self.cases.last().map(|(_, id)| id.clone()),
        }
    }

    /// Carries out one step; returns what did not go as the scenario says.
    fn step(&mut self, step: &Step) -> Vec<Problem> {
        if let Action::Expect(expectations) = &step.action {
            let problems = match self.case_id(step) {
                Some(id) => expectations.iter().filter_map(|e| self.check(&id, e)).collect(),
                None => vec![self.no_case(step.pos)],
            };
            self.window = (self.sim.mails.len(), self.sim.events.len());
            return problems;
        }
        // Only a step expected to be refused must prove it changed nothing.
        let before = step.refused.as_ref().map(|_| self.snapshot());
        let result = self.act(step);
        match (&step.refused, result) {
            (None, Ok(())) => Vec::new(),
            (None, Err(e)) => {
                let expected = self.t("steget genomförs", "the step is carried out").into();
                vec![Problem { pos: step.pos, expected, actual: self.refusal(&e) }]
            }
            (Some(code), Ok(())) => vec![Problem {
                pos: code.pos,
                expected: format!("refused: {}", code.name),
                actual: self.t("steget genomfördes", "the step was carried out").into(),
            }],
            (Some(code), Err(e)) if e.code() != code.name => {
                vec![Problem { pos: code.pos, expected: format!("refused: {}", code.name), actual: self.refusal(&e) }]
            }
            (Some(code), Err(_)) if Some(self.snapshot()) != before => vec![Problem {
                pos: code.pos,
                expected: self.t("ett vägrat steg ändrar ingenting", "the refused step changes nothing").into(),
                actual: self
                    .t("ärendet, dess e-post eller händelser ändrades", "the case, its emails or events changed")
                    .into(),
            }],
            (Some(_), Err(_)) => Vec::new(),
        }
    }

    /// Everything a refused command must leave as it was.
    fn snapshot(&self) -> (Vec<Case>, usize, usize, usize, Vec<i64>) {
        (
            self.sim.cases.values().cloned().collect(),
            self.sim.mails.len(),
            self.sim.events.len(),
            self.sim.audit.len(),
            self.sim.reserved.values().copied().collect(),
        )
    }

    fn act(&mut self, step: &Step) -> Result<(), Error> {
        if let Action::Start { name, workflow, by, data } = &step.action {
            let id = self.sim.start(workflow, data.clone(), self.party(by))?;
            self.cases.push((name.clone(), id));
            return Ok(());
        }
        let case = self.case_id(step).ok_or_else(|| Error::NotAllowed("no case has been started".into()))?;
        match &step.action {
            Action::Decide { action, by, task, form, comment } => {
                let task = self.find_task(&case, by, task.as_deref(), Some(action))?;
                let command = Command::Decide {
                    task,
                    actor: by.clone(),
                    action: action.clone(),
                    comment: comment.clone(),
                    form: form.clone(),
                };
                self.sim.send(&case, command, Channel::EmailLink)
            }
            Action::Delegate { to, by, task, comment } => {
                let task = self.find_task(&case, by, task.as_deref(), None)?;
                let command = Command::Delegate { task, actor: by.clone(), to: to.clone(), comment: comment.clone() };
                self.sim.send(&case, command, Channel::EmailLink)
            }
            Action::Withdraw { by, comment } => {
                let command = Command::Withdraw { actor: by.clone(), comment: comment.clone() };
                self.sim.send(&case, command, Channel::Web)
            }
            Action::Advance(duration) => {
                let to = after(self.sim.now, *duration);
                self.sim.advance_to(to)
            }
            Action::AdvanceTo(at) => self.sim.advance_to(*at),
            Action::Signal { name, data } => {
                let command = Command::Signal { name: name.clone(), payload: data.clone() };
                self.sim.send(&case, command, Channel::Webhook)
            }
            Action::Answer { ok, response } => {
                let Some(Waiting::Call { request_id }) = self.sim.case(&case).waiting.clone() else {
                    return Err(Error::NotWaiting);
                };
                let command = Command::CallAnswered { request_id, ok: *ok, response: response.clone() };
                self.sim.send(&case, command, Channel::Webhook)
            }
            Action::Start { .. } | Action::Expect(_) => Ok(()),
        }
    }

    fn party(&self, who: &str) -> Party {
        match self.sim.world.directory.person(who) {
            Some(person) => party(person),
            None => Party { person: None, email: who.to_string(), name: who.to_string(), lang: Lang::Sv },
        }
    }

    /// The task of `by` that the step means: their open task named by `task`, or the one
    /// that has the action. A task named but no longer open is still given to the core, so
    /// that it refuses with its own reason (`already-decided`, `task-closed`).
    fn find_task(&self, case: &str, by: &str, key: Option<&str>, action: Option<&str>) -> Result<String, Error> {
        let case = self.sim.case(case);
        if !case.is_open() {
            return Err(Error::CaseClosed);
        }
        let def = self.definition(&case.workflow);
        let named = |t: &&Task| key.is_none_or(|k| task_key(t) == k);
        // A substitute may decide the tasks of a holder who is away today.
        let directory = self.sim.world.directory;
        let may = |t: &&Task| {
            t.assignment_of(by).is_some()
                || beslut_engine::runtime::assign::standing_in(directory, t, by, self.sim.now).is_some()
        };
        let held: Vec<&Task> = case.open_tasks().filter(may).filter(named).collect();
        let fitting = held.iter().find(|t| action.is_none_or(|a| has_action(def, t, a)));
        if let Some(task) = fitting.or(held.first()) {
            return Ok(task.id.clone());
        }
        let earlier = key.and_then(|_| case.tasks.iter().rev().filter(named).find(|t| t.assignment_of(by).is_some()));
        earlier.map(|t| t.id.clone()).ok_or_else(|| Error::NotAssignee(by.to_string()))
    }

    fn definition(&self, workflow: &str) -> Option<&'a Definition> {
        let defs: &'a [Definition] = self.sim.definitions;
        defs.iter().find(|d| d.id == workflow)
    }

    /// Reads the audit entries written since the last step into the coverage trace.
    fn trace_audit(&mut self) {
        for (case_id, entry) in &self.sim.audit[self.audited..] {
            let Some(case) = self.sim.cases.get(case_id) else { continue };
            if let Some(def) = self.definition(&case.workflow) {
                self.trace.read(def, case_id, entry);
            }
        }
        self.audited = self.sim.audit.len();
    }

    /// Renders the emails the last step sent, and returns them.
    fn render_new(&mut self) -> Vec<Rendered> {
        let from = self.rendered.len();
        let new: Vec<Option<Rendered>> = self.sim.mails[from..].iter().map(|m| self.render(m)).collect();
        self.rendered.extend(new);
        self.rendered[from..].iter().flatten().cloned().collect()
    }

    fn render(&self, mail: &Mail) -> Option<Rendered> {
        let case = self.sim.cases.get(&mail.case)?;
        let def = self.definition(&case.workflow)?;
        let task = mail.task.as_deref().and_then(|id| case.task(id));
        let wants_links = matches!(mail.kind, NoticeKind::TaskAssigned | NoticeKind::Reminder | NoticeKind::Escalation);
        let actions: Vec<(String, String, bool)> = match (task, wants_links) {
            (Some(task), true) => task_actions(def, task, mail.to.lang)
                .into_iter()
                .filter(|(id, _, _)| id != crate::mail::DELEGATE)
                .collect(),
            _ => Vec::new(),
        };
        let links = actions
            .iter()
            .map(|(id, label, comment_required)| render::ActionLink {
                label: label.clone(),
                url: format!("{BASE_URL}/d/{}-{id}", case.id),
                comment_required: *comment_required,
            })
            .collect();
        let compose = Compose {
            def,
            case,
            directory: self.sim.world.directory,
            frames: self.sim.world.frames,
            base_url: BASE_URL,
            sender_name: "Beslut",
        };
        let context = compose.context(task, &mail.to, links, mail.kind);
        let (subject, text, error) = match self.renderer.render(&mail.template, &context) {
            Ok(email) => (email.subject, email.text, None),
            Err(e) => (String::new(), String::new(), Some(format!("{}: {e}", mail.template))),
        };
        Some(Rendered {
            case: mail.case.clone(),
            to: mail.to.clone(),
            kind: mail.kind,
            subject,
            text,
            actions: actions.into_iter().map(|(id, label, _)| (id, label)).collect(),
            error,
        })
    }

    /// The emails of the current window, about `case`, rendered.
    fn window_mails(&self, case: &str) -> Vec<&Rendered> {
        self.rendered[self.window.0..].iter().flatten().filter(|m| m.case == case).collect()
    }

    fn window_events(&self, case: &str) -> Vec<&(String, Value)> {
        self.sim.events[self.window.1..].iter().filter(|(_, data)| data["case_id"] == case).collect()
    }

    fn check(&self, case_id: &str, e: &Expectation) -> Option<Problem> {
        let case = self.sim.case(case_id);
        let problem = |expected: String, actual: String| Some(Problem { pos: e.pos, expected, actual });
        match &e.check {
            Check::State(state) if &case.state != state => {
                problem(format!("state: {state}"), format!("state: {}", case.state))
            }
            Check::Outcome(outcome) => {
                let actual = match &case.status {
                    Status::Open => None,
                    Status::Closed { outcome, .. } => Some(*outcome),
                };
                (actual != *outcome).then(|| Problem {
                    pos: e.pos,
                    expected: format!("outcome: {}", outcome_word(*outcome)),
                    actual: format!("outcome: {}", outcome_word(actual)),
                })
            }
            Check::Tasks(expected) => {
                let mut expected = expected.clone();
                expected.sort();
                let actual = open_tasks(case);
                (actual != expected).then(|| Problem {
                    pos: e.pos,
                    expected: format!("tasks: {}", tasks_text(&expected)),
                    actual: format!("tasks: {}", tasks_text(&actual)),
                })
            }
            Check::Deadline { task, at } => {
                let found = case.open_tasks().find(|t| task_key(t) == *task);
                let actual = found.and_then(|t| t.deadline);
                (actual != Some(*at)).then(|| Problem {
                    pos: e.pos,
                    expected: format!("{task}: {} {}", self.t("frist", "due"), local(*at)),
                    actual: match (found, actual) {
                        (None, _) => format!("{} {task}", self.t("ingen öppen uppgift", "no open task")),
                        (Some(_), None) => format!("{task}: {}", self.t("ingen frist", "no deadline")),
                        (Some(_), Some(d)) => format!("{task}: {} {}", self.t("frist", "due"), local(d)),
                    },
                })
            }
            Check::Data { field, value } => {
                let actual = case.data.get(field).cloned().unwrap_or(Value::Null);
                (!same_value(value, &actual)).then(|| Problem {
                    pos: e.pos,
                    expected: format!("{field}: {value}"),
                    actual: format!("{field}: {actual}"),
                })
            }
            Check::Email(expected) => self.check_email(case_id, expected, e.pos),
            Check::NoEmailTo(who) => {
                let sent: Vec<&Rendered> =
                    self.window_mails(case_id).into_iter().filter(|m| is_party(&m.to, who)).collect();
                (!sent.is_empty()).then(|| Problem {
                    pos: e.pos,
                    expected: format!("{} {who}", self.t("ingen e-post till", "no email to")),
                    actual: sent.iter().map(|m| format!("«{}»", m.subject)).collect::<Vec<_>>().join(", "),
                })
            }
            Check::Events(expected) => self.check_events(case_id, expected, e.pos),
            Check::Ledger { ledger, portfolio, year, reserved, left } => {
                let frames = ledger_frames(self.sim.definitions, &case.workflow, ledger)?;
                let taken =
                    self.sim.reserved.get(&(frames.clone(), portfolio.clone(), *year)).copied().unwrap_or(0) / 100;
                let frame = self
                    .sim
                    .world
                    .frames
                    .iter()
                    .find(|(n, _)| *n == frames)
                    .and_then(|(_, p)| p.frame(portfolio, *year))
                    .unwrap_or(0);
                let ok = reserved.is_none_or(|r| r == taken) && left.is_none_or(|l| l == frame - taken);
                (!ok).then(|| Problem {
                    pos: e.pos,
                    expected: format!(
                        "{ledger} {portfolio} {year}:{}{}",
                        reserved.map(|r| format!(" reserved {r}")).unwrap_or_default(),
                        left.map(|l| format!(" left {l}")).unwrap_or_default()
                    ),
                    actual: format!("{ledger} {portfolio} {year}: reserved {taken}, left {}", frame - taken),
                })
            }
            Check::State(_) => None,
        }
    }

    fn check_email(&self, case_id: &str, expected: &EmailExpectation, pos: Pos) -> Option<Problem> {
        let sent = self.window_mails(case_id);
        let fits = |m: &Rendered| {
            is_party(&m.to, &expected.to)
                && expected.subject.as_ref().is_none_or(|s| m.subject.contains(s.as_str()))
                && expected.kind.as_ref().is_none_or(|k| kind_word(m.kind) == *k)
                && expected
                    .actions
                    .as_ref()
                    .is_none_or(|a| *a == m.actions.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
        };
        if sent.iter().any(|m| fits(m)) {
            return None;
        }
        let mut want = format!("{} {}", self.t("e-post till", "an email to"), expected.to);
        if let Some(s) = &expected.subject {
            want.push_str(&format!(", subject: «{s}»"));
        }
        if let Some(k) = &expected.kind {
            want.push_str(&format!(", kind: {k}"));
        }
        if let Some(a) = &expected.actions {
            want.push_str(&format!(", actions: [{}]", a.join(", ")));
        }
        let got: Vec<String> = sent.iter().map(|m| self.describe_mail(m)).collect();
        let none = self.t("ingen e-post om ärendet", "no emails about this case");
        let actual = if got.is_empty() { none.into() } else { got.join("\n") };
        Some(Problem { pos, expected: want, actual })
    }

    fn check_events(&self, case_id: &str, expected: &[(String, Map<String, Value>)], pos: Pos) -> Option<Problem> {
        let events = self.window_events(case_id);
        let mut rest = events.iter();
        let all_found = expected.iter().all(|(name, want)| {
            rest.by_ref().any(|(event, data)| {
                event == name
                    && want.iter().all(|(k, v)| {
                        let actual = data.get(k).or_else(|| data.get("data").and_then(|d| d.get(k)));
                        actual.is_some_and(|a| same_value(v, a))
                    })
            })
        });
        (!all_found).then(|| Problem {
            pos,
            expected: format!(
                "{}: {}",
                self.t("händelser i ordning", "events in order"),
                expected.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ),
            actual: events_text(&events, expected, self.lang),
        })
    }

    /// Where the case of `step` stands, for a failure report.
    fn where_case(&self, step: &Step) -> String {
        let Some(id) = self.case_id(step) else { return self.t("inget ärende startat", "no case started").into() };
        let case = self.sim.case(&id);
        let label = self
            .definition(&case.workflow)
            .and_then(|d| d.state(&case.state))
            .map(|s| s.label.sv.clone())
            .unwrap_or_default();
        let status = match &case.status {
            Status::Open => String::new(),
            Status::Closed { outcome, .. } => {
                format!(", {} ({})", self.t("avslutat", "closed"), outcome_word(Some(*outcome)))
            }
        };
        format!(
            "{} {} {} ({label}){status} {} {}; {}: {}",
            case.number,
            self.t("var i", "was in"),
            case.state,
            self.t("kl.", "at"),
            local(self.sim.now),
            self.t("öppna uppgifter", "open tasks"),
            tasks_text(&open_tasks(case))
        )
    }

    /// An email of the step that could not be rendered, as a failure of the step.
    fn unrenderable(&self, mail: &Rendered, pos: Pos) -> Option<Problem> {
        let error = mail.error.as_ref()?;
        let to = mail.to.person.as_deref().unwrap_or(&mail.to.email);
        Some(Problem {
            pos,
            expected: format!("{} {to}", self.t("e-post som går att skapa till", "an email that can be rendered to")),
            actual: error.clone(),
        })
    }

    fn t(&self, sv: &'static str, en: &'static str) -> &'static str {
        if self.lang == Lang::Sv { sv } else { en }
    }

    fn no_case(&self, pos: Pos) -> Problem {
        let actual = self.t("inget ärende har startats", "no case has been started");
        Problem { pos, expected: self.t("ett ärende", "a case").into(), actual: actual.into() }
    }

    /// A refusal as a person reads it; invalid data lists each field and what is wrong with it.
    fn refusal(&self, e: &Error) -> String {
        let refused = self.t("vägrades", "refused");
        match e {
            Error::InvalidData(problems) => {
                let message = |p: &beslut_engine::runtime::validate::Problem| {
                    if self.lang == Lang::Sv { p.message.sv.clone() } else { p.message.en.clone() }
                };
                let fields: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, message(p))).collect();
                format!("{refused} (invalid-data): {}", fields.join("; "))
            }
            other => format!("{refused} ({}): {other}", other.code()),
        }
    }

    fn describe_mail(&self, m: &Rendered) -> String {
        let who = m.to.person.clone().unwrap_or_else(|| m.to.email.clone());
        let actions: Vec<&str> = m.actions.iter().map(|(id, _)| id.as_str()).collect();
        format!(
            "{} {who} ({}): «{}» actions: [{}]",
            self.t("till", "to"),
            kind_word(m.kind),
            m.subject,
            actions.join(", ")
        )
    }
}

fn task_key(task: &Task) -> String {
    match &task.branch {
        Some(b) => format!("{}.{b}", task.state),
        None => task.state.clone(),
    }
}

fn has_action(def: Option<&Definition>, task: &Task, action: &str) -> bool {
    let Some(state) = def.and_then(|d| d.state(&task.state)) else { return false };
    beslut_engine::runtime::apply::task_def(state, task.branch.as_deref())
        .is_some_and(|t| t.actions.iter().any(|a| a.id == action))
}

/// The open tasks of a case with their holders, sorted, as scenarios write them.
fn open_tasks(case: &Case) -> Vec<(String, Vec<Holder>)> {
    let mut out: Vec<(String, Vec<Holder>)> = case
        .open_tasks()
        .map(|t| {
            let mut holders: Vec<Holder> = t
                .assignees
                .iter()
                .map(|a| Holder {
                    person: a.party.person.clone().unwrap_or_else(|| a.party.email.clone()),
                    on_behalf_of: a.on_behalf_of.clone(),
                })
                .collect();
            holders.sort();
            (task_key(t), holders)
        })
        .collect();
    out.sort();
    out
}

fn tasks_text(tasks: &[(String, Vec<Holder>)]) -> String {
    if tasks.is_empty() {
        return "-".into();
    }
    tasks
        .iter()
        .map(|(key, holders)| {
            format!("{key} → {}", holders.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_party(party: &Party, who: &str) -> bool {
    party.person.as_deref() == Some(who) || party.email.eq_ignore_ascii_case(who)
}

/// Values as a person means them: `1500000` and `1500000.0` are the same amount.
fn same_value(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == actual,
    }
}

fn outcome_word(outcome: Option<beslut_engine::runtime::OutcomeId>) -> String {
    match outcome {
        None => "open".into(),
        Some(o) => serde_json::to_value(o).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
    }
}

pub fn kind_word(kind: NoticeKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The events of the window; those the expectation names are shown with their data, so that
/// a wrong value can be seen.
fn events_text(events: &[&(String, Value)], expected: &[(String, Map<String, Value>)], lang: Lang) -> String {
    let lines: Vec<String> = events
        .iter()
        .map(|(name, data)| {
            let wanted = expected.iter().any(|(n, want)| n == name && !want.is_empty());
            if wanted { format!("{name} {}", data.get("data").unwrap_or(data)) } else { name.clone() }
        })
        .collect();
    let word = if lang == Lang::Sv { "händelser" } else { "events" };
    format!("{word}: {}", lines.join("\n"))
}
