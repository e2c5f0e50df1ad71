//! Inbound webhooks, verified per Standard Webhooks with the secret of a configured source:
//!
//! - `POST /hooks/start/{workflow}` starts a case through the workflow's `webhook` mapping;
//! - `POST /hooks/signal/{key}` with `{"signal": NAME, "data": {…}}` delivers a signal to the
//!   case waiting for it under that correlation key (by default the case number);
//! - `POST /hooks/call/{token}` answers a `call` state that waits for a callback; the token in
//!   the address (sent as `Beslut-Callback`) is the credential.
//!
//! A repeated `webhook-id` from the same source is answered with the first result and has no
//! second effect.

use super::AppState;
use crate::api::problem::{Path, Problem, json};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use beslut_engine::runtime::{Case, Channel, Command};
use beslut_notifications::links;
use beslut_notifications::webhooks::WebhookError;
use serde_json::{Map, Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/start/{workflow}", post(start))
        .route("/hooks/signal/{key}", post(signal))
        .route("/hooks/call/{token}", post(call))
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, Problem> {
    headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| unauthorized(&WebhookError::MissingHeader(name)))
}

fn unauthorized(e: &WebhookError) -> Problem {
    Problem::new(401, "invalid-signature", "The webhook is not signed as Standard Webhooks requires")
        .detail(format!("{e}; sign `{{webhook-id}}.{{webhook-timestamp}}.{{body}}` with the source's whsec_ secret"))
}

/// Verifies the request against `source`'s secret, or against any source when `None`; returns
/// the source name and the webhook id.
fn verify(
    state: &AppState,
    source: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, String), Problem> {
    let id = header(headers, "webhook-id")?;
    let timestamp = header(headers, "webhook-timestamp")?;
    let signature = header(headers, "webhook-signature")?;
    let now = jiff::Timestamp::now().as_second();
    let mut last = WebhookError::BadSignature;
    for (name, secret) in state.sources.iter().filter(|(name, _)| source.is_none_or(|s| s == name.as_str())) {
        match secret.verify(id, timestamp, signature, body, now) {
            Ok(()) => return Ok((name.clone(), id.to_string())),
            // A timestamp problem is the same for every source: report it as such.
            Err(e @ (WebhookError::OutsideTolerance | WebhookError::BadTimestamp)) => return Err(unauthorized(&e)),
            Err(e) => last = e,
        }
    }
    Err(unauthorized(&last))
}

fn parse(body: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem::bad_request("invalid-json", format!("the body is not JSON: {e}")))
}

fn answer(state: &AppState, status: u16, case: &Case) -> Response {
    let url = format!("{}/api/v1/cases/{}", state.base_url, case.id);
    json(status, &json!({ "case_id": case.id, "number": case.number, "state": case.state, "url": url }))
}

async fn start(
    State(state): State<AppState>,
    Path(workflow): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let hook = state.engine.current(&workflow).and_then(|d| d.webhook.clone());
    let Some(hook) = hook else {
        return Err(Problem::not_found(&format!(
            "no workflow {workflow} that takes webhooks (its file has no `webhook:`)"
        )));
    };
    if !state.sources.contains_key(&hook.source) {
        return Err(Problem::new(503, "source-not-configured", "The webhook's source has no secret configured")
            .detail(format!("add [sources.{}] with its secret to beslut.toml", hook.source)));
    }
    let (source, id) = verify(&state, Some(&hook.source), &headers, &body)?;
    let payload = parse(&body)?;
    let key = format!("hook:{source}:{id}");
    let case = state.engine.start_from_webhook(&workflow, &payload, &key).await?;
    Ok(answer(&state, 201, &case))
}

async fn signal(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (source, id) = verify(&state, None, &headers, &body)?;
    let payload = parse(&body)?;
    let Some(name) = payload.get("signal").and_then(Value::as_str) else {
        return Err(Problem::bad_request("missing-signal", "the body must be {\"signal\": NAME, \"data\": {…}}"));
    };
    let data = payload.get("data").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut origin = Map::new();
    origin.insert("source".into(), source.clone().into());
    origin.insert("webhook_id".into(), id.clone().into());
    let idempotency = format!("hook:{source}:{id}");
    let case = state.engine.signal(name, &key, data, Channel::Webhook, origin, Some(&idempotency)).await;
    let case = case.map_err(|e| match e {
        beslut_engine::service::Error::Rejected(beslut_engine::runtime::Error::NotWaiting) => {
            Problem::new(404, "not-waiting", "No open case waits for this signal")
                .detail(format!("no open case waits for the signal {name} under the key {key}"))
        }
        other => other.into(),
    })?;
    Ok(answer(&state, 200, &case))
}

async fn call(State(state): State<AppState>, Path(token): Path<String>, body: Bytes) -> Result<Response, Problem> {
    let Some(request_id) = links::verify_callback(&state.secret, &token) else {
        return Err(Problem::not_found("no such callback address"));
    };
    let response = parse(&body)?;
    let case_id = request_id.split('/').next().unwrap_or_default().to_string();
    let command = Command::CallAnswered { request_id, ok: true, response };
    let case = state.engine.execute(&case_id, command, Channel::Webhook, Map::new(), None).await?;
    Ok(answer(&state, 200, &case))
}
