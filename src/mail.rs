//! Email delivery: turns `email` outbox rows into rendered messages with personal decision
//! links, and hands them to SMTP or, with no SMTP server configured, to `.eml` files.
//!
//! Rows go in batches through three steps. (1) In one transaction: claim and lease up to
//! [`BATCH`] due rows, render each, mint its link tokens (stored as hashes) and archive the
//! message under the row's id. (2) Send them, outside any transaction, a few at a time over
//! pooled SMTP connections, while the next batch goes through step 1. (3) In one transaction:
//! mark each row done, or schedule its retry with backoff, or keep it as `dead` when the
//! server refused it for good. A retry sends the archived message again, with the same
//! Message-ID and the same links, so a crash between sending and marking can at worst repeat
//! identical emails, never make a different one. A worker renews the lease of what it holds
//! while it works, so a node that dies holding a batch loses it to another within a minute.

mod smtp;

pub use smtp::SmtpTransport;

use beslut_engine::definition::model::{Definition, FieldType, StateKind};
use beslut_engine::diagnostic::Lang;
use beslut_engine::runtime::{Case, Effect, NoticeKind, Party, Task};
use beslut_engine::service::Engine;
use beslut_engine::store::{effects, mail as mail_store, millis};
use beslut_notifications::links::{self, Claims, Purpose, Secret};
use beslut_notifications::render::{self, EmailContext, Renderer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a decision link outlives its task's deadline.
const GRACE_SECONDS: i64 = 7 * 24 * 3600;
/// How long a link lives when its task has no deadline.
const NO_DEADLINE_SECONDS: i64 = 60 * 24 * 3600;
/// A row is retried this many times before it is kept as `dead`.
const MAX_ATTEMPTS: i64 = 12;
/// How long a claimed row stays with its worker unless renewed: a node that dies holding a
/// batch loses it to the others this long after its last renewal.
const LEASE_MS: i64 = 60_000;
/// How often a worker renews the lease of what it holds: three renewals fit in one lease, so
/// a slow database round does not let a lease lapse under a live worker.
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// Rows claimed, rendered and recorded together: the database commits twice per batch
/// rather than twice per email.
const BATCH: i64 = 64;
/// Rendered emails archived per transaction. Archiving all 64 of a batch at once held
/// SQLite's write connection 16–34 ms (the HTML bodies), and a decision arriving then waited
/// that long; a quarter of it is a wait a decision hardly notices.
const ARCHIVE_CHUNK: usize = 16;
/// Messages in flight at once; the SMTP pool keeps as many connections open between batches.
pub const SENDING_AT_ONCE: usize = 16;
/// A send that takes longer is a transient failure, retried later.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A message ready to go out.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Why sending failed; permanent failures are not retried.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

/// Where messages go: an SMTP server, or files.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, from: &str, message: &Outgoing) -> Result<(), SendError>;
}

/// Writes each message as `DIR/OUTBOX-ID.eml`; used when no SMTP server is configured, so a
/// first run on a fresh machine shows the whole flow.
pub struct FileTransport {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    async fn send(&self, from: &str, message: &Outgoing) -> Result<(), SendError> {
        let built = build(from, message).map_err(|e| SendError { permanent: true, message: e })?;
        std::fs::create_dir_all(&self.dir).map_err(|e| SendError { permanent: false, message: e.to_string() })?;
        let name = message.message_id.trim_matches(['<', '>']).replace(['@', '/'], "_");
        let path = self.dir.join(format!("{name}.eml"));
        std::fs::write(&path, built.formatted()).map_err(|e| SendError { permanent: false, message: e.to_string() })
    }
}

/// How to reach an SMTP server.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `none` (local relays and tests), `starttls` or `tls`.
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A MIME message: text, and HTML as an alternative when there is one.
fn build(from: &str, message: &Outgoing) -> Result<lettre::Message, String> {
    use lettre::message::{MultiPart, SinglePart, header::ContentType};
    let builder = lettre::Message::builder()
        .from(from.parse().map_err(|e| format!("from {from}: {e}"))?)
        .to(message.to.parse().map_err(|e| format!("to {}: {e}", message.to))?)
        .subject(message.subject.clone())
        .message_id(Some(message.message_id.clone()));
    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(message.text.clone());
    let body = match &message.html {
        Some(html) => {
            builder.multipart(MultiPart::alternative().singlepart(text).singlepart(SinglePart::html(html.clone())))
        }
        None => builder.singlepart(text),
    };
    body.map_err(|e| e.to_string())
}

