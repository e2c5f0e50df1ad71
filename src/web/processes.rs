//! Processer, for process owners: every workflow with its validation status, graph, versions
//! and the changes between two versions, and per state the median and 90th percentile of the
//! time cases spent there, drawn as a heat-coloured graph: where do proposals get stuck?

use super::cases::{span, svg};
use super::session::Viewer;
use super::view::{self, Frame, when};
use super::{AppState, tr};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use beslut_engine::definition::model::{Definition, StateKind};
use beslut_engine::diagnostic::Lang;
use beslut_engine::graph::{self, Highlight};
use beslut_engine::store::{cases, millis, web as web_store};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/processer", axum::routing::get(list))
        .route("/processer/{id}", axum::routing::get(show))
        .route("/processer/{id}/graf.svg", axum::routing::get(graph_svg))
}

/// The number of errors in the file of workflow `id`.
fn errors_in(state: &AppState, id: &str) -> usize {
    let project = state.engine.project();
    let Some(w) = project.workflow(id) else { return 0 };
    let file = w.path.display().to_string();
    project
        .reports
        .iter()
        .filter(|r| r.file == file)
        .map(|r| r.items.iter().filter(|d| d.severity == beslut_engine::diagnostic::Severity::Error).count())
        .sum()
}

async fn list(State(state): State<AppState>, viewer: Viewer) -> Response {
    let lang = viewer.lang;
    let project = state.engine.project();
    let rows: Vec<Value> = project
        .workflows
        .iter()
        .map(|w| {
            let errors = errors_in(&state, &w.id);
            let in_force = state.engine.current(&w.id);
            json!({
                "href": format!("/processer/{}", w.id),
                "name": in_force.as_ref().map_or(w.id.clone(), |d| d.name.get(lang).to_string()),
                "file": w.path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
                "errors": errors, "ok": errors == 0,
            })
        })
        .collect();
    view::render(
        StatusCode::OK,
        &Frame::of(&viewer, "/processer"),
        tr(lang, "Processer", "Processes"),
        "processes",
        json!({ "rows": rows }),
    )
}

/// Per state, every completed or ongoing stay of a case, in milliseconds. Time in end states is
/// not a wait and is left out.
async fn durations(state: &AppState, def: &Definition, lang: Lang) -> Result<HashMap<String, Vec<i64>>, Response> {
    let entries = web_store::state_entries(&state.engine.store.pool, &def.id)
        .await
        .map_err(|e| super::session::unreadable(lang, e))?;
    let now = millis(state.engine.now());
    let mut spent: HashMap<String, Vec<i64>> = HashMap::new();
    for (i, (case, s, at)) in entries.iter().enumerate() {
        if matches!(def.state(s).map(|x| &x.kind), Some(StateKind::End(_)) | None) {
            continue;
        }
        let left = entries.get(i + 1).filter(|(c, _, _)| c == case).map_or(now, |(_, _, next)| *next);
        spent.entry(s.clone()).or_default().push(left - at);
    }
    Ok(spent)
}

