//! An in-memory driver for the core: a fake clock, timers, sub-cases, ledger frames and a log
//! of the emails and events that would go out. Used by the engine's tests and by scenario
//! tests of workflow files, where a process owner needs speed and no database.
//!
//! It applies effects with the same rules as the durable store: a transition whose ledger
//! reservation does not fit is refused whole, and nothing of it is kept.

use super::*;
use crate::definition::model::Definition;
use std::collections::BTreeMap;

/// An email that would have been sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Mail {
    pub case: String,
    pub kind: NoticeKind,
    pub template: String,
    pub to: Party,
    pub task: Option<String>,
    pub at: Timestamp,
}

/// A scheduled timer.
#[derive(Clone, Debug, PartialEq)]
struct Scheduled {
    case: String,
    at: Timestamp,
    timer: Timer,
}

/// Workflows, cases and the world they run in, all in memory.
pub struct Sim<'a> {
    pub world: World<'a>,
    pub definitions: &'a [Definition],
    pub cases: BTreeMap<String, Case>,
    pub now: Timestamp,
    pub mails: Vec<Mail>,
    pub events: Vec<(String, Value)>,
    pub audit: Vec<(String, AuditEntry)>,
    pub calls: Vec<(String, Effect)>,
    /// Reserved amounts in öre by (frames file, portfolio, year).
    pub reserved: BTreeMap<(String, String, i32), i64>,
    timers: BTreeMap<String, Scheduled>,
    numbers: BTreeMap<String, u32>,
}

