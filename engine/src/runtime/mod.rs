//! The pure runtime core: `apply(world, definition, case, envelope) -> Transition`.
//!
//! Nothing here does I/O or reads the clock: time arrives in the [`Envelope`], people and
//! frames in the [`World`]. A [`Transition`] is the new case plus the [`Effect`]s to carry out
//! (emails, timers, events, calls, ledger reservations, audit entries); the service layer
//! writes them in one transaction, so a crash can never keep half of a decision.
//!
//! - [`apply`](apply::apply): commands to transitions.
//! - [`assign`]: who gets a task (roles, scopes, substitutes) and when it is due.
//! - [`sim`]: an in-memory driver with a fake clock, for tests and scenarios.
//! - [`validate`]: case data and form data against their fields.

pub mod apply;
pub mod assign;
pub mod sim;
pub mod validate;

#[cfg(test)]
mod tests;

use crate::definition::model::Outcome;
use crate::directory::Directory;
use crate::portfolios::Portfolios;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use apply::apply;

/// What the core may consult besides the case: the directory and the budget frames.
pub struct World<'a> {
    pub directory: &'a Directory,
    pub frames: &'a [(String, Portfolios)],
}

/// A person or address that acts or receives: a directory person, or an outside address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The directory id, when the party is in the directory.
    pub person: Option<String>,
    pub email: String,
    pub name: String,
    pub lang: crate::diagnostic::Lang,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    Open,
    Closed { outcome: OutcomeId, closed_at: Timestamp },
}

/// An outcome as stored (`approved`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeId {
    Approved,
    Rejected,
    Withdrawn,
    Completed,
    Cancelled,
}

impl From<Outcome> for OutcomeId {
    fn from(o: Outcome) -> OutcomeId {
        match o {
            Outcome::Approved => OutcomeId::Approved,
            Outcome::Rejected => OutcomeId::Rejected,
            Outcome::Withdrawn => OutcomeId::Withdrawn,
            Outcome::Completed => OutcomeId::Completed,
            Outcome::Cancelled => OutcomeId::Cancelled,
        }
    }
}

impl From<OutcomeId> for Outcome {
    fn from(o: OutcomeId) -> Outcome {
        match o {
            OutcomeId::Approved => Outcome::Approved,
            OutcomeId::Rejected => Outcome::Rejected,
            OutcomeId::Withdrawn => Outcome::Withdrawn,
            OutcomeId::Completed => Outcome::Completed,
            OutcomeId::Cancelled => Outcome::Cancelled,
        }
    }
}

/// A case: one run of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    /// The registry number, e.g. `IT 2026/0042`.
    pub number: String,
    pub workflow: String,
    /// The SHA-256 of the definition version the case started on; it runs on that version
    /// to its end.
    pub definition_hash: String,
    pub state: String,
    /// How many times a state has been entered; timers carry it so that a timer from an
    /// earlier visit of the same state is recognised as stale.
    pub entry: u32,
    pub status: Status,
    pub data: Map<String, Value>,
    pub started_by: Party,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
    /// Every task the case has had, open and closed, in order.
    pub tasks: Vec<Task>,
    /// Set while the case waits in a `wait`, `call` or `subworkflow` state.
    pub waiting: Option<Waiting>,
    pub parent: Option<ParentLink>,
    /// Incremented by every transition; the store refuses a write based on an older version.
    pub version: i64,
}

impl Case {
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn open_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| t.closed.is_none())
    }

    pub fn is_open(&self) -> bool {
        self.status == Status::Open
    }
}

/// A case started by another case's `subworkflow` state, and where the parent waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    pub case_id: String,
    pub state: String,
    pub entry: u32,
}

/// What a case waits for outside itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Waiting {
    /// A signal arriving by `POST /hooks/signal/{key}`.
    Signal { name: String, key: String },
    /// A date or a duration.
    Time,
    /// The answer of an external call.
    Call { request_id: String },
    /// A sub-case's outcome.
    Subcase { case_id: String },
}

