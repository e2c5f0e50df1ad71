//! A workflow as the engine sees it, after parsing. Every reference keeps its position so the
//! checker can point at it.

use crate::diagnostic::Lang;
use crate::duration::Duration;
use crate::yaml::Pos;

/// A label or text in Swedish, optionally with an English version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text {
    pub sv: String,
    pub en: Option<String>,
}

impl Text {
    pub fn plain(sv: impl Into<String>) -> Text {
        Text { sv: sv.into(), en: None }
    }

    /// The text in `lang`, falling back to Swedish.
    pub fn get(&self, lang: Lang) -> &str {
        match (lang, &self.en) {
            (Lang::En, Some(en)) => en,
            _ => &self.sv,
        }
    }
}

/// A name that refers to something defined elsewhere, and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub pos: Pos,
}

/// A CEL expression and where it was written; compiled and checked by the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub source: String,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct Definition {
    /// The file name without `.yaml`.
    pub id: String,
    pub name: Text,
    pub description: Option<Text>,
    pub series: String,
    pub title: Option<Template>,
    pub start: Ref,
    pub withdraw_to: Option<Ref>,
    pub data: Vec<Field>,
    pub ledgers: Vec<Ledger>,
    /// How a case is started by `POST /hooks/start/{workflow}`, if it may be.
    pub webhook: Option<Webhook>,
    pub states: Vec<State>,
}

/// Starting a case from another system's webhook: who sends it, and how its JSON body (named
/// `payload` in the expressions) becomes the case's starter and data.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// The sender, whose secret is configured in beslut.toml under `[sources.NAME]`.
    pub source: String,
    pub pos: Pos,
    /// A person id from the directory or an email address.
    pub starter: Expr,
    pub data: Vec<(Ref, Expr)>,
}

/// An inline Handlebars template string and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub pos: Pos,
}

impl Definition {
    pub fn state(&self, id: &str) -> Option<&State> {
        self.states.iter().find(|s| s.id == id)
    }

    /// Every field a case of this workflow can hold: the data fields, then each task's form
    /// fields in state order. A form field repeated in several tasks appears once.
    pub fn all_fields(&self) -> Vec<&Field> {
        let mut fields: Vec<&Field> = self.data.iter().collect();
        for task in self.states.iter().flat_map(State::tasks) {
            for field in &task.form {
                if !fields.iter().any(|f| f.id == field.id) {
                    fields.push(field);
                }
            }
        }
        fields
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Number,
    Money,
    Date,
    Boolean,
    Enum,
    Email,
    Person,
    List,
}

impl FieldType {
    pub const ALL: [(&'static str, FieldType); 9] = [
        ("text", FieldType::Text),
        ("number", FieldType::Number),
        ("money", FieldType::Money),
        ("date", FieldType::Date),
        ("boolean", FieldType::Boolean),
        ("enum", FieldType::Enum),
        ("email", FieldType::Email),
        ("person", FieldType::Person),
        ("list", FieldType::List),
    ];

    pub fn name(self) -> &'static str {
        FieldType::ALL.iter().find(|(_, t)| *t == self).map_or("text", |(n, _)| n)
    }
}

/// Where an enum takes its values from, instead of listing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValuesFrom {
    Forvaltningar,
    Portfolios,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumValue {
    pub id: String,
    pub label: Text,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub id: String,
    pub pos: Pos,
    pub kind: FieldType,
    pub label: Text,
    pub help: Option<Text>,
    pub required: bool,
    pub default: Option<serde_json::Value>,
    pub values: Vec<EnumValue>,
    pub values_from: Option<ValuesFrom>,
    pub items: Option<FieldType>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub multiline: bool,
}

#[derive(Clone, Debug)]
pub struct Ledger {
    pub id: String,
    pub pos: Pos,
    pub label: Text,
    pub frames: Ref,
    pub key: Vec<Ref>,
}

#[derive(Clone, Debug)]
pub struct State {
    pub id: String,
    pub pos: Pos,
    pub label: Text,
    pub description: Option<Text>,
    pub kind: StateKind,
}

#[derive(Clone, Debug)]
pub enum StateKind {
    Task(Task),
    Parallel(Parallel),
    Choice(Choice),
    Auto(Auto),
    Call(Call),
    Wait(Wait),
    Subworkflow(Subworkflow),
    End(End),
}

impl StateKind {
    pub const NAMES: [&'static str; 8] = ["task", "parallel", "choice", "auto", "call", "wait", "subworkflow", "end"];

    pub fn name(&self) -> &'static str {
        match self {
            StateKind::Task(_) => "task",
            StateKind::Parallel(_) => "parallel",
            StateKind::Choice(_) => "choice",
            StateKind::Auto(_) => "auto",
            StateKind::Call(_) => "call",
            StateKind::Wait(_) => "wait",
            StateKind::Subworkflow(_) => "subworkflow",
            StateKind::End(_) => "end",
        }
    }
}

impl State {
    /// The human tasks of this state: one for a task, one per branch for a parallel review.
    pub fn tasks(&self) -> Vec<&Task> {
        match &self.kind {
            StateKind::Task(task) => vec![task],
            StateKind::Parallel(parallel) => parallel.branches.iter().map(|b| &b.task).collect(),
            _ => Vec::new(),
        }
    }

