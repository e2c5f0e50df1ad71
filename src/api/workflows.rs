//! Workflows: list, get (with the versions cases run on), and the graph.

use super::auth::Caller;
use super::problem::{Path, Problem, ProblemDocument, Query, json};
use crate::web::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use beslut_engine::definition::model::Definition;
use beslut_engine::diagnostic::Lang;
use beslut_engine::graph::{self, Format, Highlight};
use beslut_engine::store::{cases, from_millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// A workflow as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    pub id: String,
    pub name: String,
    pub name_en: Option<String>,
    pub series: String,
    /// The SHA-256 of the current file.
    pub hash: String,
    /// The inbound webhook source that may start cases (`POST /hooks/start/{id}`), if any.
    pub webhook_source: Option<String>,
}

fn view(hash: &str, def: &Definition) -> WorkflowView {
    WorkflowView {
        id: def.id.clone(),
        name: def.name.sv.clone(),
        name_en: def.name.en.clone(),
        series: def.series.clone(),
        hash: hash.into(),
        webhook_source: def.webhook.as_ref().map(|h| h.source.clone()),
    }
}

#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    responses((status = 200, body = Vec<WorkflowView>), (status = 401, body = ProblemDocument, content_type = "application/problem+json")), security(("token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    caller.require("read")?;
    let project = &state.engine.project();
    let views: Vec<WorkflowView> =
        project.valid_workflows().filter_map(|w| w.definition.as_ref().map(|d| view(&w.hash, d))).collect();
    Ok(json(200, &views))
}

#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, description = "The workflow, its states, data fields and stored versions", body = Object),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    caller.require("read")?;
    let engine = &state.engine;
    let project = engine.project();
    let file = project.valid_workflows().find(|w| w.id == id);
    let Some((file, def)) = file.and_then(|f| f.definition.as_ref().map(|d| (f, d))) else {
        return Err(Problem::not_found(&format!("no valid workflow {id}")));
    };
    let versions = cases::versions(&engine.store.pool, &id).await.map_err(Problem::store)?;
    let versions: Vec<Value> = versions
        .iter()
        .map(|(hash, at)| {
            let first_used = from_millis(*at).map(|t| t.to_string()).unwrap_or_default();
            json!({ "hash": hash, "first_used": first_used, "current": *hash == file.hash })
        })
        .collect();
    let states: Vec<Value> = def
        .states
        .iter()
        .map(|s| json!({ "id": s.id, "label": s.label.sv, "label_en": s.label.en, "type": s.kind.name() }))
        .collect();
    let fields: Vec<Value> = def
        .data
        .iter()
        .map(|f| json!({ "id": f.id, "type": f.kind.name(), "label": f.label.sv, "required": f.required }))
        .collect();
    let mut body = serde_json::to_value(view(&file.hash, def)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert("start".into(), def.start.name.clone().into());
        map.insert("states".into(), states.into());
        map.insert("data".into(), fields.into());
        map.insert("versions".into(), versions.into());
    }
    Ok(json(200, &body))
}

/// Which drawing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// `svg` (default), `mermaid` or `dot`.
    pub format: Option<String>,
    /// `sv` (default) or `en`.
    pub lang: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/workflows/{id}/graph", tag = "workflows", params(("id" = String, Path), GraphQuery),
    responses((status = 200, description = "The state graph", content_type = "image/svg+xml", body = String),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn graph(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<GraphQuery>,
) -> Result<Response, Problem> {
    caller.require("read")?;
    let Some(def) = state.engine.current(&id) else {
        return Err(Problem::not_found(&format!("no valid workflow {id}")));
    };
    let (format, content_type) = match q.format.as_deref().unwrap_or("svg") {
        "svg" => (Format::Svg, "image/svg+xml"),
        "mermaid" => (Format::Mermaid, "text/plain; charset=utf-8"),
        "dot" => (Format::Dot, "text/vnd.graphviz; charset=utf-8"),
        other => {
            return Err(Problem::bad_request(
                "invalid-query",
                format!("`format` is svg, mermaid or dot, not `{other}`"),
            ));
        }
    };
    let lang = match q.lang.as_deref().unwrap_or("sv") {
        "sv" => Lang::Sv,
        "en" => Lang::En,
        other => return Err(Problem::bad_request("invalid-query", format!("`lang` is sv or en, not `{other}`"))),
    };
    let text = graph::render(&def, format, lang, &Highlight::default());
    let mut response = text.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
