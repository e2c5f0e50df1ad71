//! Commands to transitions. Every path through here is pure: same inputs, same output.

use super::assign::{self, party};
use super::validate;
use super::*;
use crate::definition::model::{
    self as m, Action, ActionTarget, CommentRule, Definition, Recipient, State, StateKind, Step, Timeout, WaitFor,
};
use crate::expr;
use serde_json::json;

/// How many automatic states (choices, auto steps) one command may pass through; a workflow
/// whose choices loop without a task in between would otherwise never stop.
const MAX_HOPS: usize = 100;

/// Applies one command to a case (`None` only for [`Command::Start`]).
pub fn apply(world: &World, def: &Definition, case: Option<&Case>, env: &Envelope) -> Result<Transition, Error> {
    let mut run = match (&env.command, case) {
        (Command::Start { .. }, Some(_)) => return Err(Error::AlreadyStarted),
        (Command::Start { id, number, definition_hash, data, starter }, None) => {
            return start(world, def, env, id, number, definition_hash, data, starter);
        }
        (_, None) => return Err(Error::NotAllowed("the case does not exist".into())),
        (_, Some(case)) if !case.is_open() => return Err(Error::CaseClosed),
        (_, Some(case)) => Run { world, def, case: case.clone(), effects: Vec::new(), env },
    };
    match &env.command {
        Command::Start { .. } => unreachable!("handled above"),
        Command::Decide { task, actor, action, comment, form } => {
            run.decide(task, actor, action, comment.as_deref(), form)?
        }
        Command::Delegate { task, actor, to, comment } => run.delegate(task, actor, to, comment.as_deref())?,
        Command::Signal { name, payload } => run.signal(name, payload)?,
        Command::Timer { timer } => run.timer(timer)?,
        Command::SubcaseFinished { case_id, outcome } => run.subcase_finished(case_id, *outcome)?,
        Command::CallAnswered { request_id, ok, response } => run.call_answered(request_id, *ok, response)?,
        Command::Withdraw { actor, comment } => run.withdraw(actor, comment.as_deref())?,
        Command::Override { admin, reason, to } => run.override_to(admin, reason, to)?,
    }
    Ok(run.finish(case))
}

#[allow(clippy::too_many_arguments)]
fn start(
    world: &World,
    def: &Definition,
    env: &Envelope,
    id: &str,
    number: &str,
    hash: &str,
    data: &Map<String, Value>,
    starter: &Party,
) -> Result<Transition, Error> {
    let fields: Vec<&m::Field> = def.data.iter().collect();
    let data = validate::data(world, &fields, data).map_err(Error::InvalidData)?;
    let case = Case {
        id: id.to_string(),
        number: number.to_string(),
        workflow: def.id.clone(),
        definition_hash: hash.to_string(),
        state: String::new(),
        entry: 0,
        status: Status::Open,
        data,
        started_by: starter.clone(),
        started_at: env.at,
        updated_at: env.at,
        tasks: Vec::new(),
        waiting: None,
        parent: None,
        version: 0,
    };
    let mut run = Run { world, def, case, effects: Vec::new(), env };
    let actor = starter.person.clone().unwrap_or_else(|| starter.email.clone());
    run.audit(&actor, "case.started", json!({ "number": number, "data": run.case.data, "definition": hash }));
    run.emit("case.started", json!({}));
    run.goto(&def.start.name)?;
    run.case.version = 1;
    Ok(Transition { case: run.case, effects: run.effects })
}

struct Run<'a> {
    world: &'a World<'a>,
    def: &'a Definition,
    case: Case,
    effects: Vec<Effect>,
    env: &'a Envelope,
}

impl<'a> Run<'a> {
    fn now(&self) -> Timestamp {
        self.env.at
    }

    fn finish(mut self, before: Option<&Case>) -> Transition {
        let changed =
            self.effects.iter().any(|e| !matches!(e, Effect::CancelTimer { .. })) || Some(&self.case) != before;
        if changed {
            self.case.version += 1;
            self.case.updated_at = self.now();
        }
        Transition { case: self.case, effects: self.effects }
    }

    fn audit(&mut self, actor: &str, what: &str, detail: Value) {
        let mut detail = detail;
        if !self.env.origin.is_empty()
            && let Value::Object(map) = &mut detail
        {
            map.insert("origin".into(), Value::Object(self.env.origin.clone()));
        }
        let entry = AuditEntry {
            at: self.now(),
            actor: actor.to_string(),
            channel: self.env.channel,
            what: what.into(),
            detail,
        };
        self.effects.push(Effect::Audit(entry));
    }