/// What the mailer needs besides the engine.
pub struct Mailer {
    pub engine: Arc<Engine>,
    pub renderer: Renderer,
    pub secret: Secret,
    /// The public address of the server, e.g. `https://beslut.kommun.se`.
    pub base_url: String,
    pub from: String,
    pub sender_name: String,
    pub transport: Box<dyn Transport>,
}

/// A sentence for logs.
type Failure = String;

impl Mailer {
    pub fn new(
        engine: Arc<Engine>,
        secret: Secret,
        base_url: &str,
        transport: Box<dyn Transport>,
    ) -> Result<Mailer, String> {
        let renderer = Renderer::new(&engine.project().templates).map_err(|e| e.to_string())?;
        Ok(Mailer {
            engine,
            renderer,
            secret,
            base_url: base_url.trim_end_matches('/').to_string(),
            from: "Beslut <beslut@localhost>".into(),
            sender_name: "Beslut".into(),
            transport,
        })
    }

    /// Delivers every email row that is due, batch by batch; returns how many were sent.
    pub async fn run_once(&self) -> Result<usize, Failure> {
        self.run_until(&|| false).await
    }

    /// Delivers due email rows batch by batch until none is left or `stop` says so after a
    /// batch; returns how many were sent. A batch claimed but not sent when it stops is given
    /// back at once, so that a node shutting down neither drains a backlog past its stop
    /// timeout nor makes the other nodes wait for its leases.
    pub async fn run_until(&self, stop: &(dyn Fn() -> bool + Sync)) -> Result<usize, Failure> {
        let mut sent = 0;
        let held = std::sync::Mutex::new(Vec::new());
        let mut batch = self.prepare_batch().await?;
        while !batch.is_empty() {
            *held.lock().unwrap_or_else(|p| p.into_inner()) = ids(&batch);
            // The next batch is claimed and rendered while this one is on the wire.
            let next = async {
                let next = self.prepare_batch().await;
                if let Ok(next) = &next {
                    held.lock().unwrap_or_else(|p| p.into_inner()).extend(ids(next));
                }
                next
            };
            let (results, next) = self.renewing(&held, async { tokio::join!(self.send_all(&batch), next) }).await;
            sent += results.iter().filter(|r| r.is_ok()).count();
            self.finish(&batch, results).await?;
            batch = next?;
            if stop() && !batch.is_empty() {
                self.give_back(&ids(&batch)).await?;
                break;
            }
        }
        Ok(sent)
    }

