//! The service layer: load a case, apply a command with the pure core, and write the new state,
//! its audit entries, outbox rows, timers and reservations in one transaction.

use crate::definition::check::{self, Context};
use crate::definition::model::Definition;
use crate::diagnostic::Report;
use crate::project::Project;
use crate::runtime::{self, Case, Channel, Command, Effect, Envelope, Party, Transition, World};
use crate::store::audit::Chain;
use crate::store::{self, Store, StoreError, Tx, audit, cases, effects, millis};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod batch;
mod floor;
mod gather;
mod publish;
use batch::Step;
pub use floor::Prepared;

/// Why the engine refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The workflow's rules refused the command (already decided, not assignee, …).
    #[error(transparent)]
    Rejected(#[from] runtime::Error),
    #[error("no case {0}")]
    NoSuchCase(String),
    #[error("no valid workflow {0}")]
    NoSuchWorkflow(String),
    #[error("the case was changed by someone else at the same moment; try again")]
    Conflict,
    /// A webhook's body does not give what the workflow's `webhook` mapping needs.
    #[error("the webhook body does not fit the workflow: {0}")]
    BadPayload(String),
    /// The database could not begin or commit the change; nothing of it is saved. Worth
    /// repeating shortly (with the same idempotency key, where there is one).
    #[error("the database is not available just now ({0}); try again shortly")]
    Unavailable(String),
    #[error(transparent)]
    Store(StoreError),
}

impl Error {
    /// Whether the database was out of reach (down, restarting, every connection busy), so
    /// that nothing was saved and the same request may be repeated shortly.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Store(StoreError::Database(e)) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(e) => e.code().is_some_and(|code| server_went_away(&code)),
                _ => false,
            },
            _ => false,
        }
    }
}

/// PostgreSQL's codes for a connection it ended or refused: class 08 (connection exception),
/// and a server shutting down (`57P01` admin, `57P02` crash, `57P03` cannot connect now), as
/// when it is restarted under a running transaction.
fn server_went_away(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Conflict => Error::Conflict,
            StoreError::FrameExceeded { portfolio, year, left } => {
                Error::Rejected(runtime::Error::FrameExceeded { portfolio, year, left })
            }
            other => Error::Store(other),
        }
    }
}

/// What a new case needs.
struct NewCase<'a> {
    workflow: &'a str,
    data: Map<String, Value>,
    starter: Party,
    channel: Channel,
    /// Sub-cases get an id derived from their parent's, so a repeated start is recognised.
    id: Option<String>,
    parent: Option<runtime::ParentLink>,
}

/// How often a command is re-applied when another writer changed the case in between.
const ATTEMPTS: usize = 5;

/// Where the engine reads the time: the system clock, or a fixed or shifted one in tests and
/// scenario runs.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// What every request reads: the store, the workflows folder, the definitions and the clock.
/// [`Engine`] shares it with its commit tasks.
pub struct Core {
    pub store: Store,
    /// The workflows folder as last loaded; swapped whole by [`Engine::reload`].
    project: std::sync::RwLock<Arc<Project>>,
    /// Definitions by (workflow, hash): the current files, and older versions parsed from the
    /// store when a case still runs on them.
    versions: Mutex<HashMap<(String, String), Arc<Definition>>>,
    /// The version of each workflow published for every node (see [`Core::sync_versions`]);
    /// empty until the first sync, when the folder's files are in force.
    published: std::sync::RwLock<HashMap<String, String>>,
    /// This node's folder (workflow → hash) at the last sync.
    folder_seen: Mutex<HashMap<String, String>>,
    clock: Clock,
}

impl Engine {
    pub fn new(store: Store, project: Project) -> Engine {
        let lanes = match store.backend {
            // SQLite has one writer: one lane gathers every decision into one commit.
            store::Backend::Sqlite => 1,
            // PostgreSQL commits in parallel; cases are spread over lanes by id, so a case's
            // commands stay in order and never conflict with each other across lanes. Fewer
            // lanes make larger batches, whose writes are gathered (`gather`): measured at 8
            // clients, 8 lanes 780/s, 4 lanes 955/s, 2 lanes 994/s, 1 lane 1,098/s. Two keep a
            // lane that waits (on a frame's row lock, say) from holding up every decision.
            store::Backend::Postgres => 2,
        };
        Engine { core: Arc::new(Core::new(store, project)), commits: Arc::new(batch::Lanes::new(lanes)) }
    }

