//! Cases and tasks: start, list, get, withdraw, decide, delegate, audit and export.

use super::auth::Caller;
use super::problem::{Body, Path, Problem, ProblemDocument, Query, json};
use crate::web::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use beslut_engine::definition::model::CommentRule;
use beslut_engine::runtime::{self, Case, Channel, Command, Party};
use beslut_engine::service::Engine;
use beslut_engine::store::{self, audit, cases, hooks, mail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

/// Starting a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCase {
    /// The workflow id, e.g. `andring-av-it`.
    pub workflow: String,
    /// Who starts the case: a person id from the directory, or an email address.
    pub started_by: String,
    /// The case data, as the workflow's `data` fields declare.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// A case with its open tasks and what can be done with them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: String,
    pub number: String,
    pub workflow: String,
    pub title: String,
    pub state: String,
    pub state_label: String,
    /// `open` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[schema(value_type = Object)]
    pub started_by: Value,
    pub started_at: String,
    pub updated_at: String,
    pub version: i64,
    pub open_tasks: Vec<TaskView>,
    /// Every task, open and closed, as stored.
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    pub waiting: Option<Value>,
}

/// An open task and the actions it offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub case_id: String,
    pub case_number: String,
    pub task_id: String,
    pub state: String,
    pub label: String,
    pub branch: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub assignees: Vec<Value>,
    pub deadline: Option<String>,
    pub actions: Vec<ActionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    pub id: String,
    pub label: String,
    pub comment_required: bool,
}

pub fn case_view(engine: &Engine, case: &Case) -> CaseView {
    let def = engine.current_or_stored(case);
    let state_label =
        def.as_ref().and_then(|d| d.state(&case.state)).map_or_else(|| case.state.clone(), |s| s.label.sv.clone());
    let (status, outcome) = match &case.status {
        runtime::Status::Open => ("open", None),
        runtime::Status::Closed { outcome, .. } => ("closed", serde_json::to_value(outcome).ok()),
    };
    CaseView {
        id: case.id.clone(),
        number: case.number.clone(),
        workflow: case.workflow.clone(),
        title: def.as_ref().map_or_else(|| case.workflow.clone(), |d| beslut_engine::service::title(d, case)),
        state: case.state.clone(),
        state_label,
        status: status.into(),
        outcome: outcome.and_then(|o| o.as_str().map(String::from)),
        data: case.data.clone(),
        started_by: serde_json::to_value(&case.started_by).unwrap_or(Value::Null),
        started_at: case.started_at.to_string(),
        updated_at: case.updated_at.to_string(),
        version: case.version,
        open_tasks: case.open_tasks().map(|t| task_view(def.as_deref(), case, t)).collect(),
        tasks: case.tasks.iter().filter_map(|t| serde_json::to_value(t).ok()).collect(),
        waiting: case.waiting.as_ref().and_then(|w| serde_json::to_value(w).ok()),
    }
}

fn task_view(
    def: Option<&beslut_engine::definition::model::Definition>,
    case: &Case,
    task: &runtime::Task,
) -> TaskView {
    let state = def.and_then(|d| d.state(&task.state));
    let task_def = state.and_then(|s| runtime::apply::task_def(s, task.branch.as_deref()));
    let actions = task_def
        .map(|t| {
            t.actions
                .iter()
                .map(|a| ActionView {
                    id: a.id.clone(),
                    label: a.label.sv.clone(),
                    comment_required: matches!(a.comment, CommentRule::Required),
                })
                .collect()
        })
        .unwrap_or_default();
    TaskView {
        case_id: case.id.clone(),
        case_number: case.number.clone(),
        task_id: task.id.clone(),
        state: task.state.clone(),
        label: state.map_or_else(|| task.state.clone(), |s| s.label.sv.clone()),
        branch: task.branch.clone(),
        assignees: task.assignees.iter().filter_map(|a| serde_json::to_value(a).ok()).collect(),
        deadline: task.deadline.map(|d| d.to_string()),
        actions,
    }
}