/// One human task: a task state, or one branch of a parallel review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub state: String,
    /// The state's entry count when the task was opened.
    pub entry: u32,
    pub branch: Option<String>,
    pub assignees: Vec<Assignment>,
    pub opened_at: Timestamp,
    pub deadline: Option<Timestamp>,
    pub escalated: bool,
    pub decision: Option<Decision>,
    pub closed: Option<Closed>,
}

impl Task {
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// The assignment through which `actor` (a person id or an address) may act on this task.
    pub fn assignment_of(&self, actor: &str) -> Option<&Assignment> {
        self.assignees
            .iter()
            .find(|a| a.party.person.as_deref() == Some(actor) || a.party.email.eq_ignore_ascii_case(actor))
    }
}

/// A person a task is assigned to, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub party: Party,
    /// The person this one acts for: the absent person they substitute, or the person who
    /// delegated the task.
    pub on_behalf_of: Option<String>,
    pub via: Via,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Assigned by the workflow.
    Workflow,
    /// Standing in for an absent person.
    Substitute,
    /// Handed the task by its assignee.
    Delegation,
    /// Given the task when its deadline passed.
    Escalation,
}

/// How a task was decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: String,
    pub action_label: String,
    /// Who decided: a person id or address, or `system` for a timeout.
    pub by: String,
    pub by_name: String,
    pub on_behalf_of: Option<String>,
    pub at: Timestamp,
    pub comment: Option<String>,
    pub form: Map<String, Value>,
    pub vote: Option<bool>,
    pub channel: Channel,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Closed {
    Decided,
    /// Closed because the state was left another way (review settled, withdrawn, override).
    Cancelled,
    /// The deadline passed and `on_timeout` moved the case on.
    TimedOut,
}

/// Where a command came from, for the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    EmailLink,
    Web,
    Api,
    Webhook,
    Cli,
    Admin,
    Timer,
    System,
}

/// A command with when and where it arrived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub command: Command,
    pub channel: Channel,
    pub at: Timestamp,
    /// IP, user agent, the address a link was sent to, the hash of the page shown: whatever
    /// the channel knows, recorded with the decision.
    #[serde(default)]
    pub origin: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    /// Starts a case; the store allocates `id` and `number` in the same transaction.
    Start {
        id: String,
        number: String,
        definition_hash: String,
        data: Map<String, Value>,
        starter: Party,
    },
    Decide {
        task: String,
        actor: String,
        action: String,
        comment: Option<String>,
        form: Map<String, Value>,
    },
    Delegate {
        task: String,
        actor: String,
        to: String,
        comment: Option<String>,
    },
    Signal {
        name: String,
        payload: Value,
    },
    Timer {
        timer: Timer,
    },
    SubcaseFinished {
        case_id: String,
        outcome: OutcomeId,
    },
    CallAnswered {
        request_id: String,
        ok: bool,
        response: Value,
    },
    Withdraw {
        actor: String,
        comment: Option<String>,
    },
    Override {
        admin: String,
        reason: String,
        to: String,
    },
}

/// A timer the core asked for, fired back to it as [`Command::Timer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "timer")]
pub enum Timer {
    Deadline {
        task: String,
    },
    Reminder {
        task: String,
        index: usize,
    },
    /// The end of a `wait` (its `until`/`for`, or its `timeout`).
    Wait {
        state: String,
        entry: u32,
        timeout: bool,
    },
}

impl Timer {
    /// A stable key: scheduling the same timer twice replaces it, and cancelling finds it.
    pub fn key(&self, case_id: &str) -> String {
        match self {
            Timer::Deadline { task } => format!("{case_id}/{task}/deadline"),
            Timer::Reminder { task, index } => format!("{case_id}/{task}/reminder/{index}"),
            Timer::Wait { state, entry, timeout } => {
                format!("{case_id}/{state}/{entry}/{}", if *timeout { "timeout" } else { "wait" })
            }
        }
    }
}

/// Why an email goes out; picks the default template and the audit wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    TaskAssigned,
    Reminder,
    Escalation,
    Delegated,
    TaskClosed,
    CaseDecided,
    Custom,
}

