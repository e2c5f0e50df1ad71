//! Mina uppgifter: the open tasks of the signed-in person and of the people they stand in for,
//! and deciding one from the list with the same confirmation as an email link (GET shows the
//! page, only the page's POST decides).

use super::decide::{action_fields, input, posted_values};
use super::session::Viewer;
use super::view::{self, Frame, when};
use super::{AppState, tr};
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use beslut_engine::definition::model::{Action, CommentRule, Definition, StateKind};
use beslut_engine::diagnostic::Lang;
use beslut_engine::runtime::{self, Case, Channel, Command, Task};
use beslut_engine::service::Error;
use beslut_engine::store::{cases, millis};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Tasks on the list's first page, the most urgent: a person holding thousands gets the page
/// as fast as one holding a few, and a link to all of them.
const PAGE: usize = 50;
/// The most tasks the whole list shows.
const ALL: i64 = 500;

/// A deadline this close is shown as near.
const SOON_MS: i64 = 2 * 24 * 3600 * 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/uppgifter", axum::routing::get(list))
        .route("/uppgifter/{case}/{task}/{action}", axum::routing::get(confirm).post(decide))
}

/// The label of a task: its state's, or its branch's in a parallel review.
pub fn task_label(def: &Definition, task: &Task, lang: Lang) -> String {
    let state = def.state(&task.state);
    if let (Some(StateKind::Parallel(p)), Some(b)) = (state.map(|s| &s.kind), &task.branch)
        && let Some(branch) = p.branches.iter().find(|x| &x.id == b)
    {
        return format!("{}: {}", state.map(|s| s.label.get(lang)).unwrap_or_default(), branch.label.get(lang));
    }
    state.map_or_else(|| task.state.clone(), |s| s.label.get(lang).to_string())
}

/// How a deadline reads, and whether it has passed or is near.
pub fn deadline(task: &Task, now_ms: i64, lang: Lang) -> Value {
    let Some(at) = task.deadline else { return Value::Null };
    let ms = millis(at);
    let (class, note) = if ms < now_ms {
        ("late", tr(lang, "Försenad", "Overdue"))
    } else if ms - now_ms < SOON_MS {
        ("soon", tr(lang, "Snart", "Soon"))
    } else {
        ("", "")
    };
    json!({ "text": when(ms, lang), "class": class, "note": note })
}

/// The people `viewer` stands in for today: those away whose substitute is the viewer.
fn standing_in_for(state: &AppState, viewer: &Viewer) -> Vec<(String, String)> {
    let project = state.engine.project();
    let directory = &project.directory;
    let today = state.engine.now().to_zoned(beslut_engine::calendar::stockholm()).date();
    directory
        .people
        .iter()
        .filter(|p| p.id != viewer.who && directory.acting_for(p, today).id == viewer.who)
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect()
}

/// `?alla=1` shows every task (up to `ALL`), not just the first page.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Show {
    alla: Option<String>,
}

async fn list(State(state): State<AppState>, viewer: Viewer, uri: Uri, Query(show): Query<Show>) -> Response {
    let lang = viewer.lang;
    let pool = &state.engine.store.pool;
    // One more than a page tells whether there are more.
    let limit = if show.alla.is_some() { ALL } else { PAGE as i64 + 1 };
    let held_by = |who: String| async move {
        cases::held_with_cases(pool, &who, limit).await.map_err(|e| super::session::unreadable(lang, e))
    };
    let mut held = match held_by(viewer.who.clone()).await {
        Ok(held) => held,
        Err(page) => return page,
    };
    if viewer.person.is_some() {
        match held_by(viewer.email.clone()).await {
            Ok(more) => held.extend(more),
            Err(page) => return page,
        }
    }
    let mut rows = rows(&state, &viewer, &held, None);
    for (id, name) in standing_in_for(&state, &viewer) {
        match held_by(id).await {
            Ok(theirs) => rows.extend(self::rows(&state, &viewer, &theirs, Some(&name))),
            Err(page) => return page,
        }
    }
    let more = show.alla.is_none() && rows.len() > PAGE;
    if more {
        rows.truncate(PAGE);
    }
    let data = json!({ "tasks": rows, "count": rows.len(), "more": more });
    let path = uri.path_and_query().map_or("/uppgifter", |p| p.as_str());
    view::render(StatusCode::OK, &Frame::of(&viewer, path), tr(lang, "Mina uppgifter", "My tasks"), "tasks", data)
}

