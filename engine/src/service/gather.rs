//! A shared commit's reads and writes, each done once for the whole batch: one statement reads
//! every case the batch touches, the pure core applies the commands to them in memory one after
//! another, and one statement writes what they changed in every table ([`flush`]).
//!
//! Without this, group commit shares only the `COMMIT`: every decision still costs about ten
//! statements, and on SQLite each is a round trip to sqlx's worker thread (two context switches),
//! on PostgreSQL one to the server. Gathered, a batch of 32 costs three statements: the read, the
//! write and the commit.

use super::batch::{Job, Step};
use super::{Core, Error};
use crate::runtime::{self, Case, Effect, Envelope, Transition, World};
use crate::store::audit::{self, Chain, Linked};
use crate::store::cases::{self, Holder};
use crate::store::effects::{self, Scheduled};
use crate::store::{Backend, StoreError, Tx, flush, from_json, millis, to_json};
use std::collections::{BTreeMap, HashMap};

/// A case the batch read, as the batch's commands have left it so far.
struct Slot {
    case: Case,
    chain: Chain,
    /// As read: what the conditional update checks, so that a concurrent writer is found.
    read_version: i64,
    read_chain: Chain,
    read_holders: Vec<Holder>,
    /// The first job that changed the case: the one to queue again if another node changed it
    /// in between.
    changed_by: Option<usize>,
}

/// Why the gathered writes failed.
pub(crate) enum Flush {
    /// Another node changed the case job `.0` changed first.
    Conflict(usize),
    /// The database refused a statement; which job caused it is not known.
    Failed,
}

/// The cases of a batch and the rows its commands will write.
#[derive(Default)]
pub(crate) struct Gathered {
    slots: Vec<Slot>,
    /// Slots by case id and by number, as commands name cases either way.
    by_name: HashMap<String, usize>,
    /// Idempotency keys already used, stored or earlier in this batch, and their case's id.
    seen: HashMap<String, String>,
    audit: Vec<(String, Linked)>,
    /// The last word on each timer key: set it, or (`None`) remove it.
    timers: BTreeMap<String, Option<Scheduled>>,
    outbox: Vec<(String, &'static str, String)>,
    remembered: Vec<(String, String, String)>,
}

impl Gathered {
    /// Reads the first results of the jobs' idempotency keys and every case they name.
    pub(crate) async fn read(tx: &mut Tx, jobs: &[Job]) -> Result<Gathered, StoreError> {
        let keys: Vec<&str> = jobs.iter().filter_map(|j| j.key.as_deref()).collect();
        let mut seen = HashMap::new();
        for (key, result) in effects::seen_many(tx, &keys).await? {
            let first: serde_json::Value = from_json(&result)?;
            seen.insert(key, first["case_id"].as_str().unwrap_or_default().to_string());
        }
        let mut names: Vec<&str> =
            jobs.iter().map(|j| j.case_id.as_str()).chain(seen.values().map(String::as_str)).collect();
        names.sort_unstable();
        names.dedup();
        let loaded = cases::load_many_for_write(tx, &names).await?;
        let mut gathered = Gathered { seen, ..Gathered::default() };
        for (case, chain) in loaded {
            let index = gathered.slots.len();
            gathered.by_name.insert(case.id.clone(), index);
            gathered.by_name.insert(case.number.clone(), index);
            gathered.slots.push(Slot {
                read_version: case.version,
                read_chain: chain.clone(),
                read_holders: cases::holders(&case),
                case,
                chain,
                changed_by: None,
            });
        }
        Ok(gathered)
    }

    /// Applies job `index` to its case as the jobs before it left it; reservations are made at
    /// once (they may refuse), everything else is gathered for [`Gathered::write`].
    pub(crate) async fn apply(&mut self, core: &Core, tx: &mut Tx, index: usize, job: &Job) -> Result<Case, Step> {
        if let Some(case) = self.replay(job.key.as_deref()) {
            return Ok(case);
        }
        let slot =
            *self.by_name.get(&job.case_id).ok_or_else(|| Step::Clean(Error::NoSuchCase(job.case_id.clone())))?;
        let now = core.now();
        let project = core.project();
        let before = &self.slots[slot].case;
        let def = core.definition(tx, &before.workflow, &before.definition_hash).await.map_err(Step::after_read)?;
        let envelope =
            Envelope { command: job.command.clone(), channel: job.channel, at: now, origin: job.origin.clone() };
        let world = World { directory: &project.directory, frames: &project.frames };
        let transition = runtime::apply(&world, &def, Some(before), &envelope).map_err(|e| Step::Clean(e.into()))?;
        if !transition.is_noop(before) {
            core.reserve(tx, &transition, millis(now)).await?;
            self.gather(slot, index, transition);
        }
        let case = self.slots[slot].case.clone();
        if let Some(key) = &job.key {
            let result = serde_json::json!({ "case_id": case.id, "version": case.version }).to_string();
            self.remembered.push((key.clone(), case.id.clone(), result));
            self.seen.insert(key.clone(), case.id.clone());
        }
        Ok(case)
    }