    /// The same engine reading time from `clock`. Call it before the engine is shared.
    pub fn with_clock(mut self, clock: Clock) -> Engine {
        let core = Arc::get_mut(&mut self.core).expect("with_clock is called before the engine is shared");
        core.clock = clock;
        self
    }

    /// Applies a command to a case and returns the case once the change is durable. Commands
    /// that arrive while a commit is under way are committed together in the next one (group
    /// commit); each is still applied to the case as its predecessor left it, and each gets its
    /// own result.
    pub async fn execute(
        &self,
        case_id: &str,
        command: Command,
        channel: Channel,
        origin: Map<String, Value>,
        key: Option<&str>,
    ) -> Result<Case, Error> {
        let job = batch::Job::new(case_id, command, channel, origin, key);
        self.commits.submit(&self.core, job).await
    }

    /// Delivers a signal to the open case waiting for `name` under `key`. With an idempotency
    /// key, a repeat returns the first result even after the case moved on.
    pub async fn signal(
        &self,
        name: &str,
        key: &str,
        payload: Value,
        channel: Channel,
        origin: Map<String, Value>,
        idempotency: Option<&str>,
    ) -> Result<Case, Error> {
        if idempotency.is_some() {
            let mut tx = self.store.pool.begin().await.map_err(StoreError::from)?;
            let first = self.replay(&mut tx, idempotency).await?;
            tx.rollback().await.map_err(StoreError::from)?;
            if let Some(case) = first {
                return Ok(case);
            }
        }
        let id = cases::waiting_for(&self.store.pool, name, key).await?;
        let id = id.ok_or(Error::Rejected(runtime::Error::NotWaiting))?;
        let command = Command::Signal { name: name.into(), payload };
        self.execute(&id, command, channel, origin, idempotency).await
    }
}

/// The running engine: what requests read ([`Core`], reached through `Deref`) and the lanes
/// that group concurrent commands into shared commits.
pub struct Engine {
    core: Arc<Core>,
    commits: Arc<batch::Lanes>,
}