    /// Runs `work` while renewing, every [`RENEW_EVERY`], the lease of the rows in `held`.
    async fn renewing<T>(&self, held: &std::sync::Mutex<Vec<i64>>, work: impl Future<Output = T>) -> T {
        let renew = async {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let ids = held.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Err(e) = self.lease(&ids, Some(millis(self.engine.now()) + LEASE_MS)).await {
                    // The rows stay leased until their last lease ends; the next renewal tries again.
                    tracing::warn!(error = %e, "the lease of the emails being sent could not be renewed");
                }
            }
        };
        tokio::select! {
            done = work => done,
            never = renew => never,
        }
    }

    /// Ends the lease of rows this worker claimed but will not send.
    async fn give_back(&self, ids: &[i64]) -> Result<(), Failure> {
        self.lease(ids, None).await
    }

    async fn lease(&self, ids: &[i64], until: Option<i64>) -> Result<(), Failure> {
        let mut tx = self.engine.store.begin_background().await.map_err(text)?;
        effects::lease_all(&mut tx, ids, until).await.map_err(text)?;
        tx.commit().await.map_err(text)
    }

    /// Step 1: claims a batch of due rows, and renders and archives each message unless a
    /// previous attempt did. The claim and the archive are two short write transactions, and
    /// the rendering between them only reads: on SQLite a batch's 50–250 ms of rendering would
    /// otherwise hold the one write lock that every decision waits for. A crash in between
    /// leaves the rows leased and unrendered; they are rendered afresh when the lease ends.
    async fn prepare_batch(&self) -> Result<Vec<(effects::OutboxRow, Outgoing)>, Failure> {
        let store = &self.engine.store;
        let now = millis(self.engine.now());
        let mut tx = store.begin_background().await.map_err(text)?;
        let rows =
            effects::claim_due(&mut tx, store.backend, "email", now, now + LEASE_MS, BATCH).await.map_err(text)?;
        tx.commit().await.map_err(text)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut read = store.pool.begin().await.map_err(text)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut archived = mail_store::logged_mails(&mut read, &ids).await.map_err(text)?;
        let mut rendering = Rendering::default();
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            let logged = match archived.remove(&row.id) {
                Some(logged) => logged,
                None => {
                    let logged = self.render_row(&mut read, &row, &mut rendering).await?;
                    rendering.mails.push(logged.clone());
                    // Rendering is pure CPU, a millisecond or so an email: let the requests
                    // waiting on this thread go first, rather than after the whole batch.
                    tokio::task::yield_now().await;
                    logged
                }
            };
            batch.push((row, outgoing(logged)));
        }
        read.rollback().await.map_err(text)?;
        if rendering.mails.is_empty() {
            return Ok(batch);
        }
        archive(store, &rendering, now).await?;
        Ok(batch)
    }

    /// Step 2: sends a batch, [`SENDING_AT_ONCE`] at a time; the results are in the batch's
    /// order.
    async fn send_all(&self, batch: &[(effects::OutboxRow, Outgoing)]) -> Vec<Result<(), SendError>> {
        use futures_util::StreamExt;
        // The futures are made up front: a closure inside the stream would make the future
        // of `run_once` not provably `Send`, which the server's worker task needs.
        let sends: Vec<_> = batch.iter().map(|(_, message)| self.send(message)).collect();
        futures_util::stream::iter(sends).buffered(SENDING_AT_ONCE).collect().await
    }

    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        tokio::time::timeout(SEND_TIMEOUT, self.transport.send(&self.from, message)).await.unwrap_or_else(|_| {
            Err(SendError { permanent: false, message: format!("no answer within {} s", SEND_TIMEOUT.as_secs()) })
        })
    }

    /// Step 3, for the whole batch in one transaction: done, or a retry after a backoff, or
    /// `dead` when it cannot succeed.
    async fn finish(
        &self,
        batch: &[(effects::OutboxRow, Outgoing)],
        results: Vec<Result<(), SendError>>,
    ) -> Result<(), Failure> {
        let store = &self.engine.store;
        let now = millis(self.engine.now());
        let mut tx = store.begin_background().await.map_err(text)?;
        let mut done = Vec::with_capacity(batch.len());
        for ((row, _), result) in batch.iter().zip(results) {
            match result {
                Ok(()) => done.push(row.id),
                Err(e) => failed(&mut tx, row, e, now).await.map_err(text)?,
            }
        }
        effects::mark_all_done(&mut tx, &done).await.map_err(text)?;
        mail_store::mark_all_sent(&mut tx, &done, now).await.map_err(text)?;
        tx.commit().await.map_err(text)
    }

    async fn render_row(
        &self,
        tx: &mut beslut_engine::store::Tx,
        row: &effects::OutboxRow,
        rendering: &mut Rendering,
    ) -> Result<mail_store::LoggedMail, Failure> {
        let Effect::Notify { kind, template, to, task } = &row.effect else {
            return Err(format!("outbox row {} is not an email", row.id));
        };
        let (case, def) = self.case_of(tx, &row.case_id, rendering).await?;
        let (case, def) = (case.as_ref(), def.as_ref());
        let task = task.as_deref().and_then(|id| case.task(id));
        let wants_links = matches!(kind, NoticeKind::TaskAssigned | NoticeKind::Reminder | NoticeKind::Escalation);
        let mut links = Vec::new();
        if let (Some(task), true) = (task, wants_links) {
            for (action, label, comment_required) in task_actions(def, task, to.lang) {
                let (token, link) = self.mint(case, task, to, &action, row.id);
                rendering.links.push(link);
                links.push(render::ActionLink { label, url: format!("{}/d/{token}", self.base_url), comment_required });
            }
        }
        let context = self.context(case, def, task, to, links.clone(), *kind);
        let email = self.renderer.render(template, &context).map_err(|e| e.to_string())?;
        let host = self
            .base_url
            .split("://")
            .nth(1)
            .unwrap_or("beslut")
            .split('/')
            .next()
            .unwrap_or("beslut")
            .split(':')
            .next()
            .unwrap_or("beslut");
        let links_json = json!(links.iter().map(|l| json!({ "label": l.label, "url": l.url })).collect::<Vec<_>>());
        Ok(mail_store::LoggedMail {
            outbox_id: row.id,
            case_id: case.id.clone(),
            message_id: format!("<outbox-{}.{}@{host}>", row.id, case.id),
            recipient: to.email.clone(),
            subject: email.subject,
            text: email.text,
            html: email.html,
            links: links_json.to_string(),
            sent_at: None,
        })
    }

    /// A case and its definition, read once per batch: a case's emails go out together.
    async fn case_of(
        &self,
        tx: &mut beslut_engine::store::Tx,
        case_id: &str,
        seen: &mut Rendering,
    ) -> Result<(Arc<Case>, Arc<Definition>), Failure> {
        if let Some(found) = seen.cases.get(case_id) {
            return Ok(found.clone());
        }
        let case = beslut_engine::store::cases::load(tx, case_id).await.map_err(text)?.ok_or("the case is gone")?;
        let key = (case.workflow.clone(), case.definition_hash.clone());
        let def = match seen.definitions.get(&key) {
            Some(def) => def.clone(),
            None => self.engine.definition_of(&case).await.map_err(|e| e.to_string())?,
        };
        seen.definitions.insert(key, def.clone());
        let found = (Arc::new(case), def);
        seen.cases.insert(case_id.to_string(), found.clone());
        Ok(found)
    }

    /// A token for one recipient, task and action, and the row that stores its hash (never
    /// the token itself).
    fn mint(
        &self,
        case: &Case,
        task: &Task,
        to: &Party,
        action: &str,
        outbox_id: i64,
    ) -> (String, mail_store::NewLink) {
        let now = self.engine.now().as_second();
        let expires = task.deadline.map_or(now + NO_DEADLINE_SECONDS, |d| d.as_second() + GRACE_SECONDS);
        let claims = Claims {
            purpose: Purpose::Decide,
            case: case.id.clone(),
            task: task.id.clone(),
            recipient: to.email.to_lowercase(),
            action: action.to_string(),
            expires,
            nonce: links::nonce(),
        };
        let token = links::sign(&self.secret, &claims);
        let stored = mail_store::StoredLink {
            purpose: "decide".into(),
            case_id: case.id.clone(),
            task_id: task.id.clone(),
            recipient: claims.recipient.clone(),
            action: action.into(),
            expires_at: expires,
            used_at: None,
        };
        let link = mail_store::NewLink {
            hash: links::token_hash(&token),
            link: stored,
            created_at: now * 1000,
            outbox_id: Some(outbox_id),
        };
        (token, link)
    }

    fn context(
        &self,
        case: &Case,
        def: &Definition,
        task: Option<&Task>,
        to: &Party,
        actions: Vec<render::ActionLink>,
        kind: NoticeKind,
    ) -> EmailContext {
        let project = self.engine.project();
        let compose = Compose {
            def,
            case,
            directory: &project.directory,
            frames: &project.frames,
            base_url: &self.base_url,
            sender_name: &self.sender_name,
        };
        compose.context(task, to, actions, kind)
    }
}