/// Something the service must do after committing the transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    Notify {
        kind: NoticeKind,
        template: String,
        to: Party,
        task: Option<String>,
    },
    ScheduleTimer {
        key: String,
        at: Timestamp,
        timer: Timer,
    },
    CancelTimer {
        key: String,
    },
    /// An outbound event for webhook subscribers (`case.started`, `task.decided`, or a
    /// workflow's own `emit`).
    Emit {
        event: String,
        data: Value,
    },
    Call {
        request_id: String,
        method: String,
        url: String,
        body: Value,
        retries: u32,
        wait_for_callback: bool,
    },
    /// Reserve `amount` kronor in a frame; the store refuses the whole transition if the
    /// frame would be exceeded.
    Reserve {
        ledger: String,
        frames: String,
        portfolio: String,
        year: i32,
        amount: i64,
    },
    StartSubcase {
        workflow: String,
        data: Map<String, Value>,
        parent: ParentLink,
    },
    /// Tell the parent case this sub-case ended.
    FinishParent {
        parent: ParentLink,
        case_id: String,
        outcome: OutcomeId,
    },
    Audit(AuditEntry),
}

/// One line of the audit trail; the store chains them with hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// Who: a person id, an address, `system` or `timer`.
    pub actor: String,
    pub channel: Channel,
    /// What, as a stable word: `case.started`, `task.assigned`, `task.decided`, …
    pub what: String,
    /// The data it was decided on, and the origin of the request.
    pub detail: Value,
}

/// The result of applying a command.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub case: Case,
    pub effects: Vec<Effect>,
}

impl Transition {
    /// True when the command changed nothing (a stale timer, say).
    pub fn is_noop(&self, before: &Case) -> bool {
        self.effects.is_empty() && &self.case == before
    }
}

/// Why a command was refused. Messages are for the person who sent it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("the case data is not valid: {0:?}")]
    InvalidData(Vec<validate::Problem>),
    #[error("no task {0} in this case")]
    NoSuchTask(String),
    #[error("the task was already decided by {by} at {at}: {action}")]
    AlreadyDecided { by: String, at: Timestamp, action: String },
    #[error("the task is closed")]
    TaskClosed,
    #[error("{0} is not assigned this task")]
    NotAssignee(String),
    #[error("the task has no action {0}")]
    NoSuchAction(String),
    #[error("a comment is required for this action")]
    CommentRequired,
    #[error("the case is closed")]
    CaseClosed,
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("nobody holds the role {role}{}", scope.as_ref().map(|s| format!(" for {s}")).unwrap_or_default())]
    NoAssignee { role: String, scope: Option<String> },
    #[error("the case does not wait for this")]
    NotWaiting,
    #[error("expression {expr}: {message}")]
    Expression { expr: String, message: String },
    #[error("the workflow loops through automatic states without stopping")]
    Loop,
    #[error("the state {0} does not exist")]
    NoSuchState(String),
    #[error("the case exists already")]
    AlreadyStarted,
    #[error("the frame of {portfolio} {year} has {left} öre left")]
    FrameExceeded { portfolio: String, year: i32, left: i64 },
}

impl Error {
    /// A stable kebab-case code for the refusal: the API's problem `code`, and what scenario
    /// files expect with `refused:`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidData(_) => "invalid-data",
            Error::NoSuchTask(_) => "no-such-task",
            Error::AlreadyDecided { .. } => "already-decided",
            Error::TaskClosed => "task-closed",
            Error::NotAssignee(_) => "not-assignee",
            Error::NoSuchAction(_) => "no-such-action",
            Error::CommentRequired => "comment-required",
            Error::CaseClosed => "case-closed",
            Error::NotAllowed(_) => "not-allowed",
            Error::NoAssignee { .. } => "no-assignee",
            Error::NotWaiting => "not-waiting",
            Error::FrameExceeded { .. } => "frame-exceeded",
            Error::AlreadyStarted => "already-started",
            Error::Expression { .. } | Error::Loop | Error::NoSuchState(_) => "workflow-error",
        }
    }
}