impl std::ops::Deref for Engine {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Core {
    fn new(store: Store, project: Project) -> Core {
        // The current versions are shared from the start, so commands never copy a definition.
        let current = project
            .workflows
            .iter()
            .filter_map(|w| w.definition.as_ref().map(|d| ((w.id.clone(), w.hash.clone()), Arc::new(d.clone()))))
            .collect();
        Core {
            store,
            project: std::sync::RwLock::new(Arc::new(project)),
            versions: Mutex::new(current),
            published: Default::default(),
            folder_seen: Default::default(),
            clock: Arc::new(jiff::Timestamp::now),
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        (self.clock)()
    }

    /// The workflows folder in force now. Hold the returned `Arc` for the length of one
    /// request, so that a reload in between cannot mix two versions of the directory.
    pub fn project(&self) -> Arc<Project> {
        self.project.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a newly loaded folder in force, keeping the last good version of every workflow
    /// whose new file has errors. Returns the ids kept from before, or `None` when a shared file
    /// (directory, frames, templates) has errors and the old folder stays in force as a whole.
    pub fn reload(&self, mut new: Project) -> Option<Vec<String>> {
        let kept = new.keep_valid_from(&self.project())?;
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        for w in &new.workflows {
            if let Some(def) = &w.definition {
                versions.entry((w.id.clone(), w.hash.clone())).or_insert_with(|| Arc::new(def.clone()));
            }
        }
        drop(versions);
        *self.project.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        Some(kept)
    }

    /// Starts a case of the current version of `workflow`.
    pub async fn start(
        &self,
        workflow: &str,
        data: Map<String, Value>,
        starter: Party,
        channel: Channel,
        key: Option<&str>,
    ) -> Result<Case, Error> {
        let mut tx = self.store.begin().await?;
        if let Some(case) = self.replay(&mut tx, key).await? {
            return Ok(case);
        }
        let case = self.start_in(&mut tx, NewCase { workflow, data, starter, channel, id: None, parent: None }).await?;
        self.remember(&mut tx, key, &case).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(case)
    }

    /// Who `who` is: a person of the directory by id, or an outside email address; `None`
    /// when it is neither.
    pub fn party(&self, who: &str) -> Option<Party> {
        if let Some(p) = self.project().directory.person(who) {
            return Some(runtime::assign::party(p));
        }
        let address = who.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        address.then(|| Party { person: None, email: who.into(), name: who.into(), lang: Default::default() })
    }

    /// The current, valid definition of `workflow`.
    pub fn current(&self, workflow: &str) -> Option<Arc<Definition>> {
        self.cached(workflow, &self.hash_in_force(workflow)?)
    }

    /// A definition from the version cache (which holds every current file's).
    fn cached(&self, workflow: &str, hash: &str) -> Option<Arc<Definition>> {
        let key = (workflow.to_string(), hash.to_string());
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned()
    }

    /// Starts a case from a webhook's JSON body through the workflow's `webhook` mapping; a
    /// repeated `key` (the webhook id) returns the first case.
    pub async fn start_from_webhook(&self, workflow: &str, payload: &Value, key: &str) -> Result<Case, Error> {
        let def = self.current(workflow).ok_or_else(|| Error::NoSuchWorkflow(workflow.into()))?;
        let hook = def.webhook.as_ref().ok_or_else(|| Error::NoSuchWorkflow(format!("{workflow} (no webhook)")))?;
        let vars = [("payload", payload.clone())];
        let mut data = Map::new();
        for (field, e) in &hook.data {
            let value = crate::expr::evaluate(&e.source, &vars).map_err(Error::BadPayload)?;
            if !value.is_null() {
                data.insert(field.name.clone(), value);
            }
        }
        let who = crate::expr::evaluate(&hook.starter.source, &vars).map_err(Error::BadPayload)?;
        let who = who.as_str().unwrap_or_default();
        let starter = self.party(who).ok_or_else(|| {
            Error::BadPayload(format!(
                "`starter` gives `{who}`, which is neither a person in the directory nor an email address"
            ))
        })?;
        self.start(workflow, data, starter, Channel::Webhook, Some(key)).await
    }

    async fn start_in(&self, tx: &mut Tx, new: NewCase<'_>) -> Result<Case, Error> {
        let workflow = new.workflow;
        let project = self.project();
        let file = project
            .valid_workflows()
            .find(|w| w.id == workflow)
            .ok_or_else(|| Error::NoSuchWorkflow(workflow.into()))?;
        let now = self.now();
        let hash = self.hash_in_force(workflow).unwrap_or_else(|| file.hash.clone());
        let def = self.cached(&file.id, &hash).ok_or_else(|| Error::NoSuchWorkflow(workflow.into()))?;
        let def = &*def;
        if hash == file.hash {
            cases::save_version(tx, workflow, &file.hash, &file.source, millis(now)).await?;
        }
        let year = now.to_zoned(crate::calendar::stockholm()).year();
        let seq = cases::next_number(tx, &def.series, i64::from(year)).await?;
        let number = format!("{} {year}/{seq:04}", def.series);
        let id = new.id.unwrap_or_else(|| format!("{}-{year}-{seq:04}", def.series.to_lowercase()));
        let command =
            Command::Start { id, number, definition_hash: hash.clone(), data: new.data, starter: new.starter };
        let envelope = Envelope { command, channel: new.channel, at: now, origin: Map::new() };
        let mut transition =
            runtime::apply(&World { directory: &project.directory, frames: &project.frames }, def, None, &envelope)?;
        transition.case.parent = new.parent;
        self.write(tx, None, &transition, def, now).await.map_err(Step::into_error)?;
        Ok(transition.case)
    }

    /// Loads, applies and writes inside the caller's transaction. A failure says whether it
    /// left writes behind, so that a shared commit knows to roll back.
    async fn apply_in(
        &self,
        tx: &mut Tx,
        case_id: &str,
        command: &Command,
        channel: Channel,
        origin: &Map<String, Value>,
    ) -> Result<Case, Step> {
        let now = self.now();
        let project = self.project();
        let loaded = cases::load_for_write(tx, case_id).await.map_err(|e| Step::after_read(e.into()))?;
        let (case, chain) = loaded.ok_or_else(|| Step::Clean(Error::NoSuchCase(case_id.into())))?;
        let def = self.definition(tx, &case.workflow, &case.definition_hash).await.map_err(Step::after_read)?;
        let envelope = Envelope { command: command.clone(), channel, at: now, origin: origin.clone() };
        let transition = runtime::apply(
            &World { directory: &project.directory, frames: &project.frames },
            &def,
            Some(&case),
            &envelope,
        )
        .map_err(|e| Step::Clean(e.into()))?;
        if transition.is_noop(&case) {
            return Ok(case);
        }
        self.write(tx, Some((&case, &chain)), &transition, &def, now).await?;
        Ok(transition.case)
    }

    /// Starts the sub-cases and reports the outcomes to parents queued by committed
    /// transitions. Each row is claimed, carried out and marked done in one transaction, so it
    /// happens exactly once; a row that keeps failing is kept as `dead`, with its error.
    pub async fn process_internal(&self) -> Result<usize, Error> {
        let mut done = 0;
        loop {
            let mut tx = self.store.begin_background().await?;
            let now = millis(self.now());
            let Some(row) = effects::next_due(&mut tx, self.store.backend, "internal", now).await? else { break };
            match self.carry_out(&mut tx, &row).await {
                Ok(()) => {
                    effects::mark_done(&mut tx, row.id).await?;
                    tx.commit().await.map_err(StoreError::from)?;
                    done += 1;
                }
                Err(e) => {
                    // Nothing of the failed attempt is kept; only the failure is recorded.
                    tx.rollback().await.map_err(StoreError::from)?;
                    let mut tx = self.store.begin_background().await?;
                    let dead = row.attempts + 1 >= 10;
                    effects::mark_failed(
                        &mut tx,
                        row.id,
                        &e.to_string(),
                        now + effects::backoff_ms(row.attempts),
                        dead,
                    )
                    .await?;
                    tx.commit().await.map_err(StoreError::from)?;
                }
            }
        }
        Ok(done)
    }

    async fn carry_out(&self, tx: &mut Tx, row: &effects::OutboxRow) -> Result<(), Error> {
        match &row.effect {
            Effect::StartSubcase { workflow, data, parent } => {
                let parent_case =
                    cases::load(tx, &parent.case_id).await?.ok_or_else(|| Error::NoSuchCase(parent.case_id.clone()))?;
                let id = format!("{}-{}", parent.case_id, parent.entry);
                if cases::load(tx, &id).await?.is_some() {
                    return Ok(());
                }
                let new = NewCase {
                    workflow,
                    data: data.clone(),
                    starter: parent_case.started_by,
                    channel: Channel::System,
                    id: Some(id),
                    parent: Some(parent.clone()),
                };
                self.start_in(tx, new).await.map(|_| ())
            }
            Effect::FinishParent { parent, case_id, outcome } => {
                let command = Command::SubcaseFinished { case_id: case_id.clone(), outcome: *outcome };
                self.apply_in(tx, &parent.case_id, &command, Channel::System, &Map::new())
                    .await
                    .map(|_| ())
                    .map_err(Step::into_error)
            }
            _ => Ok(()),
        }
    }

    /// The case a repeated idempotency key produced the first time.
    pub(crate) async fn replay(&self, tx: &mut Tx, key: Option<&str>) -> Result<Option<Case>, Error> {
        let Some(key) = key else { return Ok(None) };
        let Some(result) = effects::seen(tx, key).await? else { return Ok(None) };
        let first: Value = store::from_json(&result)?;
        let id = first["case_id"].as_str().unwrap_or_default();
        Ok(cases::load(tx, id).await?)
    }

    pub(crate) async fn remember(&self, tx: &mut Tx, key: Option<&str>, case: &Case) -> Result<(), Error> {
        if let Some(key) = key {
            let result = serde_json::json!({ "case_id": case.id, "version": case.version }).to_string();
            effects::remember(tx, key, &case.id, &result, millis(self.now())).await?;
        }
        Ok(())
    }

    /// The definition a case runs on: the current file if its hash matches, else the stored
    /// version it started on.
    async fn definition(&self, tx: &mut Tx, workflow: &str, hash: &str) -> Result<Arc<Definition>, Error> {
        let cache_key = (workflow.to_string(), hash.to_string());
        if let Some(def) = self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key) {
            return Ok(def.clone());
        }
        let source = cases::version_source(tx, workflow, hash)
            .await?
            .ok_or_else(|| Error::NoSuchWorkflow(format!("{workflow}@{hash}")))?;
        let def = Arc::new(self.parse_version(workflow, &source)?);
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).insert(cache_key, def.clone());
        Ok(def)
    }