    /// Every state this state can lead to, with a short label for the edge.
    pub fn successors(&self) -> Vec<(&Ref, String)> {
        self.edges().into_iter().map(|e| (e.to, e.label)).collect()
    }

    /// Every arrow out of this state, each with a key (`via`) that is unique within the state:
    /// an action id, `timeout`, `approved`/`rejected`, `when-N`/`otherwise`, `next`, `failure`
    /// or a sub-case outcome. Scenario coverage and the mutation test name arrows by it.
    pub fn edges(&self) -> Vec<Edge<'_>> {
        let edge = |via: &str, to, label: &str| Edge { via: via.to_string(), to, label: label.to_string() };
        let mut out = Vec::new();
        match &self.kind {
            StateKind::Task(task) => {
                for action in &task.actions {
                    if let ActionTarget::To(to) = &action.target {
                        out.push(edge(&action.id, to, &action.label.sv));
                    }
                }
                if let Some(Timeout::Goto(to)) = &task.on_timeout {
                    out.push(edge("timeout", to, "tidsgräns"));
                }
            }
            StateKind::Parallel(p) => {
                out.push(edge("approved", &p.on_approved, "tillstyrkt"));
                out.push(edge("rejected", &p.on_rejected, "avstyrkt"));
            }
            StateKind::Choice(c) => {
                for (i, (expr, to)) in c.when.iter().enumerate() {
                    out.push(edge(&format!("when-{}", i + 1), to, &expr.source));
                }
                if let Some(otherwise) = &c.otherwise {
                    out.push(edge("otherwise", otherwise, "annars"));
                }
            }
            StateKind::Auto(a) => out.push(edge("next", &a.next, "")),
            StateKind::Call(c) => {
                out.push(edge("next", &c.next, ""));
                if let Some(f) = &c.on_failure {
                    out.push(edge("failure", f, "misslyckades"));
                }
            }
            StateKind::Wait(w) => {
                out.push(edge("next", &w.next, ""));
                if let Some(t) = &w.on_timeout {
                    out.push(edge("timeout", t, "tidsgräns"));
                }
            }
            StateKind::Subworkflow(s) => {
                for (outcome, to) in &s.outcomes {
                    out.push(edge(outcome.id(), to, outcome.label(Lang::Sv)));
                }
                if let Some(o) = &s.otherwise {
                    out.push(edge("otherwise", o, "annars"));
                }
            }
            StateKind::End(_) => {}
        }
        out
    }
}

/// An arrow from a state to the state it leads to.
#[derive(Clone, Debug)]
pub struct Edge<'a> {
    /// What takes the arrow, unique within the state (see [`State::edges`]).
    pub via: String,
    pub to: &'a Ref,
    /// A short Swedish label for drawings.
    pub label: String,
}

/// Who a task goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    /// Everyone with the role; with a scope, only those holding it for the förvaltning named in
    /// that case field.
    Role { role: Ref, scope: Option<Ref> },
    /// The person (or address) in a case field.
    Field(Ref),
    /// One named person.
    Person(Ref),
    /// The person who started the case.
    Starter,
}