/// What an email says about a case, apart from its links: shared by the mailer and by
/// `beslut test`, which shows process owners the emails their scenarios send.
pub struct Compose<'a> {
    pub def: &'a Definition,
    pub case: &'a Case,
    pub directory: &'a beslut_engine::directory::Directory,
    /// For portfolio names.
    pub frames: &'a [(String, beslut_engine::portfolios::Portfolios)],
    pub base_url: &'a str,
    pub sender_name: &'a str,
}

impl Compose<'_> {
    pub fn context(
        &self,
        task: Option<&Task>,
        to: &Party,
        actions: Vec<render::ActionLink>,
        kind: NoticeKind,
    ) -> EmailContext {
        let (case, def) = (self.case, self.def);
        let lang = to.lang;
        let state_label = def.state(&case.state).map(|s| s.label.get(lang).to_string()).unwrap_or_default();
        let outcome_label = match &case.status {
            beslut_engine::runtime::Status::Closed { outcome, .. } => {
                beslut_engine::definition::model::Outcome::from(*outcome).label(lang).to_string()
            }
            beslut_engine::runtime::Status::Open => String::new(),
        };
        EmailContext {
            sender: render::Sender { name: self.sender_name.to_string() },
            recipient: render::Recipient { name: to.name.clone(), email: to.email.clone() },
            case: render::CaseInfo {
                number: case.number.clone(),
                title: beslut_engine::service::title(def, case),
                workflow_name: def.name.get(lang).to_string(),
                url: format!("{}/arenden/{}", self.base_url, case.id),
                state_label,
                outcome_label,
            },
            data: self.formatted_data(lang),
            fields: self.key_fields(lang),
            task: task.map(|t| self.task_info(t, to)),
            actions,
            decision: decision_info(case, task, kind),
            lang,
        }
    }

    fn task_info(&self, task: &Task, to: &Party) -> render::TaskInfo {
        let (def, case) = (self.def, self.case);
        let lang = to.lang;
        let state = def.state(&task.state);
        let (label, description) = match (state.map(|s| &s.kind), &task.branch) {
            (Some(StateKind::Parallel(p)), Some(b)) => {
                let branch = p.branches.iter().find(|x| &x.id == b);
                (
                    branch.map(|x| x.label.get(lang).to_string()).unwrap_or_default(),
                    state.and_then(|s| s.description.as_ref()).map(|d| d.get(lang).to_string()),
                )
            }
            _ => (
                state.map(|s| s.label.get(lang).to_string()).unwrap_or_default(),
                state.and_then(|s| s.description.as_ref()).map(|d| d.get(lang).to_string()),
            ),
        };
        let on_behalf_of = task
            .assignees
            .iter()
            .find(|a| a.party.email.eq_ignore_ascii_case(&to.email))
            .and_then(|a| a.on_behalf_of.as_deref())
            .map(|id| self.directory.person(id).map_or(id.to_string(), |p| p.name.clone()))
            .unwrap_or_default();
        render::TaskInfo {
            label,
            description: description.unwrap_or_default(),
            deadline: task.deadline.map(|d| swedish_time(d, lang)).unwrap_or_default(),
            url: format!("{}/arenden/{}#{}", self.base_url, case.id, task.id),
            escalated: task.escalated,
            on_behalf_of,
        }
    }
}