    fn parse_version(&self, workflow: &str, source: &str) -> Result<Definition, Error> {
        let invalid = || Error::NoSuchWorkflow(format!("{workflow} (stored version does not parse)"));
        let node = crate::yaml::parse(source).map_err(|_| invalid())?;
        let mut r = Report::new(workflow);
        let def = crate::definition::parse::definition(&mut r, workflow, &node).ok_or_else(invalid)?;
        let project = self.project();
        let ids: Vec<String> = project.workflows.iter().map(|w| w.id.clone()).collect();
        let cx = Context {
            directory: &project.directory,
            frames: &project.frames,
            templates: &project.templates,
            workflows: &ids,
            source,
        };
        check::check(&mut r, &def, &cx);
        Ok(def)
    }

    /// Writes a transition: reservations first (they may refuse it), then the case, the audit
    /// entries, timers and outbox rows. The caller commits. A refusal by the first reservation
    /// leaves nothing behind that matters (at most an empty ledger row), so it is clean: a
    /// shared commit need not start over for it.
    async fn write(
        &self,
        tx: &mut Tx,
        before: Option<(&Case, &Chain)>,
        t: &Transition,
        def: &Definition,
        now: jiff::Timestamp,
    ) -> Result<(), Step> {
        self.reserve(tx, t, millis(now)).await?;
        self.write_case(tx, before, t, def, now).await.map_err(Step::Dirty)
    }