impl<'a> Sim<'a> {
    pub fn new(world: World<'a>, definitions: &'a [Definition], now: Timestamp) -> Sim<'a> {
        Sim {
            world,
            definitions,
            cases: BTreeMap::new(),
            now,
            mails: Vec::new(),
            events: Vec::new(),
            audit: Vec::new(),
            calls: Vec::new(),
            reserved: BTreeMap::new(),
            timers: BTreeMap::new(),
            numbers: BTreeMap::new(),
        }
    }

    fn definition(&self, workflow: &str) -> Result<&'a Definition, Error> {
        let defs: &'a [Definition] = self.definitions;
        defs.iter().find(|d| d.id == workflow).ok_or_else(|| Error::NotAllowed(format!("no workflow {workflow}")))
    }

    /// Starts a case and returns its id.
    pub fn start(&mut self, workflow: &str, data: Map<String, Value>, starter: Party) -> Result<String, Error> {
        self.start_with_id(workflow, None, data, starter, None)
    }

    fn start_with_id(
        &mut self,
        workflow: &str,
        id: Option<String>,
        data: Map<String, Value>,
        starter: Party,
        parent: Option<ParentLink>,
    ) -> Result<String, Error> {
        let def = self.definition(workflow)?;
        let year = self.now.to_zoned(jiff::tz::TimeZone::UTC).year();
        let counter = self.numbers.entry(format!("{}/{year}", def.series)).or_insert(0);
        *counter += 1;
        let number = format!("{} {year}/{:04}", def.series, counter);
        let id = id.unwrap_or_else(|| format!("c{}", self.cases.len() + 1));
        let command = Command::Start { id: id.clone(), number, definition_hash: "sim".into(), data, starter };
        let envelope = Envelope { command, channel: Channel::Api, at: self.now, origin: Map::new() };
        let mut transition = apply(&self.world, def, None, &envelope)?;
        transition.case.parent = parent;
        self.commit(transition)?;
        Ok(id)
    }

    /// Applies a command to a case; a refused command changes nothing.
    pub fn send(&mut self, case_id: &str, command: Command, channel: Channel) -> Result<(), Error> {
        let case = self.cases.get(case_id).ok_or_else(|| Error::NotAllowed(format!("no case {case_id}")))?.clone();
        let def = self.definition(&case.workflow)?;
        let envelope = Envelope { command, channel, at: self.now, origin: Map::new() };
        let transition = apply(&self.world, def, Some(&case), &envelope)?;
        if transition.is_noop(&case) {
            return Ok(());
        }
        self.commit(transition)
    }

    /// Carries out a transition's effects, all or nothing.
    fn commit(&mut self, transition: Transition) -> Result<(), Error> {
        let case_id = transition.case.id.clone();
        self.check_reservations(&transition.effects)?;
        self.cases.insert(case_id.clone(), transition.case);
        let mut follow_ups = Vec::new();
        for effect in transition.effects {
            self.carry_out(&case_id, effect, &mut follow_ups);
        }
        for follow_up in follow_ups {
            follow_up(self)?;
        }
        Ok(())
    }

    fn check_reservations(&self, effects: &[Effect]) -> Result<(), Error> {
        let mut pending: BTreeMap<(String, String, i32), i64> = BTreeMap::new();
        for effect in effects {
            if let Effect::Reserve { frames, portfolio, year, amount, .. } = effect {
                let key = (frames.clone(), portfolio.clone(), *year);
                let frame =
                    self.world.frames.iter().find(|(n, _)| n == frames).and_then(|(_, p)| p.frame(portfolio, *year));
                let Some(frame) = frame else {
                    return Err(Error::NotAllowed(format!("no frame for {portfolio} {year}")));
                };
                let total =
                    self.reserved.get(&key).copied().unwrap_or(0) + pending.get(&key).copied().unwrap_or(0) + amount;
                if total > frame * 100 {
                    return Err(Error::FrameExceeded {
                        portfolio: portfolio.clone(),
                        year: *year,
                        left: frame * 100 - (total - amount),
                    });
                }
                *pending.entry(key).or_insert(0) += amount;
            }
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn carry_out(
        &mut self,
        case_id: &str,
        effect: Effect,
        follow_ups: &mut Vec<Box<dyn FnOnce(&mut Sim<'a>) -> Result<(), Error>>>,
    ) {
        match effect {
            Effect::Notify { kind, template, to, task } => {
                self.mails.push(Mail { case: case_id.into(), kind, template, to, task, at: self.now });
            }
            Effect::ScheduleTimer { key, at, timer } => {
                self.timers.insert(key, Scheduled { case: case_id.into(), at, timer });
            }
            Effect::CancelTimer { key } => {
                self.timers.remove(&key);
            }
            Effect::Emit { event, data } => self.events.push((event, data)),
            Effect::Reserve { frames, portfolio, year, amount, .. } => {
                *self.reserved.entry((frames, portfolio, year)).or_insert(0) += amount;
            }
            Effect::Audit(entry) => self.audit.push((case_id.into(), entry)),
            call @ Effect::Call { .. } => self.calls.push((case_id.into(), call)),
            Effect::StartSubcase { workflow, data, parent } => {
                let child = format!("{}-{}", parent.case_id, parent.entry);
                let starter = self.cases[case_id].started_by.clone();
                follow_ups.push(Box::new(move |sim| {
                    sim.start_with_id(&workflow, Some(child), data, starter, Some(parent)).map(|_| ())
                }));
            }
            Effect::FinishParent { parent, case_id, outcome } => {
                follow_ups.push(Box::new(move |sim| {
                    sim.send(&parent.case_id, Command::SubcaseFinished { case_id, outcome }, Channel::System)
                }));
            }
        }
    }

    /// Moves the clock to `to`, firing every timer due on the way, in time order.
    pub fn advance_to(&mut self, to: Timestamp) -> Result<(), Error> {
        loop {
            let next = self
                .timers
                .iter()
                .filter(|(_, s)| s.at <= to)
                .min_by_key(|(key, s)| (s.at, (*key).clone()))
                .map(|(k, s)| (k.clone(), s.clone()));
            let Some((key, scheduled)) = next else { break };
            self.timers.remove(&key);
            self.now = self.now.max(scheduled.at);
            let command = Command::Timer { timer: scheduled.timer };
            if let Err(e) = self.send(&scheduled.case, command, Channel::Timer) {
                match e {
                    Error::CaseClosed => {}
                    other => return Err(other),
                }
            }
        }
        self.now = self.now.max(to);
        Ok(())
    }

    /// The open tasks of a case that `actor` may decide.
    pub fn tasks_for(&self, case_id: &str, actor: &str) -> Vec<&Task> {
        self.cases
            .get(case_id)
            .map(|c| {
                c.open_tasks()
                    .filter(|t| {
                        t.assignment_of(actor).is_some()
                            || super::assign::standing_in(self.world.directory, t, actor, self.now).is_some()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Decides the one open task `actor` holds in a case.
    pub fn decide(
        &mut self,
        case_id: &str,
        actor: &str,
        action: &str,
        comment: Option<&str>,
        form: Map<String, Value>,
    ) -> Result<(), Error> {
        let tasks = self.tasks_for(case_id, actor);
        let task = match tasks.as_slice() {
            [one] => one.id.clone(),
            [] => return Err(Error::NotAssignee(actor.to_string())),
            _ => return Err(Error::NotAllowed(format!("{actor} holds several tasks; name one"))),
        };
        let command = Command::Decide {
            task,
            actor: actor.into(),
            action: action.into(),
            comment: comment.map(str::to_string),
            form,
        };
        self.send(case_id, command, Channel::Api)
    }

    pub fn case(&self, id: &str) -> &Case {
        &self.cases[id]
    }

    /// The time of the earliest timer, if any.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.timers.values().map(|s| s.at).min()
    }
}