#[derive(Clone, Debug)]
pub struct Task {
    pub pos: Pos,
    pub assignee: Option<Assignee>,
    pub actions: Vec<Action>,
    pub form: Vec<Field>,
    pub deadline: Option<Duration>,
    pub reminders: Vec<Duration>,
    pub on_timeout: Option<Timeout>,
    pub email: Ref,
    pub delegable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentRule {
    Required,
    Optional,
    None,
}

#[derive(Clone, Debug)]
pub enum ActionTarget {
    /// A task's action leads to a state.
    To(Ref),
    /// A review branch's action is a vote.
    Vote(bool),
    /// Not given (already reported).
    Missing,
}

#[derive(Clone, Debug)]
pub struct Action {
    pub id: String,
    pub pos: Pos,
    pub label: Text,
    pub target: ActionTarget,
    pub comment: CommentRule,
    /// The form fields this action asks for; `None` means all of them.
    pub fields: Option<Vec<Ref>>,
    pub set: Vec<(Ref, Expr)>,
    pub reserve: Option<Reserve>,
}

#[derive(Clone, Debug)]
pub struct Reserve {
    pub ledger: Ref,
    pub amount: Expr,
}

#[derive(Clone, Debug)]
pub enum Timeout {
    Escalate { to: Assignee, deadline: Option<Duration> },
    Action(Ref),
    Goto(Ref),
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub id: String,
    pub pos: Pos,
    pub label: Text,
    pub task: Task,
}

/// How many `yes` votes a review needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinRule {
    All,
    Any,
    /// `N of M`: M is what the author counted, checked against the number of branches.
    AtLeast {
        needed: usize,
        of: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Join {
    pub rule: JoinRule,
    pub pos: Pos,
}

impl Join {
    /// The number of `yes` votes that approve a review of `branches` branches.
    pub fn needed(&self, branches: usize) -> usize {
        match self.rule {
            JoinRule::All => branches,
            JoinRule::Any => 1,
            JoinRule::AtLeast { needed, .. } => needed,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Parallel {
    pub branches: Vec<Branch>,
    pub join: Option<Join>,
    pub veto: bool,
    pub on_approved: Ref,
    pub on_rejected: Ref,
}

#[derive(Clone, Debug)]
pub struct Choice {
    pub when: Vec<(Expr, Ref)>,
    pub otherwise: Option<Ref>,
}

/// Who a notification goes to.
#[derive(Clone, Debug)]
pub enum Recipient {
    Starter,
    Assignee(Assignee),
}

#[derive(Clone, Debug)]
pub enum Step {
    Set(Vec<(Ref, Expr)>),
    Notify { template: Ref, to: Recipient },
    Emit { event: String, pos: Pos, data: Vec<(Ref, Expr)> },
}

#[derive(Clone, Debug)]
pub struct Auto {
    pub steps: Vec<Step>,
    pub next: Ref,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub url: Template,
    pub body: Vec<(Ref, Expr)>,
    pub wait_for_callback: bool,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub store: Vec<(Ref, Expr)>,
    pub next: Ref,
    pub on_failure: Option<Ref>,
}

#[derive(Clone, Debug)]
pub enum WaitFor {
    Signal { name: String, key: Option<Expr> },
    Until(Expr),
    For(Duration),
}

#[derive(Clone, Debug)]
pub struct Wait {
    pub wait_for: WaitFor,
    pub store: Vec<(Ref, Expr)>,
    pub timeout: Option<Duration>,
    pub on_timeout: Option<Ref>,
    pub next: Ref,
}

#[derive(Clone, Debug)]
pub struct Subworkflow {
    pub workflow: Ref,
    pub data: Vec<(Ref, Expr)>,
    pub outcomes: Vec<(Outcome, Ref)>,
    pub otherwise: Option<Ref>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Approved,
    Rejected,
    Withdrawn,
    Completed,
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Approved, Outcome::Rejected, Outcome::Withdrawn, Outcome::Completed, Outcome::Cancelled];

    pub fn id(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
            Outcome::Withdrawn => "withdrawn",
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(id: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.id() == id)
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Outcome::Approved, Lang::Sv) => "bifallen",
            (Outcome::Rejected, Lang::Sv) => "avslagen",
            (Outcome::Withdrawn, Lang::Sv) => "återtagen",
            (Outcome::Completed, Lang::Sv) => "genomförd",
            (Outcome::Cancelled, Lang::Sv) => "avbruten",
            (o, Lang::En) => o.id(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct End {
    pub outcome: Option<Outcome>,
    pub notify_starter: bool,
}
