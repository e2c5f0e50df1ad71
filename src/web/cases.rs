//! Ärenden: the case list with filters and pages, and the case page with its data, open tasks,
//! decisions, emails, audit trail and the graph with the path taken and the time in each state.
//!
//! People see the cases they started or were given a task in; holders of a viewing role
//! (`[web] viewer_roles`) see all.

use super::session::Viewer;
use super::tasks::{deadline, task_label};
use super::view::{self, Frame, encode, when};
use super::{AppState, tr};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use beslut_engine::definition::model::{Definition, Outcome};
use beslut_engine::diagnostic::Lang;
use beslut_engine::graph::{self, Highlight};
use beslut_engine::runtime::{Case, Status};
use beslut_engine::store::{audit, cases, mail as mail_store, millis, web as web_store};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Cases per page.
const PAGE: i64 = 25;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/arenden", axum::routing::get(list))
        .route("/arenden/{id}", axum::routing::get(show))
        .route("/arenden/{id}/graf.svg", axum::routing::get(graph_svg))
}

/// The filters of the case list, as query parameters in Swedish.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
struct Filters {
    arbetsflode: String,
    steg: String,
    forvaltning: String,
    ar: String,
    status: String,
    q: String,
    efter: String,
}

impl Filters {
    /// The query string of these filters, with `efter` replaced.
    fn query(&self, after: &str) -> String {
        let pairs = [
            ("arbetsflode", &self.arbetsflode),
            ("steg", &self.steg),
            ("forvaltning", &self.forvaltning),
            ("ar", &self.ar),
            ("status", &self.status),
            ("q", &self.q),
        ];
        let mut parts: Vec<String> =
            pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(v))).collect();
        if !after.is_empty() {
            parts.push(format!("efter={}", encode(after)));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

fn some(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// The start and end (ms) of a calendar year in Stockholm.
fn year_bounds(year: i16) -> Option<(i64, i64)> {
    let tz = beslut_engine::calendar::stockholm();
    let start = jiff::civil::date(year, 1, 1).to_zoned(tz.clone()).ok()?;
    let end = jiff::civil::date(year.checked_add(1)?, 1, 1).to_zoned(tz).ok()?;
    Some((millis(start.timestamp()), millis(end.timestamp())))
}

async fn list(State(state): State<AppState>, viewer: Viewer, uri: Uri, Query(f): Query<Filters>) -> Response {
    let lang = viewer.lang;
    let project = state.engine.project();
    let year = f.ar.trim().parse::<i16>().ok().and_then(year_bounds);
    let status = match f.status.as_str() {
        "oppna" => Some("open".to_string()),
        "avslutade" => Some("closed".to_string()),
        _ => None,
    };
    let filter = cases::Filter {
        workflow: some(&f.arbetsflode),
        state: some(&f.steg),
        status,
        involving: (!viewer.sees_all).then(|| viewer.who.clone()),
        forvaltning: some(&f.forvaltning),
        from: year.map(|y| y.0),
        to: year.map(|y| y.1),
        text: some(&f.q),
        after: crate::api::cases::decode_cursor(&f.efter).ok(),
        limit: PAGE + 1,
        ..Default::default()
    };
    let mut found = match cases::search(&state.engine.store.pool, &filter).await {
        Ok(found) => found,
        Err(e) => return super::session::unreadable(viewer.lang, e),
    };
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    let next = more
        .then(|| found.last().map(|r| f.query(&crate::api::cases::encode_cursor(r.started_at, &r.summary.id))))
        .flatten();
    let rows: Vec<Value> = found
        .iter()
        .map(|r| {
            let def = state.engine.current(&r.summary.workflow);
            let state_label = def
                .as_ref()
                .and_then(|d| d.state(&r.summary.state))
                .map_or_else(|| r.summary.state.clone(), |s| s.label.get(lang).to_string());
            let starter = project.directory.person(&r.started_by).map_or(r.started_by.clone(), |p| p.name.clone());
            json!({
                "href": format!("/arenden/{}", r.summary.id), "number": r.summary.number, "title": r.summary.title,
                "workflow": def.as_ref().map_or(r.summary.workflow.clone(), |d| d.name.get(lang).to_string()),
                "state": state_label, "status": status_text(&r.summary.status, r.summary.outcome.as_deref(), lang),
                "started": when(r.started_at, lang), "starter": starter,
            })
        })
        .collect();
    let data = json!({
        "rows": rows,
        "filters": &f,
        "workflows": options(project.valid_workflows().filter_map(|w| w.definition.as_ref()).map(|d| (d.id.clone(), d.name.get(lang).to_string())), &f.arbetsflode),
        "states": options(states_of(&state, &f.arbetsflode, lang), &f.steg),
        "forvaltningar": options(project.directory.forvaltningar.iter().map(|x| (x.id.clone(), x.name.get(lang).to_string())), &f.forvaltning),
        "years": options(years(&state).into_iter().map(|y| (y.to_string(), y.to_string())), &f.ar),
        "statuses": options([("oppna", tr(lang, "Öppna", "Open")), ("avslutade", tr(lang, "Avslutade", "Closed"))].into_iter().map(|(a, b)| (a.to_string(), b.to_string())), &f.status),
        "next": next,
        "first": (!f.efter.is_empty()).then(|| format!("/arenden{}", f.query(""))),
        "all": viewer.sees_all,
    });
    let path = uri.path_and_query().map_or("/arenden", |p| p.as_str());
    view::render(StatusCode::OK, &Frame::of(&viewer, path), tr(lang, "Ärenden", "Cases"), "cases", data)
}

fn options(items: impl IntoIterator<Item = (String, String)>, chosen: &str) -> Vec<Value> {
    items.into_iter().map(|(v, l)| json!({ "value": v, "label": l, "selected": v == chosen })).collect()
}

/// The states to filter by: those of the chosen workflow, else of every workflow.
fn states_of(state: &AppState, workflow: &str, lang: Lang) -> Vec<(String, String)> {
    let project = state.engine.project();
    let mut out: Vec<(String, String)> = Vec::new();
    for def in project.valid_workflows().filter_map(|w| w.definition.as_ref()) {
        if !workflow.is_empty() && def.id != workflow {
            continue;
        }
        for s in &def.states {
            if !out.iter().any(|(id, _)| *id == s.id) {
                out.push((s.id.clone(), s.label.get(lang).to_string()));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// This year and the five before it.
fn years(state: &AppState) -> Vec<i16> {
    let now = state.engine.now().to_zoned(beslut_engine::calendar::stockholm()).year();
    (0..6).map(|n| now - n).collect()
}

pub fn status_text(status: &str, outcome: Option<&str>, lang: Lang) -> String {
    if status == "open" {
        return tr(lang, "Pågår", "Open").to_string();
    }
    let outcome = outcome.and_then(|o| serde_json::from_value::<beslut_engine::runtime::OutcomeId>(json!(o)).ok());
    outcome.map_or_else(|| tr(lang, "Avslutat", "Closed").to_string(), |o| Outcome::from(o).label(lang).to_string())
}

/// The case, if the viewer may see it.
async fn visible(state: &AppState, viewer: &Viewer, id: &str) -> Result<(Case, std::sync::Arc<Definition>), Response> {
    let lang = viewer.lang;
    let frame = Frame::of(viewer, "/arenden");
    let missing = || {
        view::message(
            StatusCode::NOT_FOUND,
            &frame,
            tr(lang, "Ärendet finns inte", "No such case"),
            tr(
                lang,
                "Ärendet finns inte, eller så är du inte med i det.",
                "The case does not exist, or you are not part of it.",
            ),
            Some(("/arenden", tr(lang, "Till ärendelistan", "To the case list"))),
        )
    };
    let Ok(case) = state.engine.case(id).await else { return Err(missing()) };
    let involved = web_store::involved(&state.engine.store.pool, &case.id, &viewer.who).await.unwrap_or(false);
    if !viewer.sees_all && !involved {
        return Err(missing());
    }
    let Ok(def) = state.engine.definition_of(&case).await else { return Err(missing()) };
    Ok((case, def))
}

/// A time span the way people say it: "3 d 4 tim", "25 min".
pub fn span(ms: i64, lang: Lang) -> String {
    let minutes = ms.max(0) / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let h = tr(lang, "tim", "h");
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, _) => format!("{hours} {h} {mins} min"),
        _ => format!("{days} d {hours} {h}"),
    }
}

/// Each stay of the case in a state: (state, entered, left), left is None while it is there.
pub fn stays(entries: &[(String, i64)], open: bool) -> Vec<(String, i64, Option<i64>)> {
    entries
        .iter()
        .enumerate()
        .map(|(i, (s, at))| {
            let left = entries.get(i + 1).map(|(_, next)| *next);
            (s.clone(), *at, if left.is_none() && open { None } else { left.or(Some(*at)) })
        })
        .collect()
}

async fn entries(state: &AppState, case: &Case, lang: Lang) -> Result<Vec<audit::Stored>, Response> {
    audit::entries(&state.engine.store.pool, &case.id).await.map_err(|e| super::session::unreadable(lang, e))
}

fn entered(entries: &[audit::Stored]) -> Vec<(String, i64)> {
    entries
        .iter()
        .filter(|e| e.what == "state.entered")
        .filter_map(|e| Some((e.detail.get("state")?.as_str()?.to_string(), e.at)))
        .collect()
}

/// The graph's highlight for a case: where it is, where it has been and the arrows it took,
/// with the time spent under each state.
fn highlight(case: &Case, stays: &[(String, i64, Option<i64>)], now: i64, lang: Lang) -> Highlight {
    let mut spent: HashMap<String, i64> = HashMap::new();
    for (s, from, to) in stays {
        *spent.entry(s.clone()).or_default() += to.unwrap_or(now) - from;
    }
    let taken = stays.windows(2).map(|w| (w[0].0.clone(), w[1].0.clone())).collect();
    Highlight {
        current: if case.is_open() { vec![case.state.clone()] } else { Vec::new() },
        visited: stays.iter().map(|(s, _, _)| s.clone()).collect(),
        taken,
        notes: spent.into_iter().map(|(s, ms)| (s, span(ms, lang))).collect(),
        ..Highlight::default()
    }
}

async fn graph_svg(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let (case, def) = match visible(&state, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let entries = match entries(&state, &case, viewer.lang).await {
        Ok(entries) => entries,
        Err(page) => return page,
    };
    let stays = stays(&entered(&entries), case.is_open());
    let highlight = highlight(&case, &stays, millis(state.engine.now()), viewer.lang);
    svg(graph::render(&def, graph::Format::Svg, viewer.lang, &highlight))
}

/// An SVG drawing as a response of its own, shown through `<img>`: it can run nothing, and its
/// inline styles are allowed only inside it.
pub fn svg(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Shown {
    beslutat: String,
    startat: String,
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    let lang = viewer.lang;
    let (case, def) = match visible(&state, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let project = state.engine.project();
    let compose = crate::mail::Compose {
        def: &def,
        case: &case,
        directory: &project.directory,
        frames: &project.frames,
        base_url: &state.base_url,
        sender_name: "",
    };
    let data_rows: Vec<Value> = def
        .data
        .iter()
        .filter_map(|f| {
            let value = case.data.get(&f.id)?;
            let text = compose.format(f, value, lang);
            (!text.is_empty()).then(|| json!({ "label": f.label.get(lang), "value": text, "long": f.multiline }))
        })
        .collect();
    let now = millis(state.engine.now());
    let name_of = |id: &str| project.directory.person(id).map_or(id.to_string(), |p| p.name.clone());
    let open_tasks: Vec<Value> = case
        .open_tasks()
        .map(|t| {
            let holders: Vec<String> = t
                .assignees
                .iter()
                .map(|a| match &a.on_behalf_of {
                    Some(other) => format!("{} ({} {})", a.party.name, tr(lang, "för", "for"), name_of(other)),
                    None => a.party.name.clone(),
                })
                .collect();
            let mine = t.assignment_of(&viewer.who).is_some() || t.assignment_of(&viewer.email).is_some();
            let actions: Vec<Value> = if mine {
                crate::mail::task_actions(&def, t, lang)
                    .into_iter()
                    .filter(|(a, _, _)| a != crate::mail::DELEGATE)
                    .map(|(a, label, _)| json!({ "label": label, "href": format!("/uppgifter/{}/{}/{a}", case.id, t.id) }))
                    .collect()
            } else {
                Vec::new()
            };
            json!({ "id": t.id, "label": task_label(&def, t, lang), "holders": holders.join(", "), "deadline": deadline(t, now, lang), "actions": actions })
        })
        .collect();
    let mut decisions: Vec<(i64, Value)> = case
        .tasks
        .iter()
        .filter_map(|t| {
            let d = t.decision.as_ref()?;
            let by = match &d.on_behalf_of {
                Some(other) => format!("{} ({} {})", d.by_name, tr(lang, "för", "for"), name_of(other)),
                None => d.by_name.clone(),
            };
            let action = def
                .state(&t.state)
                .and_then(|s| beslut_engine::runtime::apply::task_def(s, t.branch.as_deref()))
                .and_then(|td| td.actions.iter().find(|a| a.id == d.action))
                .map_or(d.action_label.clone(), |a| a.label.get(lang).to_string());
            let form: Vec<Value> = def
                .all_fields()
                .into_iter()
                .filter_map(|f| {
                    let v = d.form.get(&f.id)?;
                    Some(json!({ "label": f.label.get(lang), "value": compose.format(f, v, lang) }))
                })
                .collect();
            let at = millis(d.at);
            Some((at, json!({ "at": when(at, lang), "by": by, "task": task_label(&def, t, lang), "action": action, "comment": d.comment, "form": form })))
        })
        .collect();
    decisions.sort_by_key(|(at, _)| *at);
    let entries = match entries(&state, &case, lang).await {
        Ok(entries) => entries,
        Err(page) => return page,
    };
    let stays = stays(&entered(&entries), case.is_open());
    let stay_rows: Vec<Value> = stays
        .iter()
        .map(|(s, from, to)| {
            let label = def.state(s).map_or(s.clone(), |x| x.label.get(lang).to_string());
            json!({ "state": label, "from": when(*from, lang), "to": to.map(|t| when(t, lang)), "spent": span(to.unwrap_or(now) - from, lang) })
        })
        .collect();
    let trail: Vec<Value> = entries
        .iter()
        .map(|e| json!({ "seq": e.seq, "at": when(e.at, lang), "actor": name_of(&e.actor), "what": what(&e.what, lang), "channel": e.channel }))
        .collect();
    let emails = match mail_store::recent(&state.engine.store.pool, Some(&case.id), 500).await {
        Ok(emails) => emails,
        Err(e) => return super::session::unreadable(lang, e),
    };
    let emails: Vec<Value> = emails
        .iter()
        .rev()
        .map(|m| json!({ "to": m.recipient, "subject": m.subject, "sent": m.sent_at.map(|t| when(t, lang)) }))
        .collect();
    let (status, outcome) = match &case.status {
        Status::Open => ("open", None),
        Status::Closed { outcome, .. } => {
            ("closed", serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(String::from)))
        }
    };
    let current = def.state(&case.state).map_or(case.state.clone(), |s| s.label.get(lang).to_string());
    let decided = (!shown.beslutat.is_empty())
        .then(|| tr(lang, "Tack, ditt beslut är registrerat.", "Thank you, your decision is recorded."));
    let started = (!shown.startat.is_empty()).then(|| tr(lang, "Ärendet är startat.", "The case is started."));
    let data = json!({
        "number": case.number, "title": beslut_engine::service::title(&def, &case), "workflow": def.name.get(lang),
        "state": current, "status": status_text(status, outcome.as_deref(), lang), "open": case.is_open(),
        "started": when(millis(case.started_at), lang), "starter": case.started_by.name,
        "data": data_rows, "tasks": open_tasks, "decisions": decisions.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "stays": stay_rows, "trail": trail, "emails": emails,
        "graph": format!("/arenden/{}/graf.svg", case.id), "notice": decided.or(started),
        "graph_alt": format!("{} {}: {}", tr(lang, "Processkarta för", "Process map of"), case.number, tr(lang, "nuvarande steg markerat i orange, vägen hit i blått", "the current step in orange, the path so far in blue")),
    });
    let path = uri.path_and_query().map_or("/arenden", |p| p.as_str());
    let title = format!("{} {}", case.number, beslut_engine::service::title(&def, &case));
    view::render(StatusCode::OK, &Frame::of(&viewer, path), &title, "case", data)
}

/// What an audit entry says, in words.
fn what(code: &str, lang: Lang) -> String {
    const WORDS: [(&str, &str, &str); 16] = [
        ("case.started", "Ärendet startades", "Case started"),
        ("state.entered", "Gick till nytt steg", "Entered a step"),
        ("task.assigned", "Uppgift tilldelad", "Task assigned"),
        ("task.decided", "Beslut", "Decision"),
        ("task.delegated", "Uppgift överlämnad", "Task handed over"),
        ("task.reminded", "Påminnelse", "Reminder"),
        ("task.escalated", "Eskalerad", "Escalated"),
        ("task.timed_out", "Tidsgränsen passerad", "Timed out"),
        ("deadline.passed", "Tidsgränsen passerad", "Deadline passed"),
        ("choice.made", "Val gjort", "Choice made"),
        ("case.closed", "Ärendet avslutades", "Case closed"),
        ("case.withdrawn", "Ärendet återkallades", "Case withdrawn"),
        ("case.overridden", "Flyttat av administratör", "Moved by an administrator"),
        ("signal.received", "Besked från annat system", "Message from another system"),
        ("subcase.finished", "Delärende klart", "Sub-case finished"),
        ("call.timed_out", "Anrop utan svar", "Call timed out"),
    ];
    WORDS.iter().find(|(c, _, _)| *c == code).map_or(code.to_string(), |(_, sv, en)| tr(lang, sv, en).to_string())
}
