//! Group commit: commands that arrive while a commit is under way wait, and go together into
//! the next one, so that many decisions share one durable write.
//!
//! Each lane has a queue and at most one commit task. The task applies the queued commands in
//! order inside one transaction, each to the case as the one before left it, commits once and
//! only then answers every caller: an answer always means the change is durable. A command
//! that fails after it wrote something rolls the transaction back; it gets its error and the
//! others are applied again without it, so no failure leaks into a neighbour's commit.

use super::gather::{Flush, Gathered};
use super::{ATTEMPTS, Core, Error};
use crate::runtime::{Case, Channel, Command};
use crate::store::{StoreError, millis};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// At most this many commands share a commit, which bounds how long the first one waits.
const MAX_BATCH: usize = 64;

/// How a command failed inside a shared transaction.
pub(crate) enum Step {
    /// Before anything was written: the transaction is as it was.
    Clean(Error),
    /// After a write, or in the database: the transaction must be rolled back.
    Dirty(Error),
}

impl Step {
    /// A failure while reading: clean unless the database itself failed, which on PostgreSQL
    /// spoils the transaction.
    pub(crate) fn after_read(e: Error) -> Step {
        match e {
            Error::Store(_) => Step::Dirty(e),
            other => Step::Clean(other),
        }
    }

    pub(crate) fn into_error(self) -> Error {
        match self {
            Step::Clean(e) | Step::Dirty(e) => e,
        }
    }
}

/// One command waiting for a commit, and where its answer goes.
pub(crate) struct Job {
    pub(crate) case_id: String,
    pub(crate) command: Command,
    pub(crate) channel: Channel,
    pub(crate) origin: Map<String, Value>,
    pub(crate) key: Option<String>,
    /// Times it met a concurrent change by another node and was queued again.
    conflicts: usize,
    reply: Option<oneshot::Sender<Result<Case, Error>>>,
}

impl Job {
    pub(crate) fn new(
        case_id: &str,
        command: Command,
        channel: Channel,
        origin: Map<String, Value>,
        key: Option<&str>,
    ) -> Job {
        Job { case_id: case_id.into(), command, channel, origin, key: key.map(Into::into), conflicts: 0, reply: None }
    }

    fn answer(mut self, result: Result<Case, Error>) {
        if let Some(reply) = self.reply.take() {
            // The caller may have gone (a closed connection); the change stands either way.
            let _ = reply.send(result);
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Whether a commit task is running for this lane.
    running: bool,
}

#[derive(Default)]
struct Lane {
    queue: Mutex<Queue>,
}

/// The lanes of an engine; a case always goes to the same lane.
pub(crate) struct Lanes {
    lanes: Vec<Arc<Lane>>,
}

impl Lanes {
    pub(crate) fn new(count: usize) -> Lanes {
        Lanes { lanes: (0..count.max(1)).map(|_| Arc::default()).collect() }
    }

    fn lane_of(&self, case_id: &str) -> &Arc<Lane> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        case_id.hash(&mut h);
        &self.lanes[(h.finish() % self.lanes.len() as u64) as usize]
    }

    /// Queues a command and waits until it is committed or refused.
    pub(crate) async fn submit(&self, core: &Arc<Core>, mut job: Job) -> Result<Case, Error> {
        let (reply, answer) = oneshot::channel();
        job.reply = Some(reply);
        let lane = self.lane_of(&job.case_id).clone();
        if lane.push(job) {
            // The commit runs as its own task, so a caller that goes away mid-commit cannot
            // cut it short and leave the others without an answer.
            tokio::spawn(run(core.clone(), lane));
        }
        answer.await.unwrap_or_else(|_| Err(Error::Store(StoreError::Corrupt("the commit task stopped".into()))))
    }
}

impl Lane {
    /// Adds a job; true when no commit task runs and the caller must start one.
    fn push(&self, job: Job) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.jobs.push_back(job);
        !std::mem::replace(&mut q.running, true)
    }

    /// The next jobs to commit, or `None` (and the lane marked idle) when there are none.
    fn take(&self) -> Option<Vec<Job>> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.jobs.is_empty() {
            q.running = false;
            return None;
        }
        let n = q.jobs.len().min(MAX_BATCH);
        Some(q.jobs.drain(..n).collect())
    }

    /// Every queued job, leaving the lane's commit task running.
    fn drain(&self) -> Vec<Job> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).jobs.drain(..).collect()
    }

    fn requeue(&self, job: Job) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).jobs.push_front(job);
    }
}

/// Marks the lane idle if the commit task ends by a panic, answering nobody: the waiting
/// callers then get an error instead of waiting for ever.
struct Idle(Arc<Lane>);

impl Drop for Idle {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.jobs.clear();
            q.running = false;
        }
    }
}