/// One line per open task, with its case, deadline and the actions as links to their
/// confirmation pages.
fn rows(state: &AppState, viewer: &Viewer, held: &[(cases::Held, Case)], away: Option<&str>) -> Vec<Value> {
    let lang = viewer.lang;
    let now = millis(state.engine.now());
    let project = state.engine.project();
    let directory = &project.directory;
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for (h, case) in held {
        if !seen.insert((&h.case_id, &h.task_id)) {
            continue;
        }
        let Some(def) = state.engine.current_or_stored(case) else { continue };
        let Some(task) = case.task(&h.task_id).filter(|t| t.is_open()) else { continue };
        let mine = task.assignees.iter().find(|a| {
            a.party.person.as_deref() == Some(&viewer.who) || a.party.email.eq_ignore_ascii_case(&viewer.email)
        });
        let on_behalf = match (away, mine.and_then(|a| a.on_behalf_of.as_deref())) {
            (Some(name), _) => name.to_string(),
            (None, Some(id)) => directory.person(id).map_or(id.to_string(), |p| p.name.clone()),
            (None, None) => String::new(),
        };
        let actions: Vec<Value> = crate::mail::task_actions(&def, task, lang)
            .into_iter()
            .filter(|(id, _, _)| id != crate::mail::DELEGATE)
            .map(|(id, label, _)| json!({ "label": label, "href": format!("/uppgifter/{}/{}/{}", case.id, task.id, id) }))
            .collect();
        rows.push(json!({
            "case": case.number, "case_href": format!("/arenden/{}", case.id),
            "title": beslut_engine::service::title(&def, case), "workflow": def.name.get(lang),
            "task": task_label(&def, task, lang), "deadline": deadline(task, now, lang),
            "on_behalf": on_behalf, "escalated": task.escalated, "actions": actions,
        }));
    }
    rows
}

/// The open task, its definition and the action, if the viewer may decide it.
struct Decidable {
    case: Case,
    def: Arc<Definition>,
    task: Task,
    action: Action,
}

async fn decidable(
    state: &AppState,
    viewer: &Viewer,
    case: &str,
    task: &str,
    action: &str,
) -> Result<Decidable, Response> {
    let lang = viewer.lang;
    let frame = Frame::of(viewer, "/uppgifter");
    let back = Some(("/uppgifter", tr(lang, "Till mina uppgifter", "Back to my tasks")));
    let missing = || {
        view::message(
            StatusCode::NOT_FOUND,
            &frame,
            tr(lang, "Uppgiften finns inte", "No such task"),
            tr(lang, "Uppgiften finns inte eller är inte din.", "The task does not exist or is not yours."),
            back,
        )
    };
    let Ok(case) = state.engine.case(case).await else { return Err(missing()) };
    let Ok(def) = state.engine.definition_of(&case).await else { return Err(missing()) };
    let Some(task) = case.task(task).cloned() else { return Err(missing()) };
    if let Some(d) = &task.decision {
        let text = format!(
            "{} {} {}: {}.",
            tr(lang, "Beslutad av", "Decided by"),
            d.by_name,
            crate::mail::swedish_time(d.at, lang),
            d.action_label
        );
        return Err(view::message(
            StatusCode::OK,
            &frame,
            tr(lang, "Uppgiften är redan avgjord", "The task has already been decided"),
            &text,
            back,
        ));
    }
    if !task.is_open() {
        return Err(view::message(
            StatusCode::OK,
            &frame,
            tr(lang, "Uppgiften är stängd", "The task is closed"),
            tr(
                lang,
                "Ärendet har gått vidare, så uppgiften behövs inte längre.",
                "The case has moved on, so the task is no longer needed.",
            ),
            back,
        ));
    }
    let holds = task.assignment_of(&viewer.who).is_some() || task.assignment_of(&viewer.email).is_some();
    let stands_in = standing_in_for(state, viewer).iter().any(|(id, _)| task.assignment_of(id).is_some());
    if !holds && !stands_in {
        return Err(missing());
    }
    let Some(action) = def
        .state(&task.state)
        .and_then(|s| runtime::apply::task_def(s, task.branch.as_deref()))
        .and_then(|t| t.actions.iter().find(|a| a.id == action).cloned())
    else {
        return Err(missing());
    };
    Ok(Decidable { case, def, task, action })
}

/// The confirmation page: what is decided, the action's form and comment, one button.
/// A refusal the engine gave that the page cannot place at a field.
fn failed(viewer: &Viewer, error: &runtime::Error) -> Response {
    let lang = viewer.lang;
    tracing::warn!(code = error.code(), error = %error, "a decision from the task list was refused");
    view::message(
        StatusCode::CONFLICT,
        &Frame::of(viewer, "/uppgifter"),
        tr(lang, "Beslutet kunde inte registreras", "The decision could not be recorded"),
        tr(
            lang,
            "Inget är beslutat. Öppna uppgiften igen från listan.",
            "Nothing was decided. Open the task again from the list.",
        ),
        Some(("/uppgifter", tr(lang, "Till mina uppgifter", "Back to my tasks"))),
    )
}

