//! Coverage: which states, actions and transitions (arrows of `beslut graph`) the scenarios
//! went through, read from the audit trail the core writes, so it measures what really
//! happened rather than what a scenario claims.

use beslut_engine::definition::model::Definition;
use beslut_engine::graph::Highlight;
use beslut_engine::runtime::AuditEntry;
use std::collections::{BTreeMap, BTreeSet};

/// What the scenarios did, per workflow.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Per workflow: states entered, actions taken (`state.action` or `state.branch.action`),
    /// arrows taken (state, via).
    pub workflows: BTreeMap<String, Taken>,
    /// Per case: the state it is in and the last hint of how it will leave it.
    cases: BTreeMap<String, Position>,
}

#[derive(Clone, Debug, Default)]
pub struct Taken {
    pub states: BTreeSet<String>,
    pub actions: BTreeSet<String>,
    pub edges: BTreeSet<(String, String)>,
}

#[derive(Clone, Debug, Default)]
struct Position {
    state: Option<String>,
    /// What moved the case out of its state: an action id, `approved`/`rejected`, `timeout`,
    /// `failure`; `None` for a withdrawal or an override, which follow no arrow.
    hint: Option<String>,
    off_graph: bool,
}

impl Trace {
    /// Reads one audit entry of a case of `def`.
    pub fn read(&mut self, def: &Definition, case_id: &str, entry: &AuditEntry) {
        let taken = self.workflows.entry(def.id.clone()).or_default();
        let position = self.cases.entry(case_id.to_string()).or_default();
        let detail = &entry.detail;
        let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_string);
        match entry.what.as_str() {
            "task.decided" => {
                let (Some(state), Some(action)) = (text("state"), text("action")) else { return };
                let key = match text("branch") {
                    Some(branch) => format!("{state}.{branch}.{action}"),
                    None => format!("{state}.{action}"),
                };
                taken.actions.insert(key);
                position.hint = Some(action);
            }
            "review.settled" => {
                let approved = detail.get("approved").and_then(|v| v.as_bool()).unwrap_or(false);
                position.hint = Some(if approved { "approved" } else { "rejected" }.into());
            }
            "task.timed_out" | "wait.timed_out" | "call.timed_out" => position.hint = Some("timeout".into()),
            "call.failed" => position.hint = Some("failure".into()),
            "choice.made" => position.hint = text("via"),
            "case.withdrawn" | "case.overridden" => position.off_graph = true,
            "state.entered" => {
                let Some(to) = text("state") else { return };
                if let (Some(from), false) = (&position.state, position.off_graph)
                    && let Some(via) = edge_taken(def, from, &to, position.hint.as_deref())
                {
                    taken.edges.insert((from.clone(), via));
                }
                taken.states.insert(to.clone());
                *position = Position { state: Some(to), hint: None, off_graph: false };
            }
            _ => {}
        }
    }

    pub fn merge(&mut self, other: &Trace) {
        for (workflow, t) in &other.workflows {
            let mine = self.workflows.entry(workflow.clone()).or_default();
            mine.states.extend(t.states.iter().cloned());
            mine.actions.extend(t.actions.iter().cloned());
            mine.edges.extend(t.edges.iter().cloned());
        }
    }
}

/// The arrow from `from` to `to`: the one the hint names, else the only one, else the first
/// (two guards of one choice leading to the same state cannot be told apart afterwards).
fn edge_taken(def: &Definition, from: &str, to: &str, hint: Option<&str>) -> Option<String> {
    let state = def.state(from)?;
    let edges: Vec<_> = state.edges().into_iter().filter(|e| e.to.name == to).collect();
    edges.iter().find(|e| Some(e.via.as_str()) == hint).or(edges.first()).map(|e| e.via.clone())
}

/// A workflow's coverage: everything there is, and what was not reached.
#[derive(Clone, Debug)]
pub struct Coverage {
    pub workflow: String,
    pub states: (usize, usize),
    pub actions: (usize, usize),
    pub transitions: (usize, usize),
    pub missed_states: Vec<String>,
    pub missed_actions: Vec<String>,
    /// (from, via, to, line)
    pub missed_edges: Vec<(String, String, String, u32)>,
}

impl Coverage {
    pub fn of(def: &Definition, taken: Option<&Taken>) -> Coverage {
        let empty = Taken::default();
        let taken = taken.unwrap_or(&empty);
        let states: Vec<String> = def.states.iter().map(|s| s.id.clone()).collect();
        let actions = all_actions(def);
        let edges: Vec<(String, String, String, u32)> = def
            .states
            .iter()
            .flat_map(|s| s.edges().into_iter().map(|e| (s.id.clone(), e.via, e.to.name.clone(), e.to.pos.line)))
            .filter(|(_, _, to, _)| def.state(to).is_some())
            .collect();
        let missed_states: Vec<String> = states.iter().filter(|s| !taken.states.contains(*s)).cloned().collect();
        let missed_actions: Vec<String> = actions.iter().filter(|a| !taken.actions.contains(*a)).cloned().collect();
        let missed_edges: Vec<_> =
            edges.iter().filter(|(f, v, _, _)| !taken.edges.contains(&(f.clone(), v.clone()))).cloned().collect();
        Coverage {
            workflow: def.id.clone(),
            states: (states.len() - missed_states.len(), states.len()),
            actions: (actions.len() - missed_actions.len(), actions.len()),
            transitions: (edges.len() - missed_edges.len(), edges.len()),
            missed_states,
            missed_actions,
            missed_edges,
        }
    }

    /// The lower of state and transition coverage, in per cent (what `--min-coverage` checks).
    pub fn lowest(&self) -> f64 {
        percent(self.states).min(percent(self.transitions))
    }

    /// The graph highlight: reached states filled, the rest and missed arrows in red.
    pub fn highlight(&self, def: &Definition) -> Highlight {
        Highlight {
            current: Vec::new(),
            visited: def.states.iter().map(|s| s.id.clone()).filter(|s| !self.missed_states.contains(s)).collect(),
            uncovered_states: self.missed_states.clone(),
            uncovered_edges: self.missed_edges.iter().map(|(f, v, _, _)| (f.clone(), v.clone())).collect(),
            ..Highlight::default()
        }
    }
}

/// Every action of every task, as `state.action` or `state.branch.action`.
fn all_actions(def: &Definition) -> Vec<String> {
    use beslut_engine::definition::model::StateKind;
    let mut out = Vec::new();
    for state in &def.states {
        match &state.kind {
            StateKind::Task(t) => out.extend(t.actions.iter().map(|a| format!("{}.{}", state.id, a.id))),
            StateKind::Parallel(p) => {
                for b in &p.branches {
                    out.extend(b.task.actions.iter().map(|a| format!("{}.{}.{}", state.id, b.id, a.id)));
                }
            }
            _ => {}
        }
    }
    out
}

pub fn percent((done, all): (usize, usize)) -> f64 {
    if all == 0 { 100.0 } else { done as f64 * 100.0 / all as f64 }
}