/// The party for a person id or an address.
pub fn party(engine: &Engine, who: &str) -> Result<Party, Problem> {
    engine.party(who).ok_or_else(|| {
        Problem::new(422, "unknown-person", "No such person")
            .detail(format!("`{who}` is neither a person id in directory.yaml nor an email address"))
    })
}

/// The `Idempotency-Key` header, scoped to the token so that two clients cannot collide.
fn idempotency_key(headers: &HeaderMap, caller: &Caller, what: &str) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| Problem::bad_request("invalid-idempotency-key", "the key must be ASCII"))?;
    if key.is_empty() || key.len() > 200 {
        return Err(Problem::bad_request("invalid-idempotency-key", "the key must be 1–200 characters"));
    }
    Ok(Some(format!("api:{}:{what}:{key}", caller.token_id)))
}

#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = StartCase,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeating a request with the same key returns the first result")),
    responses((status = 201, body = CaseView), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<StartCase>,
) -> Result<Response, Problem> {
    caller.require("start")?;
    let engine = &state.engine;
    let key = idempotency_key(&headers, &caller, "start")?;
    let starter = party(engine, &body.started_by)?;
    let case = engine.start(&body.workflow, body.data, starter, Channel::Api, key.as_deref()).await?;
    Ok(json(201, &case_view(engine, &case)))
}

/// Filters for listing cases.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    pub workflow: Option<String>,
    pub state: Option<String>,
    /// `open` or `closed`.
    pub status: Option<String>,
    /// A person id or address: cases they started or hold an open task in.
    pub person: Option<String>,
    /// Started on or after this date (YYYY-MM-DD) or moment (RFC 3339).
    pub from: Option<String>,
    /// Started before this date or moment.
    pub to: Option<String>,
    /// Words in the title or the case number.
    pub q: Option<String>,
    /// The förvaltning id of the case's `forvaltning` field, e.g. `sbf`.
    pub forvaltning: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn moment(text: &str, name: &str) -> Result<i64, Problem> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(store::millis(t));
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| {
        Problem::bad_request("invalid-query", format!("`{name}` must be a date (2026-11-23) or an RFC 3339 moment"))
    })?;
    let zoned = date.to_zoned(beslut_engine::calendar::stockholm());
    zoned.map(|z| store::millis(z.timestamp())).map_err(|e| Problem::bad_request("invalid-query", e.to_string()))
}

pub fn decode_cursor(text: &str) -> Result<(i64, String), Problem> {
    use base64::Engine as _;
    let bad = || Problem::bad_request("invalid-cursor", "the cursor is not one this server gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

pub fn encode_cursor(at: i64, id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(CaseQuery),
    responses((status = 200, body = CasePage), (status = 400, body = ProblemDocument, content_type = "application/problem+json"), (status = 401, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CaseQuery>,
) -> Result<Response, Problem> {
    caller.require("read")?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request("invalid-query", "`limit` must be 1–200"));
    }
    if q.status.as_deref().is_some_and(|s| s != "open" && s != "closed") {
        return Err(Problem::bad_request("invalid-query", "`status` is `open` or `closed`"));
    }
    let filter = cases::Filter {
        workflow: q.workflow,
        state: q.state,
        status: q.status,
        person: q.person,
        from: q.from.as_deref().map(|t| moment(t, "from")).transpose()?,
        to: q.to.as_deref().map(|t| moment(t, "to")).transpose()?,
        text: q.q.filter(|t| !t.trim().is_empty()),
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: limit + 1,
        forvaltning: q.forvaltning.filter(|f| !f.trim().is_empty()),
        ..Default::default()
    };
    let mut rows = cases::search(&state.engine.store.pool, &filter).await.map_err(Problem::store)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| encode_cursor(r.started_at, &r.summary.id))).flatten();
    let items = rows.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
    Ok(json(200, &CasePage { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "The case id (it-2026-0042) or number (IT 2026/0042)")),
    responses((status = 200, body = CaseView), (status = 404, body = ProblemDocument, content_type = "application/problem+json")), security(("token" = [])))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    caller.require("read")?;
    let case = state.engine.case(&id).await?;
    Ok(json(200, &case_view(&state.engine, &case)))
}