    async fn reserve(&self, tx: &mut Tx, t: &Transition, now_ms: i64) -> Result<(), Step> {
        let case = &t.case;
        let mut reserved = false;
        for effect in &t.effects {
            if let Effect::Reserve { frames, portfolio, year, amount, .. } = effect {
                let frame = self
                    .project()
                    .frames
                    .iter()
                    .find(|(n, _)| n == frames)
                    .and_then(|(_, p)| p.frame(portfolio, *year));
                let Some(frame) = frame else {
                    let refusal = runtime::Error::NotAllowed(format!("no frame for {portfolio} {year}")).into();
                    return Err(if reserved { Step::Dirty(refusal) } else { Step::Clean(refusal) });
                };
                match effects::reserve(tx, frames, portfolio, *year, *amount, frame * 100).await {
                    Err(e @ StoreError::FrameExceeded { .. }) if !reserved => return Err(Step::Clean(e.into())),
                    other => other.map_err(|e| Step::Dirty(e.into()))?,
                }
                effects::record_reservation(tx, &case.id, effect, now_ms).await.map_err(|e| Step::Dirty(e.into()))?;
                reserved = true;
            }
        }
        Ok(())
    }

    /// The case row, its audit entries, timers and outbox rows.
    async fn write_case(
        &self,
        tx: &mut Tx,
        before: Option<(&Case, &Chain)>,
        t: &Transition,
        def: &Definition,
        now: jiff::Timestamp,
    ) -> Result<(), Error> {
        let case = &t.case;
        let now_ms = millis(now);
        let entries: Vec<runtime::AuditEntry> =
            t.effects.iter().filter_map(|e| if let Effect::Audit(a) = e { Some(a.clone()) } else { None }).collect();
        let from = before.map_or_else(Chain::start, |(_, chain)| chain.clone());
        let (rows, to) = audit::link(&case.id, &from, &entries);
        // The case row goes first: its conditional update is what detects a concurrent writer,
        // before any audit row could collide with theirs.
        match before {
            None => cases::insert(tx, case, &title(def, case), &to).await?,
            Some((b, _)) => cases::update(tx, case, b.version, &from, &to).await?,
        }
        audit::insert(tx, &case.id, rows).await?;
        let mut queued = Vec::new();
        for effect in &t.effects {
            match effect {
                Effect::ScheduleTimer { key, at, timer } => effects::schedule(tx, key, &case.id, *at, timer).await?,
                Effect::CancelTimer { key } => effects::cancel(tx, key).await?,
                Effect::Notify { .. } => queued.push(("email", effect)),
                Effect::Emit { .. } => queued.push(("webhook", effect)),
                Effect::Call { .. } => queued.push(("call", effect)),
                Effect::StartSubcase { .. } | Effect::FinishParent { .. } => queued.push(("internal", effect)),
                Effect::Reserve { .. } | Effect::Audit(_) => {}
            }
        }
        effects::enqueue_all(tx, &case.id, &queued, now_ms).await?;
        Ok(())
    }