    /// A standard event for webhook subscribers, carrying the case's identity.
    fn emit(&mut self, event: &str, extra: Value) {
        let mut data = json!({ "case_id": self.case.id, "number": self.case.number, "workflow": self.case.workflow, "state": self.case.state });
        if let (Value::Object(base), Value::Object(more)) = (&mut data, extra) {
            base.extend(more);
        }
        self.effects.push(Effect::Emit { event: event.into(), data });
    }

    fn state(&self, id: &str) -> Result<&'a State, Error> {
        let def: &'a Definition = self.def;
        def.state(id).ok_or_else(|| Error::NoSuchState(id.to_string()))
    }

    /// Leaves the current state and enters `to`, then follows automatic states until the case
    /// waits for someone or something.
    fn goto(&mut self, to: &str) -> Result<(), Error> {
        let mut next = Some(to.to_string());
        let mut hops = 0;
        while let Some(id) = next.take() {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Error::Loop);
            }
            self.leave_state();
            let def = self.def;
            let state = def.state(&id).ok_or_else(|| Error::NoSuchState(id.clone()))?;
            self.case.state = id.clone();
            self.case.entry += 1;
            self.audit("system", "state.entered", json!({ "state": id, "label": state.label.sv }));
            next = self.enter(state)?;
        }
        Ok(())
    }

    /// Cancels what belonged to the state being left: open tasks and their timers, waits.
    fn leave_state(&mut self) {
        let open: Vec<String> = self.case.open_tasks().map(|t| t.id.clone()).collect();
        for id in open {
            self.close_task(&id, Closed::Cancelled);
            let assignees = self.case.task(&id).map(|t| t.assignees.clone()).unwrap_or_default();
            for a in assignees {
                self.effects.push(Effect::Notify {
                    kind: NoticeKind::TaskClosed,
                    template: "closed".into(),
                    to: a.party,
                    task: Some(id.clone()),
                });
            }
        }
        if self.case.waiting.take().is_some() {
            let (state, entry) = (self.case.state.clone(), self.case.entry);
            for timeout in [false, true] {
                let key = Timer::Wait { state: state.clone(), entry, timeout }.key(&self.case.id);
                self.effects.push(Effect::CancelTimer { key });
            }
        }
    }

    fn close_task(&mut self, id: &str, how: Closed) {
        let case_id = self.case.id.clone();
        let Some(task) = self.case.tasks.iter_mut().find(|t| t.id == id) else { return };
        task.closed = Some(how);
        let reminders = self
            .def
            .state(&task.state)
            .map_or(0, |s| task_def(s, task.branch.as_deref()).map_or(0, |t| t.reminders.len()));
        self.effects.push(Effect::CancelTimer { key: Timer::Deadline { task: id.to_string() }.key(&case_id) });
        for index in 0..reminders {
            self.effects
                .push(Effect::CancelTimer { key: Timer::Reminder { task: id.to_string(), index }.key(&case_id) });
        }
    }

    /// Enters a state; returns the next state for automatic states, `None` when the case now
    /// waits.
    fn enter(&mut self, state: &State) -> Result<Option<String>, Error> {
        match &state.kind {
            StateKind::Task(task) => {
                self.open_task(state, None, task)?;
                Ok(None)
            }
            StateKind::Parallel(p) => {
                for branch in &p.branches {
                    self.open_task(state, Some(&branch.id), &branch.task)?;
                }
                Ok(None)
            }
            StateKind::Choice(choice) => Ok(Some(self.choose(choice))),
            StateKind::Auto(auto) => {
                for step in &auto.steps {
                    self.step(step)?;
                }
                Ok(Some(auto.next.name.clone()))
            }
            StateKind::Call(call) => self.call(state, call).map(|_| None),
            StateKind::Wait(wait) => self.wait(state, wait).map(|_| None),
            StateKind::Subworkflow(sub) => self.subworkflow(state, sub).map(|_| None),
            StateKind::End(end) => {
                self.end(end);
                Ok(None)
            }
        }
    }

    fn open_task(&mut self, state: &State, branch: Option<&str>, task: &m::Task) -> Result<(), Error> {
        let Some(assignee) = &task.assignee else { return Err(Error::NotAllowed("the task has no assignee".into())) };
        let now = self.now();
        let assignees = assign::resolve(self.world, &self.case, assignee, Via::Workflow, now)?;
        let id = format!("t{}", self.case.tasks.len() + 1);
        let deadline = task.deadline.map(|d| assign::after(now, d));
        self.case.tasks.push(Task {
            id: id.clone(),
            state: state.id.clone(),
            entry: self.case.entry,
            branch: branch.map(str::to_string),
            assignees: assignees.clone(),
            opened_at: now,
            deadline,
            escalated: false,
            decision: None,
            closed: None,
        });
        for a in &assignees {
            let kind = NoticeKind::TaskAssigned;
            self.effects.push(Effect::Notify {
                kind,
                template: task.email.name.clone(),
                to: a.party.clone(),
                task: Some(id.clone()),
            });
        }
        self.schedule_deadline(&id, deadline, &task.reminders);
        let who: Vec<Value> = assignees.iter().map(assignment_json).collect();
        self.audit(
            "system",
            "task.assigned",
            json!({ "task": id, "state": state.id, "branch": branch, "assignees": who, "deadline": deadline }),
        );
        self.emit("task.assigned", json!({ "task": id, "branch": branch, "assignees": who, "deadline": deadline }));
        Ok(())
    }

    fn schedule_deadline(&mut self, task: &str, deadline: Option<Timestamp>, reminders: &[crate::duration::Duration]) {
        let Some(at) = deadline else { return };
        let timer = Timer::Deadline { task: task.to_string() };
        self.effects.push(Effect::ScheduleTimer { key: timer.key(&self.case.id), at, timer });
        for (index, before) in reminders.iter().enumerate() {
            let remind_at = assign::before(at, *before);
            if remind_at > self.now() {
                let timer = Timer::Reminder { task: task.to_string(), index };
                self.effects.push(Effect::ScheduleTimer { key: timer.key(&self.case.id), at: remind_at, timer });
            }
        }
    }

    /// Picks a choice's way on; the audit trail says which guard decided, so that a reader
    /// (and scenario coverage) knows why the case went where it did.
    fn choose(&mut self, choice: &m::Choice) -> String {
        for (index, (cond, to)) in choice.when.iter().enumerate() {
            match self.eval(&cond.source, &[]) {
                Ok(Value::Bool(true)) => {
                    let detail = json!({ "state": self.case.state, "via": format!("when-{}", index + 1), "expression": cond.source, "to": to.name });
                    self.audit("system", "choice.made", detail);
                    return to.name.clone();
                }
                Ok(_) => {}
                Err(e) => {
                    self.audit("system", "guard.failed", json!({ "expression": cond.source, "error": e.to_string() }))
                }
            }
        }
        let to = choice.otherwise.as_ref().map_or_else(String::new, |o| o.name.clone());
        self.audit("system", "choice.made", json!({ "state": self.case.state, "via": "otherwise", "to": to }));
        to
    }

    fn step(&mut self, step: &Step) -> Result<(), Error> {
        match step {
            Step::Set(pairs) => self.assign_all(pairs, &[]),
            Step::Notify { template, to } => {
                let recipients = match to {
                    Recipient::Starter => vec![self.case.started_by.clone()],
                    Recipient::Assignee(a) => assign::resolve(self.world, &self.case, a, Via::Workflow, self.now())?
                        .into_iter()
                        .map(|a| a.party)
                        .collect(),
                };
                for party in recipients {
                    self.effects.push(Effect::Notify {
                        kind: NoticeKind::Custom,
                        template: template.name.clone(),
                        to: party,
                        task: None,
                    });
                }
                Ok(())
            }
            Step::Emit { event, data, .. } => {
                let mut payload = Map::new();
                for (name, e) in data {
                    payload.insert(name.name.clone(), self.eval(&e.source, &[])?);
                }
                self.emit(event, json!({ "data": payload }));
                Ok(())
            }
        }
    }

    fn call(&mut self, state: &State, call: &m::Call) -> Result<(), Error> {
        let request_id = format!("{}/{}/{}", self.case.id, state.id, self.case.entry);
        let mut body = Map::new();
        for (name, e) in &call.body {
            body.insert(name.name.clone(), self.eval(&e.source, &[])?);
        }
        let url = render_inline(&call.url.source, &self.case);
        self.effects.push(Effect::Call {
            request_id: request_id.clone(),
            method: call.method.clone(),
            url,
            body: Value::Object(body),
            retries: call.retries,
            wait_for_callback: call.wait_for_callback,
        });
        self.case.waiting = Some(Waiting::Call { request_id });
        // The timeout bounds the whole exchange: retries, and the callback if one is awaited.
        if let Some(timeout) = call.timeout {
            let timer = Timer::Wait { state: state.id.clone(), entry: self.case.entry, timeout: true };
            let at = assign::after(self.now(), timeout);
            self.effects.push(Effect::ScheduleTimer { key: timer.key(&self.case.id), at, timer });
        }
        Ok(())
    }

    fn wait(&mut self, state: &State, wait: &m::Wait) -> Result<(), Error> {
        let entry = self.case.entry;
        let done_at = match &wait.wait_for {
            WaitFor::Signal { name, key } => {
                let key = match key {
                    Some(e) => self.eval(&e.source, &[])?.as_str().map(str::to_string).unwrap_or_default(),
                    None => self.case.number.clone(),
                };
                self.case.waiting = Some(Waiting::Signal { name: name.clone(), key });
                None
            }
            WaitFor::Until(e) => {
                self.case.waiting = Some(Waiting::Time);
                let text = self.eval(&e.source, &[])?;
                Some(date_start(text.as_str().unwrap_or_default()).ok_or_else(|| Error::Expression {
                    expr: e.source.clone(),
                    message: format!("{text} is not a date"),
                })?)
            }
            WaitFor::For(d) => {
                self.case.waiting = Some(Waiting::Time);
                Some(assign::after(self.now(), *d))
            }
        };
        if let Some(at) = done_at {
            let timer = Timer::Wait { state: state.id.clone(), entry, timeout: false };
            self.effects.push(Effect::ScheduleTimer { key: timer.key(&self.case.id), at, timer });
        }
        if let Some(timeout) = wait.timeout {
            let timer = Timer::Wait { state: state.id.clone(), entry, timeout: true };
            let at = assign::after(self.now(), timeout);
            self.effects.push(Effect::ScheduleTimer { key: timer.key(&self.case.id), at, timer });
        }
        Ok(())
    }

    fn subworkflow(&mut self, state: &State, sub: &m::Subworkflow) -> Result<(), Error> {
        let mut data = Map::new();
        for (name, e) in &sub.data {
            data.insert(name.name.clone(), self.eval(&e.source, &[])?);
        }
        let case_id = format!("{}-{}", self.case.id, self.case.entry);
        let parent = ParentLink { case_id: self.case.id.clone(), state: state.id.clone(), entry: self.case.entry };
        self.effects.push(Effect::StartSubcase { workflow: sub.workflow.name.clone(), data, parent });
        self.case.waiting = Some(Waiting::Subcase { case_id });
        Ok(())
    }

    fn end(&mut self, end: &m::End) {
        let outcome: OutcomeId = end.outcome.unwrap_or(m::Outcome::Completed).into();
        self.case.status = Status::Closed { outcome, closed_at: self.now() };
        self.audit("system", "case.closed", json!({ "outcome": outcome }));
        self.emit("case.completed", json!({ "outcome": outcome }));
        if end.notify_starter {
            let to = self.case.started_by.clone();
            self.effects.push(Effect::Notify {
                kind: NoticeKind::CaseDecided,
                template: "decided".into(),
                to,
                task: None,
            });
        }
        if let Some(parent) = self.case.parent.clone() {
            self.effects.push(Effect::FinishParent { parent, case_id: self.case.id.clone(), outcome });
        }
    }

    /// The task and its definition, checking it is open.
    fn open_task_def(&self, task_id: &str) -> Result<(Task, &'a m::Task), Error> {
        let task = self.case.task(task_id).ok_or_else(|| Error::NoSuchTask(task_id.to_string()))?;
        if let Some(d) = &task.decision {
            return Err(Error::AlreadyDecided { by: d.by_name.clone(), at: d.at, action: d.action_label.clone() });
        }
        if !task.is_open() {
            return Err(Error::TaskClosed);
        }
        let state = self.state(&task.state)?;
        let def = task_def(state, task.branch.as_deref()).ok_or_else(|| Error::NoSuchState(task.state.clone()))?;
        Ok((task.clone(), def))
    }

    fn decide(
        &mut self,
        task_id: &str,
        actor: &str,
        action_id: &str,
        comment: Option<&str>,
        form: &Map<String, Value>,
    ) -> Result<(), Error> {
        let (task, def) = self.open_task_def(task_id)?;
        let assignment = match task.assignment_of(actor) {
            Some(a) => a.clone(),
            None => assign::standing_in(self.world.directory, &task, actor, self.now())
                .ok_or_else(|| Error::NotAssignee(actor.to_string()))?,
        };
        let action =
            def.actions.iter().find(|a| a.id == action_id).ok_or_else(|| Error::NoSuchAction(action_id.to_string()))?;
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if action.comment == CommentRule::Required && comment.is_none() {
            return Err(Error::CommentRequired);
        }
        let shown: Vec<&m::Field> = def
            .form
            .iter()
            .filter(|f| action.fields.as_ref().is_none_or(|only| only.iter().any(|r| r.name == f.id)))
            .collect();
        let form = validate::data(self.world, &shown, &with_case_values(form, &shown, &self.case.data))
            .map_err(Error::InvalidData)?;
        let by = assignment.party.person.clone().unwrap_or_else(|| assignment.party.email.clone());
        let decision = Decision {
            action: action.id.clone(),
            action_label: action.label.sv.clone(),
            by,
            by_name: assignment.party.name.clone(),
            on_behalf_of: assignment.on_behalf_of.clone(),
            at: self.now(),
            comment: comment.map(str::to_string),
            form,
            vote: vote_of(action),
            channel: self.env.channel,
        };
        self.record(&task, action, decision)
    }

    /// Stores a decision (by a person or by a timeout) and moves the case on.
    fn record(&mut self, task: &Task, action: &Action, decision: Decision) -> Result<(), Error> {
        let detail = json!({
            "task": task.id, "state": task.state, "branch": task.branch, "action": decision.action,
            "label": decision.action_label, "by_name": decision.by_name, "on_behalf_of": decision.on_behalf_of,
            "comment": decision.comment, "form": decision.form, "vote": decision.vote,
        });
        let by = decision.by.clone();
        for (k, v) in &decision.form {
            self.case.data.insert(k.clone(), v.clone());
        }
        if let Some(t) = self.case.tasks.iter_mut().find(|t| t.id == task.id) {
            t.decision = Some(decision);
        }
        self.close_task(&task.id, Closed::Decided);
        self.audit(&by, "task.decided", detail.clone());
        self.emit("task.decided", detail);
        self.assign_all(&action.set, &[])?;
        if let Some(reserve) = &action.reserve {
            self.reserve(reserve)?;
        }
        match &action.target {
            ActionTarget::To(to) => self.goto(&to.name),
            ActionTarget::Vote(_) => self.settle(&task.state),
            ActionTarget::Missing => Ok(()),
        }
    }

    /// After a vote: ends the review as soon as its outcome is certain.
    fn settle(&mut self, state_id: &str) -> Result<(), Error> {
        let def = self.def;
        let Some(StateKind::Parallel(p)) = def.state(state_id).map(|s| &s.kind) else { return Ok(()) };
        let entry = self.case.entry;
        let tasks: Vec<&Task> = self.case.tasks.iter().filter(|t| t.state == state_id && t.entry == entry).collect();
        let yes = tasks.iter().filter(|t| t.decision.as_ref().and_then(|d| d.vote) == Some(true)).count();
        let no = tasks.iter().filter(|t| t.decision.as_ref().and_then(|d| d.vote) == Some(false)).count();
        let open = tasks.iter().filter(|t| t.is_open()).count();
        let needed = p.join.map_or(p.branches.len(), |j| j.needed(p.branches.len()));
        let outcome = if p.veto && no > 0 {
            Some(false)
        } else if yes >= needed {
            Some(true)
        } else if yes + open < needed {
            Some(false)
        } else {
            None
        };
        let Some(approved) = outcome else { return Ok(()) };
        self.audit(
            "system",
            "review.settled",
            json!({ "state": state_id, "approved": approved, "yes": yes, "no": no, "open": open }),
        );
        let to = if approved { &p.on_approved } else { &p.on_rejected };
        self.goto(&to.name)
    }

    fn reserve(&mut self, reserve: &m::Reserve) -> Result<(), Error> {
        let Some(ledger) = self.def.ledgers.iter().find(|l| l.id == reserve.ledger.name) else {
            return Err(Error::NotAllowed(format!("no ledger {}", reserve.ledger.name)));
        };
        let amount = self.eval(&reserve.amount.source, &[])?;
        let key_value =
            |i: usize| ledger.key.get(i).and_then(|k| self.case.data.get(&k.name)).cloned().unwrap_or(Value::Null);
        let portfolio = key_value(0).as_str().unwrap_or_default().to_string();
        let year = key_value(1).as_f64().unwrap_or_default() as i32;
        let kronor = amount
            .as_f64()
            .ok_or_else(|| Error::Expression { expr: reserve.amount.source.clone(), message: "not a number".into() })?;
        self.effects.push(Effect::Reserve {
            ledger: ledger.id.clone(),
            frames: ledger.frames.name.clone(),
            portfolio,
            year,
            amount: (kronor * 100.0).round() as i64,
        });
        Ok(())
    }

    fn delegate(&mut self, task_id: &str, actor: &str, to: &str, comment: Option<&str>) -> Result<(), Error> {
        let (task, def) = self.open_task_def(task_id)?;
        if !def.delegable {
            return Err(Error::NotAllowed("the task cannot be delegated".into()));
        }
        let from = task.assignment_of(actor).ok_or_else(|| Error::NotAssignee(actor.to_string()))?.clone();
        let person = self
            .world
            .directory
            .person(to)
            .ok_or_else(|| Error::NotAllowed(format!("{to} is not in the directory")))?;
        if task.assignment_of(to).is_some() {
            return Err(Error::NotAllowed(format!("{to} already has the task")));
        }
        let delegate = Assignment {
            party: party(person),
            on_behalf_of: Some(from.party.person.clone().unwrap_or(from.party.email.clone())),
            via: Via::Delegation,
        };
        if let Some(t) = self.case.tasks.iter_mut().find(|t| t.id == task_id) {
            t.assignees.retain(|a| a.party.email != from.party.email);
            t.assignees.push(delegate.clone());
        }
        let template = def.email.name.clone();
        self.effects.push(Effect::Notify {
            kind: NoticeKind::TaskAssigned,
            template,
            to: delegate.party.clone(),
            task: Some(task_id.into()),
        });
        self.effects.push(Effect::Notify {
            kind: NoticeKind::Delegated,
            template: "delegated".into(),
            to: from.party.clone(),
            task: Some(task_id.into()),
        });
        let detail = json!({ "task": task_id, "from": assignment_json(&from), "to": assignment_json(&delegate), "comment": comment });
        self.audit(actor, "task.delegated", detail);
        Ok(())
    }

    fn timer(&mut self, timer: &Timer) -> Result<(), Error> {
        match timer {
            Timer::Deadline { task } => self.deadline_passed(task),
            Timer::Reminder { task, .. } => {
                let Ok((task, _)) = self.open_task_def(task) else { return Ok(()) };
                for a in &task.assignees {
                    self.effects.push(Effect::Notify {
                        kind: NoticeKind::Reminder,
                        template: "reminder".into(),
                        to: a.party.clone(),
                        task: Some(task.id.clone()),
                    });
                }
                self.audit("timer", "task.reminded", json!({ "task": task.id }));
                Ok(())
            }
            Timer::Wait { state, entry, timeout } => {
                if &self.case.state != state || self.case.entry != *entry || self.case.waiting.is_none() {
                    return Ok(());
                }
                let def = self.def;
                if let Some(StateKind::Call(call)) = def.state(state).map(|s| &s.kind) {
                    self.audit("timer", "call.timed_out", json!({ "state": state }));
                    return match &call.on_failure {
                        Some(to) => self.goto(&to.name),
                        None => Ok(()),
                    };
                }
                let Some(StateKind::Wait(wait)) = def.state(state).map(|s| &s.kind) else { return Ok(()) };
                self.audit("timer", if *timeout { "wait.timed_out" } else { "wait.done" }, json!({ "state": state }));
                let to = if *timeout { wait.on_timeout.as_ref().unwrap_or(&wait.next) } else { &wait.next };
                self.goto(&to.name)
            }
        }
    }

    fn deadline_passed(&mut self, task_id: &str) -> Result<(), Error> {
        let Ok((task, def)) = self.open_task_def(task_id) else { return Ok(()) };
        match &def.on_timeout {
            None => Ok(()),
            Some(Timeout::Escalate { to, deadline }) => {
                if task.escalated {
                    self.audit("timer", "deadline.passed", json!({ "task": task.id, "escalated": true }));
                    return Ok(());
                }
                let assignees = assign::resolve(self.world, &self.case, to, Via::Escalation, self.now())?;
                let new_deadline = deadline.map(|d| assign::after(self.now(), d));
                if let Some(t) = self.case.tasks.iter_mut().find(|t| t.id == task.id) {
                    t.assignees = assignees.clone();
                    t.escalated = true;
                    t.deadline = new_deadline;
                }
                for a in &task.assignees {
                    self.effects.push(Effect::Notify {
                        kind: NoticeKind::TaskClosed,
                        template: "closed".into(),
                        to: a.party.clone(),
                        task: Some(task.id.clone()),
                    });
                }
                for a in &assignees {
                    self.effects.push(Effect::Notify {
                        kind: NoticeKind::Escalation,
                        template: "escalation".into(),
                        to: a.party.clone(),
                        task: Some(task.id.clone()),
                    });
                }
                self.schedule_deadline(&task.id, new_deadline, &[]);
                let who: Vec<Value> = assignees.iter().map(assignment_json).collect();
                self.audit("timer", "task.escalated", json!({ "task": task.id, "to": who, "deadline": new_deadline }));
                self.emit("task.escalated", json!({ "task": task.id, "assignees": who }));
                Ok(())
            }
            Some(Timeout::Action(action_id)) => {
                let action = def
                    .actions
                    .iter()
                    .find(|a| a.id == action_id.name)
                    .ok_or_else(|| Error::NoSuchAction(action_id.name.clone()))?;
                let decision = Decision {
                    action: action.id.clone(),
                    action_label: action.label.sv.clone(),
                    by: "system".into(),
                    by_name: "Tidsgränsen passerade".into(),
                    on_behalf_of: None,
                    at: self.now(),
                    comment: None,
                    form: Map::new(),
                    vote: vote_of(action),
                    channel: Channel::Timer,
                };
                self.record(&task, action, decision)
            }
            Some(Timeout::Goto(to)) => {
                self.close_task(&task.id, Closed::TimedOut);
                self.audit("timer", "task.timed_out", json!({ "task": task.id, "to": to.name }));
                self.goto(&to.name)
            }
        }
    }

    fn signal(&mut self, name: &str, payload: &Value) -> Result<(), Error> {
        let Some(Waiting::Signal { name: waiting_for, .. }) = &self.case.waiting else { return Err(Error::NotWaiting) };
        if waiting_for != name {
            return Err(Error::NotWaiting);
        }
        let def = self.def;
        let Some(StateKind::Wait(wait)) = def.state(&self.case.state).map(|s| &s.kind) else {
            return Err(Error::NotWaiting);
        };
        self.audit("webhook", "signal.received", json!({ "signal": name, "payload": payload }));
        self.assign_all(&wait.store, &[("signal", expr::from_json(payload))])?;
        self.goto(&wait.next.name)
    }

    fn call_answered(&mut self, request_id: &str, ok: bool, response: &Value) -> Result<(), Error> {
        match &self.case.waiting {
            Some(Waiting::Call { request_id: waiting }) if waiting == request_id => {}
            _ => return Err(Error::NotWaiting),
        }
        let def = self.def;
        let Some(StateKind::Call(call)) = def.state(&self.case.state).map(|s| &s.kind) else {
            return Err(Error::NotWaiting);
        };
        self.audit(
            "system",
            if ok { "call.answered" } else { "call.failed" },
            json!({ "request": request_id, "response": response }),
        );
        if ok {
            self.assign_all(&call.store, &[("response", expr::from_json(response))])?;
            return self.goto(&call.next.name);
        }
        match &call.on_failure {
            Some(to) => self.goto(&to.name),
            None => Ok(()),
        }
    }

    fn subcase_finished(&mut self, case_id: &str, outcome: OutcomeId) -> Result<(), Error> {
        match &self.case.waiting {
            Some(Waiting::Subcase { case_id: waiting }) if waiting == case_id => {}
            _ => return Err(Error::NotWaiting),
        }
        let def = self.def;
        let Some(StateKind::Subworkflow(sub)) = def.state(&self.case.state).map(|s| &s.kind) else {
            return Err(Error::NotWaiting);
        };
        let outcome_model: m::Outcome = outcome.into();
        let to = sub.outcomes.iter().find(|(o, _)| *o == outcome_model).map(|(_, to)| to).or(sub.otherwise.as_ref());
        self.audit("system", "subcase.finished", json!({ "case": case_id, "outcome": outcome }));
        match to {
            Some(to) => self.goto(&to.name),
            None => Ok(()),
        }
    }

    fn withdraw(&mut self, actor: &str, comment: Option<&str>) -> Result<(), Error> {
        let starter = &self.case.started_by;
        let is_starter = starter.person.as_deref() == Some(actor) || starter.email.eq_ignore_ascii_case(actor);
        if !is_starter {
            return Err(Error::NotAllowed("only the person who started the case can withdraw it".into()));
        }
        let Some(to) = &self.def.withdraw_to else {
            return Err(Error::NotAllowed("this workflow does not allow withdrawal".into()));
        };
        self.audit(actor, "case.withdrawn", json!({ "comment": comment }));
        self.goto(&to.name)
    }

    fn override_to(&mut self, admin: &str, reason: &str, to: &str) -> Result<(), Error> {
        if reason.trim().is_empty() {
            return Err(Error::NotAllowed("an override needs a reason".into()));
        }
        self.state(to)?;
        self.audit(admin, "case.overridden", json!({ "from": self.case.state, "to": to, "reason": reason }));
        self.goto(to)
    }

    /// `field: EXPRESSION` pairs, evaluated against the data as it was before the first one.
    fn assign_all(&mut self, pairs: &[(m::Ref, m::Expr)], extra: &[(&str, cel::Value)]) -> Result<(), Error> {
        let mut values = Vec::new();
        for (field, e) in pairs {
            values.push((field.name.clone(), self.eval(&e.source, extra)?));
        }
        for (field, value) in values {
            self.case.data.insert(field, value);
        }
        Ok(())
    }

    /// Evaluates an expression over the case's data (fields without a value are `null`).
    fn eval(&self, source: &str, extra: &[(&str, cel::Value)]) -> Result<Value, Error> {
        let program = expr::cached(source)
            .map_err(|e| Error::Expression { expr: source.into(), message: format!("{:?}", e.problem) })?;
        let case = json!({ "id": self.case.id, "number": self.case.number, "year": year_of(&self.case.number), "started_by": self.case.started_by.person.clone().unwrap_or(self.case.started_by.email.clone()) });
        expr::with_scope(|context| {
            for field in self.def.all_fields() {
                let value = self.case.data.get(&field.id).map_or(cel::Value::Null, expr::from_json);
                context.add_variable_from_value(field.id.clone(), value);
            }
            context.add_variable_from_value("case", expr::from_json(&case));
            for (name, value) in extra {
                context.add_variable_from_value(*name, value.clone());
            }
            program
                .execute(context)
                .map(|v| expr::to_json(&v))
                .map_err(|e| Error::Expression { expr: source.into(), message: e.to_string() })
        })
    }
}

