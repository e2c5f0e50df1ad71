//! Starta ärende: a form generated from a workflow's `data` fields, with each field's label,
//! help text and type, errors next to the field (and summed up at the top), and the values
//! kept when something is wrong.

use super::decide::{input, posted_values};
use super::session::Viewer;
use super::view::{self, Frame};
use super::{AppState, tr};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use beslut_engine::definition::model::{Definition, Field, FieldType};
use beslut_engine::runtime::Channel;
use beslut_engine::service::Error;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/starta", axum::routing::get(choose))
        .route("/starta/{workflow}", axum::routing::get(form).post(start))
}

async fn choose(State(state): State<AppState>, viewer: Viewer) -> Response {
    let lang = viewer.lang;
    let project = state.engine.project();
    let workflows: Vec<Value> = project
        .valid_workflows()
        .filter_map(|w| w.definition.as_ref())
        .map(|d| {
            json!({ "href": format!("/starta/{}", d.id), "name": d.name.get(lang),
                "description": d.description.as_ref().map(|t| t.get(lang).to_string()) })
        })
        .collect();
    let frame = Frame::of(&viewer, "/starta");
    view::render(
        StatusCode::OK,
        &frame,
        tr(lang, "Starta ärende", "Start a case"),
        "start_list",
        json!({ "workflows": workflows }),
    )
}

/// The value a field starts with: its default, and the viewer for the first person field
/// (usually "who proposes").
fn initial(def: &Definition, viewer: &Viewer) -> Map<String, Value> {
    let mut values = Map::new();
    let mut person_given = false;
    for f in &def.data {
        if let Some(d) = &f.default {
            values.insert(f.id.clone(), d.clone());
        } else if f.kind == FieldType::Person && !person_given && viewer.person.is_some() {
            values.insert(f.id.clone(), viewer.who.clone().into());
            person_given = true;
        }
    }
    values
}

fn page(
    state: &AppState,
    viewer: &Viewer,
    def: &Definition,
    values: &Map<String, Value>,
    errors: &[(String, String)],
    once: &str,
) -> Response {
    let lang = viewer.lang;
    let error_for = |field: &str| view::field_error(errors, field);
    let fields: String = def.data.iter().map(|f| input(state, f, values.get(&f.id), lang, error_for(&f.id))).collect();
    let summary: Vec<Value> = errors
        .iter()
        .map(|(field, message)| {
            let label = def.data.iter().find(|f| f.id == *field).map(|f| f.label.get(lang).to_string());
            json!({ "href": format!("#f_{field}"), "label": label, "message": message })
        })
        .collect();
    let data = json!({
        "name": def.name.get(lang), "description": def.description.as_ref().map(|t| t.get(lang).to_string()),
        "post": format!("/starta/{}", def.id), "fields": fields, "errors": summary, "csrf": viewer.csrf, "once": once,
    });
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let path = format!("/starta/{}", def.id);
    let title = if errors.is_empty() {
        def.name.get(lang).to_string()
    } else {
        format!("{} {}", tr(lang, "Fel i formuläret:", "Errors in the form:"), def.name.get(lang))
    };
    view::render(status, &Frame::of(viewer, &path), &title, "start", data)
}

fn missing(viewer: &Viewer) -> Response {
    let lang = viewer.lang;
    view::message(
        StatusCode::NOT_FOUND,
        &Frame::of(viewer, "/starta"),
        tr(lang, "Processen finns inte", "No such process"),
        tr(lang, "Välj en process i listan.", "Choose a process from the list."),
        Some(("/starta", tr(lang, "Till listan", "To the list"))),
    )
}

async fn form(State(state): State<AppState>, viewer: Viewer, Path(workflow): Path<String>) -> Response {
    let Some(def) = state.engine.current(&workflow) else { return missing(&viewer) };
    page(&state, &viewer, &def, &initial(&def, &viewer), &[], &view::once())
}

async fn start(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(workflow): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = viewer.lang;
    let Some(def) = state.engine.current(&workflow) else { return missing(&viewer) };
    let fields: Vec<&Field> = def.data.iter().collect();
    let values = posted_values(&fields, &form);
    let once = form.get("once").map(String::as_str).unwrap_or_default();
    if !viewer.csrf_ok(&form) || once.len() != 32 {
        let message = tr(
            lang,
            "Sidan kom inte härifrån. Kontrollera och skicka igen.",
            "The page did not come from here. Check and send again.",
        );
        return page(&state, &viewer, &def, &values, &[(String::new(), message.into())], &view::once());
    }
    let Some(starter) = state.engine.party(&viewer.who).or_else(|| state.engine.party(&viewer.email)) else {
        return missing(&viewer);
    };
    // The form's own random key: a double click starts one case, not two.
    let key = format!("web:{}:start:{once}", viewer.who);
    match state.engine.start(&workflow, values.clone(), starter, Channel::Web, Some(&key)).await {
        Ok(case) => view::see_other(&format!("/arenden/{}?startat=1", case.id)),
        Err(Error::Rejected(e)) if let Some(errors) = super::decide::field_errors(&e, lang) => {
            page(&state, &viewer, &def, &values, &errors, &view::once())
        }
        Err(e) => {
            tracing::error!(error = %e, "a case could not be started from the form");
            let message = tr(
                lang,
                "Något gick fel; inget ärende startades. Försök igen.",
                "Something went wrong; no case was started. Try again.",
            );
            page(&state, &viewer, &def, &values, &[(String::new(), message.into())], &view::once())
        }
    }
}