/// A lane's commit task: commits batches until the queue is empty.
async fn run(core: Arc<Core>, lane: Arc<Lane>) {
    let _idle = Idle(lane.clone());
    // Until the queue is empty, background writers wait: otherwise they queue for the write
    // connection while a batch is being gathered and the next batch waits behind them.
    let _turn = core.store.foreground();
    while let Some(jobs) = lane.take() {
        commit(&core, &lane, jobs).await;
    }
}

/// Why a batch's transaction did not commit.
enum Failed {
    /// Job `i` failed after writing; the others are untouched by it.
    Job(usize, Error),
    /// The transaction could not begin or commit: nothing of it is saved.
    All(Error),
    /// The gathered writes failed and it is not known for which job: try them one by one.
    Unclear,
}

/// Commits `jobs` together and answers each, dropping any job that fails after writing.
async fn commit(core: &Core, lane: &Lane, mut jobs: Vec<Job>) {
    while !jobs.is_empty() {
        match attempt(core, &jobs).await {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    job.answer(result);
                }
                return;
            }
            Err(Failed::Job(i, Error::Conflict)) if jobs[i].conflicts + 1 < ATTEMPTS => {
                // Another node changed the case in between: apply it again to the new state.
                let mut job = jobs.remove(i);
                job.conflicts += 1;
                lane.requeue(job);
            }
            Err(Failed::Job(i, e)) => jobs.remove(i).answer(Err(e)),
            Err(Failed::Unclear) => unreachable!("an unclear failure is retried job by job"),
            Err(Failed::All(e)) => {
                let message = e.to_string();
                // Those queued meanwhile would wait as long again for the same database: they
                // get the same answer now, so that no caller waits much beyond one acquire
                // timeout of the pool.
                jobs.extend(lane.drain());
                for job in jobs {
                    job.answer(Err(Error::Unavailable(message.clone())));
                }
                return;
            }
        }
    }
}

/// One transaction over `jobs`: each job's own result, or why the whole did not commit. The
/// reads and writes are gathered (one statement per table for the whole batch); should the
/// database refuse them, the jobs are written one by one, which finds the job at fault.
async fn attempt(core: &Core, jobs: &[Job]) -> Result<Vec<Result<Case, Error>>, Failed> {
    match attempt_gathered(core, jobs).await {
        Err(Failed::Unclear) => attempt_each(core, jobs).await,
        other => other,
    }
}

async fn attempt_gathered(core: &Core, jobs: &[Job]) -> Result<Vec<Result<Case, Error>>, Failed> {
    let mut tx = core.store.begin().await.map_err(|e| Failed::All(e.into()))?;
    let mut gathered = Gathered::read(&mut tx, jobs).await.map_err(|_| Failed::Unclear)?;
    let mut results = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        match gathered.apply(core, &mut tx, i, job).await {
            Ok(case) => results.push(Ok(case)),
            Err(Step::Clean(e)) => results.push(Err(e)),
            Err(Step::Dirty(e)) => return Err(Failed::Job(i, e)),
        }
    }
    match gathered.write(&mut tx, core.store.backend, millis(core.now())).await {
        Ok(()) => {}
        Err(Flush::Conflict(i)) => return Err(Failed::Job(i, Error::Conflict)),
        // The job-by-job attempt meets the same refusal and says which job it belongs to.
        Err(Flush::Failed) => return Err(Failed::Unclear),
    }
    tx.commit().await.map_err(|e| Failed::All(StoreError::from(e).into()))?;
    Ok(results)
}

/// The jobs applied and written one after another in one transaction.
async fn attempt_each(core: &Core, jobs: &[Job]) -> Result<Vec<Result<Case, Error>>, Failed> {
    let mut tx = core.store.begin().await.map_err(|e| Failed::All(e.into()))?;
    let mut results = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        match apply(core, &mut tx, job).await {
            Ok(case) => results.push(Ok(case)),
            Err(Step::Clean(e)) => results.push(Err(e)),
            // Dropping the transaction rolls it back.
            Err(Step::Dirty(e)) => return Err(Failed::Job(i, e)),
        }
    }
    tx.commit().await.map_err(|e| Failed::All(StoreError::from(e).into()))?;
    Ok(results)
}

async fn apply(core: &Core, tx: &mut crate::store::Tx, job: &Job) -> Result<Case, Step> {
    let key = job.key.as_deref();
    if let Some(case) = core.replay(tx, key).await.map_err(Step::after_read)? {
        return Ok(case);
    }
    let case = core.apply_in(tx, &job.case_id, &job.command, job.channel, &job.origin).await?;
    core.remember(tx, key, &case).await.map_err(Step::Dirty)?;
    Ok(case)
}