/// The outbox ids of a batch.
fn ids(batch: &[(effects::OutboxRow, Outgoing)]) -> Vec<i64> {
    batch.iter().map(|(row, _)| row.id).collect()
}

/// Archives rendered emails and their links, [`ARCHIVE_CHUNK`] emails per transaction, each a
/// few multi-row statements: one statement per row would be five round trips per email. A
/// crash between two chunks leaves the rest unarchived, and they are rendered afresh.
async fn archive(store: &beslut_engine::store::Store, rendering: &Rendering, now: i64) -> Result<(), Failure> {
    for (n, mails) in rendering.mails.chunks(ARCHIVE_CHUNK).enumerate() {
        let ids: std::collections::HashSet<i64> = mails.iter().map(|m| m.outbox_id).collect();
        // A link without an email goes with the first chunk, so that none is left out.
        let ours = |l: &&mail_store::NewLink| l.outbox_id.map_or(n == 0, |id| ids.contains(&id));
        let links: Vec<_> = rendering.links.iter().filter(ours).cloned().collect();
        let mut tx = store.begin_background().await.map_err(text)?;
        mail_store::log_mails(&mut tx, mails, now).await.map_err(text)?;
        mail_store::insert_links(&mut tx, &links).await.map_err(text)?;
        tx.commit().await.map_err(text)?;
    }
    Ok(())
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What rendering one batch has read (cases and definitions, read once each) and made (the
/// messages and link tokens to store together).
#[derive(Default)]
struct Rendering {
    cases: HashMap<String, (Arc<Case>, Arc<Definition>)>,
    definitions: HashMap<(String, String), Arc<Definition>>,
    mails: Vec<mail_store::LoggedMail>,
    links: Vec<mail_store::NewLink>,
}

fn outgoing(logged: mail_store::LoggedMail) -> Outgoing {
    Outgoing {
        message_id: logged.message_id,
        to: logged.recipient,
        subject: logged.subject,
        text: logged.text,
        html: logged.html,
    }
}

/// Records a failed send: a retry after a backoff, or `dead` when the server refused the
/// message for good or the attempts ran out.
async fn failed(
    tx: &mut beslut_engine::store::Tx,
    row: &effects::OutboxRow,
    e: SendError,
    now: i64,
) -> Result<(), beslut_engine::store::StoreError> {
    let dead = e.permanent || row.attempts + 1 >= MAX_ATTEMPTS;
    effects::mark_failed(tx, row.id, &e.message, now + effects::backoff_ms(row.attempts), dead).await
}

/// The link action that hands a task to a colleague. Workflow ids start with a letter, so it
/// never collides with a workflow's own action.
pub const DELEGATE: &str = "@delegate";

/// The actions of a task as (id, label, comment required), plus handing it over when the
/// workflow allows that.
pub fn task_actions(def: &Definition, task: &Task, lang: Lang) -> Vec<(String, String, bool)> {
    use beslut_engine::definition::model::CommentRule;
    let Some(state) = def.state(&task.state) else { return Vec::new() };
    let Some(task_def) = beslut_engine::runtime::apply::task_def(state, task.branch.as_deref()) else {
        return Vec::new();
    };
    let mut actions: Vec<(String, String, bool)> = task_def
        .actions
        .iter()
        .map(|a| (a.id.clone(), a.label.get(lang).to_string(), a.comment == CommentRule::Required))
        .collect();
    if task_def.delegable {
        let label = if lang == Lang::En { "Hand over to a colleague" } else { "Lämna över till en kollega" };
        actions.push((DELEGATE.to_string(), label.to_string(), false));
    }
    actions
}

/// The case's data by field id, formatted for reading (money in kronor, enums by label).
impl Compose<'_> {
    fn formatted_data(&self, lang: Lang) -> serde_json::Map<String, Value> {
        let data = &self.case.data;
        self.def
            .all_fields()
            .into_iter()
            .map(|f| {
                (f.id.clone(), Value::String(data.get(&f.id).map(|v| self.format(f, v, lang)).unwrap_or_default()))
            })
            .collect()
    }

    /// The short fields with a value, as label and value pairs.
    fn key_fields(&self, lang: Lang) -> Vec<render::LabelValue> {
        self.def
            .data
            .iter()
            .filter(|f| !f.multiline)
            .filter_map(|f| {
                let value = self.case.data.get(&f.id)?;
                Some(render::LabelValue { label: f.label.get(lang).to_string(), value: self.format(f, value, lang) })
            })
            .filter(|lv| !lv.value.is_empty())
            .take(8)
            .collect()
    }

    /// A value as staff read it: people, förvaltningar and portfolios by name, not by id.
    pub fn format(&self, field: &beslut_engine::definition::model::Field, value: &Value, lang: Lang) -> String {
        use beslut_engine::definition::model::ValuesFrom;
        let Value::String(id) = value else { return format_value(field, value, lang) };
        let named = match (field.kind, field.values_from) {
            (FieldType::Person, _) => self.directory.person(id).map(|p| p.name.clone()),
            (FieldType::Enum, Some(ValuesFrom::Forvaltningar)) => {
                self.directory.forvaltningar.iter().find(|f| &f.id == id).map(|f| f.name.get(lang).to_string())
            }
            (FieldType::Enum, Some(ValuesFrom::Portfolios)) => self
                .frames
                .iter()
                .flat_map(|(_, p)| &p.portfolios)
                .find(|p| &p.id == id)
                .map(|p| p.name.get(lang).to_string()),
            _ => None,
        };
        named.unwrap_or_else(|| format_value(field, value, lang))
    }
}

fn format_value(field: &beslut_engine::definition::model::Field, value: &Value, lang: Lang) -> String {
    match (field.kind, value) {
        (FieldType::Money, Value::Number(n)) => format!("{} kr", group_thousands(n.as_f64().unwrap_or_default())),
        (FieldType::Boolean, Value::Bool(b)) => match (b, lang) {
            (true, Lang::Sv) => "ja".into(),
            (false, Lang::Sv) => "nej".into(),
            (true, Lang::En) => "yes".into(),
            (false, Lang::En) => "no".into(),
        },
        (FieldType::Enum, Value::String(s)) => {
            field.values.iter().find(|v| &v.id == s).map_or(s.clone(), |v| v.label.get(lang).to_string())
        }
        (_, Value::String(s)) => s.clone(),
        (_, Value::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

/// `1250000.5` → `1 250 000,50`, as Swedish writes amounts.
pub fn group_thousands(amount: f64) -> String {
    let whole = amount.trunc().abs() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    let sign = if amount < 0.0 { "-" } else { "" };
    let cents = ((amount.abs() - amount.abs().trunc()) * 100.0).round() as u64;
    if cents == 0 { format!("{sign}{out}") } else { format!("{sign}{out},{cents:02}") }
}

/// `fredag 4 december 2026 kl. 15.00` (or `Friday 4 December 2026 at 15:00`), Stockholm time.
pub fn swedish_time(at: jiff::Timestamp, lang: Lang) -> String {
    let zone = beslut_engine::calendar::stockholm();
    let t = at.to_zoned(zone);
    let weekday = t.weekday().to_monday_zero_offset() as usize;
    let month = t.month() as usize - 1;
    match lang {
        Lang::Sv => {
            const DAYS: [&str; 7] = ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"];
            const MONTHS: [&str; 12] = [
                "januari",
                "februari",
                "mars",
                "april",
                "maj",
                "juni",
                "juli",
                "augusti",
                "september",
                "oktober",
                "november",
                "december",
            ];
            format!(
                "{} {} {} {} kl. {:02}.{:02}",
                DAYS[weekday],
                t.day(),
                MONTHS[month],
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        Lang::En => {
            const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
            const MONTHS: [&str; 12] = [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ];
            format!("{} {} {} {} at {:02}:{:02}", DAYS[weekday], t.day(), MONTHS[month], t.year(), t.hour(), t.minute())
        }
    }
}

/// The decision an email reports: the task's own, or the case's latest.
fn decision_info(case: &Case, task: Option<&Task>, kind: NoticeKind) -> Option<render::DecisionInfo> {
    let decided = match kind {
        NoticeKind::TaskClosed | NoticeKind::Delegated => task.and_then(|t| t.decision.as_ref()),
        // A workflow's own email (from an automatic state) tells of the decision that led there.
        NoticeKind::CaseDecided | NoticeKind::Custom => case.tasks.iter().rev().find_map(|t| t.decision.as_ref()),
        _ => None,
    };
    Some(match decided {
        Some(d) => render::DecisionInfo {
            action: d.action_label.clone(),
            by: d.by_name.clone(),
            comment: d.comment.clone().unwrap_or_default(),
            at: swedish_time(d.at, Lang::Sv),
        },
        None => {
            render::DecisionInfo { action: String::new(), by: String::new(), comment: String::new(), at: String::new() }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_times_read_as_in_sweden() {
        assert_eq!(group_thousands(1_250_000.5), "1\u{a0}250\u{a0}000,50");
        assert_eq!(group_thousands(999.0), "999");
        let at: jiff::Timestamp = "2026-12-04T14:00:00Z".parse().unwrap();
        assert_eq!(swedish_time(at, Lang::Sv), "fredag 4 december 2026 kl. 15.00");
        assert_eq!(swedish_time(at, Lang::En), "Friday 4 December 2026 at 15:00");
    }
}