    /// The case a repeated idempotency key stands for, as it is now.
    fn replay(&self, key: Option<&str>) -> Option<Case> {
        let id = self.seen.get(key?)?;
        self.by_name.get(id).map(|&slot| self.slots[slot].case.clone())
    }

    /// Takes a transition's case and rows into the batch.
    fn gather(&mut self, slot: usize, index: usize, t: Transition) {
        let id = t.case.id.clone();
        let entries: Vec<runtime::AuditEntry> =
            t.effects.iter().filter_map(|e| if let Effect::Audit(a) = e { Some(a.clone()) } else { None }).collect();
        let s = &mut self.slots[slot];
        let (rows, to) = audit::link(&id, &s.chain, &entries);
        s.chain = to;
        s.case = t.case;
        s.changed_by.get_or_insert(index);
        self.audit.extend(rows.into_iter().map(|r| (id.clone(), r)));
        for effect in t.effects {
            let kind = match &effect {
                Effect::ScheduleTimer { key, at, timer } => {
                    let timer =
                        Scheduled { key: key.clone(), case_id: id.clone(), at: millis(*at), payload: to_json(timer) };
                    self.timers.insert(key.clone(), Some(timer));
                    continue;
                }
                Effect::CancelTimer { key } => {
                    self.timers.insert(key.clone(), None);
                    continue;
                }
                Effect::Notify { .. } => "email",
                Effect::Emit { .. } => "webhook",
                Effect::Call { .. } => "call",
                Effect::StartSubcase { .. } | Effect::FinishParent { .. } => "internal",
                Effect::Reserve { .. } | Effect::Audit(_) => continue,
            };
            self.outbox.push((id.clone(), kind, to_json(&effect)));
        }
    }

    /// Writes everything gathered, in one statement (see [`flush`]).
    pub(crate) async fn write(self, tx: &mut Tx, backend: Backend, now_ms: i64) -> Result<(), Flush> {
        let Gathered { slots, by_name, audit, timers, outbox, remembered, .. } = self;
        let mut changed: Vec<&Slot> = slots.iter().filter(|s| s.changed_by.is_some()).collect();
        // In id order, so that two nodes updating overlapping cases lock them in the same order.
        changed.sort_by(|a, b| a.case.id.cmp(&b.case.id));
        let changes: Vec<cases::Change> = changed
            .iter()
            .map(|s| cases::Change { case: &s.case, read_version: s.read_version, from: &s.read_chain, to: &s.chain })
            .collect();
        // A decision that leaves the holders as they were (a comment, a form saved) need not
        // rewrite them.
        let moved: Vec<(&str, Vec<Holder>)> = changed
            .iter()
            .map(|s| (s.case.id.as_str(), cases::holders(&s.case), &s.read_holders))
            .filter(|(_, now, before)| now != *before)
            .map(|(id, now, _)| (id, now))
            .collect();
        let (set, removed): (Vec<_>, Vec<_>) = timers.into_iter().partition(|(_, t)| t.is_some());
        let cancelled: Vec<String> = removed.into_iter().map(|(key, _)| key).collect();
        let timers: Vec<Scheduled> = set.into_iter().filter_map(|(_, t)| t).collect();
        let rows = flush::Rows {
            cases: &changes,
            moved: &moved,
            audit: &audit,
            cancelled: &cancelled,
            timers: &timers,
            outbox: &outbox,
            remembered: &remembered,
        };
        let lost = flush::write(tx, backend, &rows, now_ms).await.map_err(|_| Flush::Failed)?;
        match lost.first().and_then(|id| by_name.get(id)) {
            Some(slot) => Err(Flush::Conflict(slots[*slot].changed_by.unwrap_or_default())),
            None => Ok(()),
        }
    }
}