/// A form field that shares its id with case data starts from the case's value, as the page
/// shows it filled in: leaving it out keeps the value rather than resetting it to the field's
/// default (a correction of one fact must not wipe the others).
fn with_case_values(form: &Map<String, Value>, fields: &[&m::Field], data: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = form.clone();
    for field in fields {
        if let (false, Some(value)) = (merged.contains_key(&field.id), data.get(&field.id)) {
            merged.insert(field.id.clone(), value.clone());
        }
    }
    merged
}

/// The task definition behind a task: the state's own, or its branch's.
pub fn task_def<'a>(state: &'a State, branch: Option<&str>) -> Option<&'a m::Task> {
    match (&state.kind, branch) {
        (StateKind::Task(task), None) => Some(task),
        (StateKind::Parallel(p), Some(b)) => p.branches.iter().find(|x| x.id == b).map(|x| &x.task),
        _ => None,
    }
}

fn vote_of(action: &Action) -> Option<bool> {
    match action.target {
        ActionTarget::Vote(v) => Some(v),
        _ => None,
    }
}

fn assignment_json(a: &Assignment) -> Value {
    json!({ "person": a.party.person, "email": a.party.email, "name": a.party.name, "on_behalf_of": a.on_behalf_of, "via": a.via })
}

/// The year of a case number `IT 2026/0042`.
fn year_of(number: &str) -> i64 {
    number.split_whitespace().nth(1).and_then(|s| s.split('/').next()).and_then(|y| y.parse().ok()).unwrap_or_default()
}

/// Midnight at the start of a date, Stockholm time.
fn date_start(text: &str) -> Option<Timestamp> {
    let date = jiff::civil::Date::strptime("%Y-%m-%d", text).ok()?;
    date.to_zoned(crate::calendar::stockholm()).ok().map(|z| z.timestamp())
}

/// Renders `{{data.x}}` and `{{case.number}}` in a short inline template (a call's URL).
fn render_inline(source: &str, case: &Case) -> String {
    let context = json!({ "data": case.data, "case": { "id": case.id, "number": case.number } });
    let mut hb = handlebars::Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    hb.render_template(source, &context).unwrap_or_else(|_| source.to_string())
}