fn confirmation(
    state: &AppState,
    viewer: &Viewer,
    d: &Decidable,
    values: &Map<String, Value>,
    comment: &str,
    errors: &[(String, String)],
    once: &str,
) -> Response {
    let lang = viewer.lang;
    let error_for = |field: &str| view::field_error(errors, field);
    let fields: String = action_fields(&d.def, &d.task, &d.action)
        .into_iter()
        .map(|f| input(state, f, values.get(&f.id).or_else(|| d.case.data.get(&f.id)), lang, error_for(&f.id)))
        .collect();
    let general: Vec<&str> = errors.iter().filter(|(f, _)| f.is_empty()).map(|(_, m)| m.as_str()).collect();
    let data = json!({
        "case": d.case.number, "case_href": format!("/arenden/{}", d.case.id),
        "title": beslut_engine::service::title(&d.def, &d.case), "workflow": d.def.name.get(lang),
        "task": task_label(&d.def, &d.task, lang), "action": d.action.label.get(lang),
        "post": format!("/uppgifter/{}/{}/{}", d.case.id, d.task.id, d.action.id),
        "fields": fields, "comment": comment, "comment_shown": d.action.comment != CommentRule::None,
        "comment_required": d.action.comment == CommentRule::Required,
        "comment_error": errors.iter().find(|(f, _)| f == "comment").map(|(_, m)| m.clone()),
        "general": general, "csrf": viewer.csrf, "once": once,
    });
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let path = format!("/uppgifter/{}/{}/{}", d.case.id, d.task.id, d.action.id);
    view::render(
        status,
        &Frame::of(viewer, &path),
        tr(lang, "Bekräfta ditt beslut", "Confirm your decision"),
        "decide",
        data,
    )
}

async fn confirm(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((case, task, action)): Path<(String, String, String)>,
) -> Response {
    match decidable(&state, &viewer, &case, &task, &action).await {
        Ok(d) => confirmation(&state, &viewer, &d, &Map::new(), "", &[], &view::once()),
        Err(page) => page,
    }
}

async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((case, task, action)): Path<(String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = viewer.lang;
    let d = match decidable(&state, &viewer, &case, &task, &action).await {
        Ok(d) => d,
        Err(page) => return page,
    };
    let get = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or_default();
    let once = get("once");
    let fields = action_fields(&d.def, &d.task, &d.action);
    let values = posted_values(&fields, &form);
    let comment = get("comment");
    if !viewer.csrf_ok(&form) || once.len() != 32 {
        let message = tr(
            lang,
            "Sidan kom inte härifrån. Kontrollera och bekräfta igen.",
            "The page did not come from here. Check and confirm again.",
        );
        return confirmation(&state, &viewer, &d, &values, comment, &[(String::new(), message.into())], &view::once());
    }
    let mut origin = Map::new();
    origin.insert("ip".into(), addr.ip().to_string().into());
    origin.insert(
        "user_agent".into(),
        headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().into(),
    );
    origin.insert("session".into(), viewer.email.clone().into());
    let command = Command::Decide {
        task: d.task.id.clone(),
        actor: viewer.who.clone(),
        action: d.action.id.clone(),
        comment: (!comment.is_empty()).then(|| comment.to_string()),
        form: values.clone(),
    };
    // The page's own random key: a double click or a resent POST returns the first result.
    let key = format!("web:{}:{}:{once}", viewer.who, d.case.id);
    let errors = match state.engine.execute(&d.case.id, command, Channel::Web, origin, Some(&key)).await {
        Ok(_) => return view::see_other(&format!("/arenden/{}?beslutat={}", d.case.id, d.task.id)),
        Err(Error::Rejected(e)) => match super::decide::field_errors(&e, lang) {
            Some(errors) => errors,
            // Someone else decided at the same moment, or the task moved on: say so as the
            // list would.
            None => {
                return match decidable(&state, &viewer, &case, &task, &action).await {
                    Err(page) => page,
                    Ok(_) => failed(&viewer, &e),
                };
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "a decision from the task list failed");
            let message = tr(
                lang,
                "Något gick fel; inget är beslutat. Försök igen.",
                "Something went wrong; nothing was decided. Try again.",
            );
            vec![(String::new(), message.into())]
        }
    };
    confirmation(&state, &viewer, &d, &values, comment, &errors, &view::once())
}