/// The value below which `share` of the sorted values fall (nearest rank).
fn percentile(sorted: &[i64], share: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// (state, stays, median, p90), in the order of the file.
fn figures(def: &Definition, spent: &HashMap<String, Vec<i64>>) -> Vec<(String, usize, i64, i64)> {
    def.states
        .iter()
        .filter_map(|s| {
            let mut times = spent.get(&s.id)?.clone();
            times.sort_unstable();
            Some((s.id.clone(), times.len(), percentile(&times, 0.5), percentile(&times, 0.9)))
        })
        .collect()
}

fn heat(figures: &[(String, usize, i64, i64)], lang: Lang) -> Highlight {
    let longest = figures.iter().map(|f| f.2).max().unwrap_or(0).max(1) as f64;
    Highlight {
        heat: figures.iter().map(|(s, _, median, _)| (s.clone(), *median as f64 / longest)).collect(),
        notes: figures
            .iter()
            .map(|(s, _, median, p90)| {
                (
                    s.clone(),
                    format!("{} {} · p90 {}", tr(lang, "median", "median"), span(*median, lang), span(*p90, lang)),
                )
            })
            .collect(),
        ..Highlight::default()
    }
}

async fn graph_svg(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let Some(def) = state.engine.current(&id) else { return missing(&viewer) };
    let durations = match durations(&state, &def, viewer.lang).await {
        Ok(durations) => durations,
        Err(page) => return page,
    };
    let figures = figures(&def, &durations);
    svg(graph::render(&def, graph::Format::Svg, viewer.lang, &heat(&figures, viewer.lang)))
}

fn missing(viewer: &Viewer) -> Response {
    let lang = viewer.lang;
    view::message(
        StatusCode::NOT_FOUND,
        &Frame::of(viewer, "/processer"),
        tr(lang, "Processen finns inte", "No such process"),
        tr(
            lang,
            "Det finns ingen giltig arbetsflödesfil med det namnet.",
            "There is no valid workflow file by that name.",
        ),
        Some(("/processer", tr(lang, "Till processerna", "To the processes"))),
    )
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Compare {
    fran: String,
    till: String,
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(cmp): Query<Compare>,
) -> Response {
    let lang = viewer.lang;
    let project = state.engine.project();
    let Some(def) = state.engine.current(&id) else { return missing(&viewer) };
    let durations = match durations(&state, &def, lang).await {
        Ok(durations) => durations,
        Err(page) => return page,
    };
    let figures = figures(&def, &durations);
    let rows: Vec<Value> = figures
        .iter()
        .map(|(s, n, median, p90)| {
            let label = def.state(s).map_or(s.clone(), |x| x.label.get(lang).to_string());
            json!({ "state": label, "n": n, "median": span(*median, lang), "p90": span(*p90, lang) })
        })
        .collect();
    let versions = versions(&state, &id, lang).await;
    let diff = match (cmp.fran.is_empty(), cmp.till.is_empty()) {
        (false, false) => Some(diff(&state, &id, &cmp.fran, &cmp.till).await),
        _ => None,
    };
    let file = project.workflow(&id);
    let errors = errors_in(&state, &id);
    let problems = if errors > 0 { project.render(lang) } else { String::new() };
    let data = json!({
        "name": def.name.get(lang), "description": def.description.as_ref().map(|t| t.get(lang).to_string()),
        "file": file.map(|w| w.path.display().to_string()).unwrap_or_default(),
        "errors": errors, "problems": problems,
        "graph": format!("/processer/{id}/graf.svg"),
        "graph_alt": format!("{} {}", tr(lang, "Processkarta med tid per steg för", "Process map with time per step for"), def.name.get(lang)),
        "rows": rows, "versions": versions, "diff": diff, "fran": cmp.fran, "till": cmp.till, "self": format!("/processer/{id}"),
    });
    let path = uri.path_and_query().map_or("/processer", |p| p.as_str());
    view::render(StatusCode::OK, &Frame::of(&viewer, path), def.name.get(lang), "process", data)
}

/// The stored versions, oldest first, and the file as it is now if no case has used it yet.
async fn versions(state: &AppState, id: &str, lang: Lang) -> Vec<Value> {
    let pool = &state.engine.store.pool;
    let stored = cases::versions(pool, id).await.unwrap_or_default();
    let counts: HashMap<String, i64> =
        web_store::cases_per_version(pool, id).await.unwrap_or_default().into_iter().collect();
    let current = state.engine.project().workflow(id).map(|w| w.hash.clone()).unwrap_or_default();
    let mut out: Vec<Value> = stored
        .iter()
        .map(|(hash, at)| {
            json!({ "hash": hash, "short": &hash[..hash.len().min(10)], "since": when(*at, lang),
                "cases": counts.get(hash).copied().unwrap_or(0), "current": *hash == current })
        })
        .collect();
    if !current.is_empty() && !stored.iter().any(|(h, _)| *h == current) {
        out.push(json!({ "hash": current, "short": &current[..current.len().min(10)], "since": tr(lang, "i filen nu", "in the file now"), "cases": 0, "current": true }));
    }
    out
}

async fn source(state: &AppState, id: &str, hash: &str) -> Option<String> {
    let project = state.engine.project();
    if let Some(w) = project.workflow(id).filter(|w| w.hash == hash) {
        return Some(w.source.clone());
    }
    web_store::version_source(&state.engine.store.pool, id, hash).await.ok().flatten()
}

/// The lines that differ between two versions, with three lines of context, as
/// `[{kind: "del"|"ins"|"same"|"gap", text}]`.
async fn diff(state: &AppState, id: &str, from: &str, to: &str) -> Value {
    let (Some(old), Some(new)) = (source(state, id, from).await, source(state, id, to).await) else {
        return json!({ "missing": true, "lines": [] });
    };
    let diff = similar::TextDiff::from_lines(&old, &new);
    let mut lines = Vec::new();
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            lines.push(json!({ "kind": "gap", "text": "…" }));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let kind = match change.tag() {
                    similar::ChangeTag::Delete => "del",
                    similar::ChangeTag::Insert => "ins",
                    similar::ChangeTag::Equal => "same",
                };
                let number = change.new_index().or(change.old_index()).map_or(0, |n| n + 1);
                lines.push(
                    json!({ "kind": kind, "text": format!("{number:>4} {}", change.value().trim_end_matches('\n')) }),
                );
            }
        }
    }
    json!({ "missing": false, "same": lines.is_empty(), "lines": lines })
}