    /// The definition a case runs on.
    pub async fn definition_of(&self, case: &Case) -> Result<Arc<Definition>, Error> {
        // From the cache without taking a connection: a caller holding a write transaction
        // (the mailer renders under its outbox row's) would otherwise wait for a connection
        // while the pool's others wait for its lock, until the busy timeout.
        if let Some(def) = self.cached(&case.workflow, &case.definition_hash) {
            return Ok(def);
        }
        let mut tx = self.store.pool.begin().await.map_err(StoreError::from)?;
        let def = self.definition(&mut tx, &case.workflow, &case.definition_hash).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(def)
    }

    /// The definition a case runs on, if it is at hand without the database: the version
    /// cache, else the current file.
    pub fn current_or_stored(&self, case: &Case) -> Option<Arc<Definition>> {
        let key = (case.workflow.clone(), case.definition_hash.clone());
        let cached = self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        cached.or_else(|| self.current(&case.workflow))
    }

    /// The workflow file a case started on, as it was.
    pub async fn definition_source(&self, case: &Case) -> Result<Option<String>, Error> {
        let mut tx = self.store.pool.begin().await.map_err(StoreError::from)?;
        let source = cases::version_source(&mut tx, &case.workflow, &case.definition_hash).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(source)
    }

    /// Queues a fresh task email (with new links) for a person who still holds an open task, as
    /// asked for from an expired link's page; false when the task is closed or no longer theirs.
    pub async fn resend_task_email(&self, case_id: &str, task_id: &str, recipient: &str) -> Result<bool, Error> {
        let mut tx = self.store.begin().await?;
        let (case, chain) =
            cases::load_for_write(&mut tx, case_id).await?.ok_or_else(|| Error::NoSuchCase(case_id.into()))?;
        let Some(task) = case.task(task_id).filter(|t| t.is_open()) else { return Ok(false) };
        let Some(assignment) = task.assignment_of(recipient) else { return Ok(false) };
        let def = self.definition(&mut tx, &case.workflow, &case.definition_hash).await?;
        let template = def
            .state(&task.state)
            .and_then(|s| runtime::apply::task_def(s, task.branch.as_deref()))
            .map_or("task".to_string(), |t| t.email.name.clone());
        let now = self.now();
        let notice = Effect::Notify {
            kind: runtime::NoticeKind::TaskAssigned,
            template,
            to: assignment.party.clone(),
            task: Some(task_id.into()),
        };
        effects::enqueue(&mut tx, &case.id, "email", &notice, millis(now)).await?;
        let entry = runtime::AuditEntry {
            at: now,
            actor: recipient.to_string(),
            channel: Channel::EmailLink,
            what: "link.renewed".into(),
            detail: serde_json::json!({ "task": task_id }),
        };
        let (rows, end) = audit::link(&case.id, &chain, &[entry]);
        audit::advance(&mut tx, &case.id, &chain, &end).await?;
        audit::insert(&mut tx, &case.id, rows).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(true)
    }

    /// Loads a case by id or number.
    pub async fn case(&self, id: &str) -> Result<Case, Error> {
        let mut tx = self.store.pool.begin().await.map_err(StoreError::from)?;
        let case = cases::load(&mut tx, id).await?.ok_or_else(|| Error::NoSuchCase(id.into()))?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(case)
    }