/// Withdrawing a case, by the person who started it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    /// The person who started the case (id or address).
    #[serde(rename = "as")]
    pub actor: String,
    pub comment: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/withdraw", tag = "cases", request_body = Withdraw,
    params(("id" = String, Path)),
    responses((status = 200, body = CaseView), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Withdraw>,
) -> Result<Response, Problem> {
    caller.require("start")?;
    let command = Command::Withdraw { actor: body.actor, comment: body.comment };
    let case = state.engine.execute(&id, command, Channel::Api, caller.origin(), None).await?;
    Ok(json(200, &case_view(&state.engine, &case)))
}

/// Moving a case to another state as an administrator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    #[serde(rename = "as")]
    pub actor: String,
    pub to: String,
    /// Why; required and kept in the audit trail.
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/override", tag = "cases", request_body = Override,
    params(("id" = String, Path)),
    responses((status = 200, body = CaseView), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn override_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Override>,
) -> Result<Response, Problem> {
    caller.require("admin")?;
    let command = Command::Override { admin: body.actor, reason: body.reason, to: body.to };
    let case = state.engine.execute(&id, command, Channel::Admin, caller.origin(), None).await?;
    Ok(json(200, &case_view(&state.engine, &case)))
}

/// Deciding a task on behalf of a person who holds it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// The person deciding (id or address); they must hold the task.
    #[serde(rename = "as")]
    pub actor: String,
    /// The action id, e.g. `godkann`.
    pub action: String,
    pub comment: Option<String>,
    /// The task's form fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub form: Map<String, Value>,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/tasks/{task}/decide", tag = "tasks", request_body = Decide,
    params(("id" = String, Path), ("task" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeating a request with the same key returns the first result")),
    responses((status = 200, body = CaseView), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, task)): Path<(String, String)>,
    Body(body): Body<Decide>,
) -> Result<Response, Problem> {
    caller.require("decide")?;
    let key = idempotency_key(&headers, &caller, "decide")?;
    let command =
        Command::Decide { task, actor: body.actor, action: body.action, comment: body.comment, form: body.form };
    let case = state.engine.execute(&id, command, Channel::Api, caller.origin(), key.as_deref()).await?;
    Ok(json(200, &case_view(&state.engine, &case)))
}

/// Handing a task to a colleague.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delegate {
    /// The person who holds the task.
    #[serde(rename = "as")]
    pub actor: String,
    /// The colleague's person id.
    pub to: String,
    pub comment: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/tasks/{task}/delegate", tag = "tasks", request_body = Delegate,
    params(("id" = String, Path), ("task" = String, Path)),
    responses((status = 200, body = CaseView), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn delegate(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, task)): Path<(String, String)>,
    Body(body): Body<Delegate>,
) -> Result<Response, Problem> {
    caller.require("decide")?;
    let command = Command::Delegate { task, actor: body.actor, to: body.to, comment: body.comment };
    let case = state.engine.execute(&id, command, Channel::Api, caller.origin(), None).await?;
    Ok(json(200, &case_view(&state.engine, &case)))
}

/// Whose tasks to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// A person id or address.
    pub person: Option<String>,
    /// A role id: the tasks of everyone holding it.
    pub role: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, body = Vec<TaskView>), (status = 400, body = ProblemDocument, content_type = "application/problem+json")), security(("token" = [])))]
pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TaskQuery>,
) -> Result<Response, Problem> {
    caller.require("read")?;
    let engine = &state.engine;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("invalid-query", "`limit` must be 1–500"));
    }
    let people: Vec<Option<String>> = match (&q.person, &q.role) {
        (Some(_), Some(_)) => return Err(Problem::bad_request("invalid-query", "give `person` or `role`, not both")),
        (Some(p), None) => vec![Some(p.clone())],
        (None, Some(role)) => {
            if engine.project().directory.role(role).is_none() {
                return Err(Problem::not_found(&format!("no role {role} in directory.yaml")));
            }
            engine.project().directory.holders(role, None).iter().map(|p| Some(p.id.clone())).collect()
        }
        (None, None) => vec![None],
    };
    let pool = &engine.store.pool;
    let mut held = Vec::new();
    for person in &people {
        match person {
            // A person's list comes with its cases in one query.
            Some(p) => held.extend(cases::held_with_cases(pool, p, limit).await.map_err(Problem::store)?),
            None => {
                for h in cases::held(pool, None, limit).await.map_err(Problem::store)? {
                    let Ok(case) = engine.case(&h.case_id).await else { continue };
                    held.push((h, case));
                }
            }
        }
    }
    let mut views: Vec<TaskView> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (h, case) in &held {
        if views.len() as i64 >= limit {
            break;
        }
        if !seen.insert((&h.case_id, &h.task_id)) {
            continue;
        }
        if let Some(task) = case.task(&h.task_id) {
            views.push(task_view(engine.current_or_stored(case).as_deref(), case, task));
        }
    }
    Ok(json(200, &views))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/audit", tag = "audit", params(("id" = String, Path)),
    responses((status = 200, description = "The hash-chained entries, oldest first", body = Vec<Object>),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn audit_trail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require("read")?;
    let case = state.engine.case(&id).await?;
    let entries = audit::entries(&state.engine.store.pool, &case.id).await.map_err(Problem::store)?;
    Ok(json(200, &entries.iter().map(entry_json).collect::<Vec<_>>()))
}

fn entry_json(e: &audit::Stored) -> Value {
    let at = store::from_millis(e.at).map(|t| t.to_string()).unwrap_or_default();
    json!({ "seq": e.seq, "at": at, "actor": e.actor, "channel": e.channel, "what": e.what,
        "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash })
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/export", tag = "audit", params(("id" = String, Path)),
    responses((status = 200, description = "The archive package: the case, every decision and audit entry with its \
        hashes, the rendered emails and the events", body = Object),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "The case is still open", body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require("read")?;
    let engine = &state.engine;
    let case = engine.case(&id).await?;
    if case.is_open() {
        return Err(Problem::new(409, "case-open", "Only closed cases are exported")
            .detail(format!("{} is still open, in state {}", case.number, case.state)));
    }
    let pool = &engine.store.pool;
    let entries = audit::entries(pool, &case.id).await.map_err(Problem::store)?;
    let head = audit::remembered_head(pool, &case.id).await.map_err(Problem::store)?;
    let intact = audit::verify(pool, &case.id, head.as_deref()).await.map_err(Problem::store)?.is_empty();
    let emails = mail::recent(pool, Some(&case.id), 10_000).await.map_err(Problem::store)?;
    let events = hooks::events_of(pool, &case.id).await.map_err(Problem::store)?;
    let source = engine.definition_source(&case).await?;
    let package = json!({
        "format": "beslut-archive/1",
        "exported_at": engine.now().to_string(),
        "case": case_view(engine, &case),
        "workflow": { "id": case.workflow, "hash": case.definition_hash, "source": source },
        "decisions": case.tasks.iter().filter_map(|t| t.decision.as_ref().map(|d| json!({ "task": t.id, "state": t.state, "decision": d }))).collect::<Vec<_>>(),
        "audit": { "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
                   "head": entries.last().map(|e| e.hash.clone()), "chain_intact": intact },
        "emails": emails.iter().map(|m| json!({ "message_id": m.message_id, "to": m.recipient, "subject": m.subject,
            "text": m.text, "html": m.html, "sent_at": m.sent_at })).collect::<Vec<_>>(),
        "events": events,
    });
    Ok(json(200, &package))
}