    /// Fires every timer due at `now`; returns how many fired. Each timer is applied and
    /// deleted in one transaction, so it fires once even if the process dies in between.
    pub async fn fire_due_timers(&self, now: jiff::Timestamp) -> Result<usize, Error> {
        let mut tx = self.store.begin_background().await?;
        let due = effects::claim_timers(&mut tx, self.store.backend, millis(now), 60_000, 100).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let mut fired = 0;
        for timer in due {
            match self.fire(&timer, now).await {
                Ok(()) => fired += 1,
                Err(Error::Rejected(runtime::Error::CaseClosed)) => self.drop_timer(&timer.key).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(fired)
    }

    async fn fire(&self, timer: &effects::DueTimer, now: jiff::Timestamp) -> Result<(), Error> {
        let project = self.project();
        for _ in 0..ATTEMPTS {
            let mut tx = self.store.begin_background().await?;
            let (case, chain) = cases::load_for_write(&mut tx, &timer.case_id)
                .await?
                .ok_or_else(|| Error::NoSuchCase(timer.case_id.clone()))?;
            let def = self.definition(&mut tx, &case.workflow, &case.definition_hash).await?;
            let envelope = Envelope {
                command: Command::Timer { timer: timer.timer.clone() },
                channel: Channel::Timer,
                at: now,
                origin: Map::new(),
            };
            let transition = runtime::apply(
                &World { directory: &project.directory, frames: &project.frames },
                &def,
                Some(&case),
                &envelope,
            )?;
            effects::cancel(&mut tx, &timer.key).await?;
            if !transition.is_noop(&case) {
                match self.write(&mut tx, Some((&case, &chain)), &transition, &def, now).await {
                    Err(Step::Dirty(Error::Conflict)) => continue,
                    other => other.map_err(Step::into_error)?,
                }
            }
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(());
        }
        Err(Error::Conflict)
    }

    async fn drop_timer(&self, key: &str) -> Result<(), Error> {
        let mut tx = self.store.begin_background().await?;
        effects::cancel(&mut tx, key).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

/// A case's title from the workflow's `title` template, or the workflow's name.
pub fn title(def: &Definition, case: &Case) -> String {
    let Some(template) = &def.title else { return def.name.sv.clone() };
    render_title(&template.source, &case.data, &case.number).unwrap_or_else(|| def.name.sv.clone())
}

/// Renders a title template; `None` when it does not compile or render. Every email, task
/// list row and case page asks for a title, so each template is compiled once per process,
/// in one registry keyed by its source, rather than a registry built and the template parsed
/// on every call.
fn render_title(source: &str, data: &Map<String, Value>, number: &str) -> Option<String> {
    use std::sync::{LazyLock, RwLock};
    static TITLES: LazyLock<RwLock<handlebars::Handlebars<'static>>> = LazyLock::new(|| {
        let mut hb = handlebars::Handlebars::new();
        hb.register_escape_fn(handlebars::no_escape);
        RwLock::new(hb)
    });
    #[derive(serde::Serialize)]
    struct Number<'a> {
        number: &'a str,
    }
    #[derive(serde::Serialize)]
    struct TitleContext<'a> {
        data: &'a Map<String, Value>,
        case: Number<'a>,
    }
    let context = TitleContext { data, case: Number { number } };
    {
        let hb = TITLES.read().unwrap_or_else(|p| p.into_inner());
        if hb.has_template(source) {
            return hb.render(source, &context).ok();
        }
    }
    let mut hb = TITLES.write().unwrap_or_else(|p| p.into_inner());
    if !hb.has_template(source) {
        hb.register_template_string(source, source).ok()?;
    }
    hb.render(source, &context).ok()
}

#[cfg(test)]
mod title_tests {
    use super::render_title;
    use serde_json::{Map, Value, json};

    fn data(rubrik: &str) -> Map<String, Value> {
        json!({ "rubrik": rubrik }).as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn titles_render_each_case_with_its_own_data_and_without_escaping() {
        let template = "{{case.number}}: {{data.rubrik}}";
        assert_eq!(render_title(template, &data("Bygg & miljö"), "IT 1").as_deref(), Some("IT 1: Bygg & miljö"));
        assert_eq!(render_title(template, &data("E-arkiv"), "IT 2").as_deref(), Some("IT 2: E-arkiv"));
        assert_eq!(render_title("{{data.rubrik}}", &data("E-arkiv"), "IT 2").as_deref(), Some("E-arkiv"));
        assert_eq!(render_title("{{data.saknas}}!", &data("x"), "IT 3").as_deref(), Some("!"), "not strict");
    }

    #[test]
    fn a_template_that_does_not_compile_gives_no_title() {
        assert_eq!(render_title("{{#if}}", &data("x"), "IT 1"), None);
        assert_eq!(render_title("{{#if}}", &data("x"), "IT 1"), None, "and not a cached one either");
    }
}
