//! Outbound webhook subscriptions and their delivery log (scope `admin`).

use super::auth::Caller;
use super::problem::{Body, Path, Problem, ProblemDocument, Query, json};
use crate::web::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use beslut_engine::store::{hooks, millis};
use beslut_notifications::webhooks::WebhookSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// Event types: `case.started`, `task.*`, `*` (default: every event).
    #[serde(default)]
    pub events: Vec<String>,
    /// Workflow ids (default: every workflow).
    #[serde(default)]
    pub workflows: Vec<String>,
    /// A `whsec_…` secret; one is generated when left out.
    pub secret: Option<String>,
}

/// A subscription as shown; the secret only in the answer that creates it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub workflows: Vec<String>,
    /// `config` (beslut.toml) or `api`.
    pub origin: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(s: &hooks::Subscription, secret: Option<String>) -> SubscriptionView {
    SubscriptionView {
        id: s.id.clone(),
        url: s.url.clone(),
        events: s.events.clone(),
        workflows: s.workflows.clone(),
        origin: s.origin.clone(),
        created_at: beslut_engine::store::from_millis(s.created_at).map(|t| t.to_string()).unwrap_or_default(),
        secret,
    }
}

#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "webhooks",
    responses((status = 200, body = Vec<SubscriptionView>), (status = 403, body = ProblemDocument, content_type = "application/problem+json")), security(("token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    caller.require("admin")?;
    let all = hooks::subscriptions(&state.engine.store.pool).await.map_err(Problem::store)?;
    Ok(json(200, &all.iter().map(|s| view(s, None)).collect::<Vec<_>>()))
}

#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "webhooks", request_body = NewSubscription,
    responses((status = 201, body = SubscriptionView), (status = 422, body = ProblemDocument, content_type = "application/problem+json")), security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewSubscription>,
) -> Result<Response, Problem> {
    caller.require("admin")?;
    let url = reqwest::Url::parse(&body.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            Problem::new(422, "invalid-url", "The URL is not an http or https address").detail(body.url.clone())
        })?;
    let secret = match &body.secret {
        Some(text) => WebhookSecret::parse(text)
            .map_err(|e| Problem::new(422, "invalid-secret", "The secret is not valid").detail(e.to_string()))?,
        None => WebhookSecret::generate(),
    };
    let engine = &state.engine;
    for w in &body.workflows {
        if engine.current(w).is_none() {
            return Err(
                Problem::new(422, "unknown-workflow", "No such workflow").detail(format!("no valid workflow {w}"))
            );
        }
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(Problem::internal)?;
    let subscription = hooks::Subscription {
        id: format!("sub_{}", hex::encode(id)),
        url: url.to_string(),
        secret: secret.to_text(),
        events: if body.events.is_empty() { vec!["*".into()] } else { body.events },
        workflows: body.workflows,
        origin: "api".into(),
        active: true,
        created_at: millis(engine.now()),
    };
    let mut tx = engine.store.begin().await.map_err(Problem::store)?;
    hooks::save_subscription(&mut tx, &subscription).await.map_err(Problem::store)?;
    tx.commit().await.map_err(Problem::store)?;
    Ok(json(201, &view(&subscription, Some(secret.to_text()))))
}

#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Deactivated; pending deliveries cancelled, the log kept"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 409, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require("admin")?;
    if id.starts_with("config:") {
        return Err(Problem::new(409, "configured", "This subscription is configured in beslut.toml")
            .detail("remove it from the file and restart"));
    }
    let mut tx = state.engine.store.begin().await.map_err(Problem::store)?;
    let done = hooks::deactivate(&mut tx, &id).await.map_err(Problem::store)?;
    tx.commit().await.map_err(Problem::store)?;
    if !done {
        return Err(Problem::not_found(&format!("no active subscription {id}")));
    }
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub subscription: Option<String>,
    /// `pending`, `done`, `dead` or `cancelled`.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/deliveries", tag = "webhooks", params(DeliveryQuery),
    responses((status = 200, description = "Deliveries, newest first", body = Object), (status = 400, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DeliveryQuery>,
) -> Result<Response, Problem> {
    caller.require("admin")?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request("invalid-query", "`limit` must be 1–200"));
    }
    let before = match q.cursor.as_deref() {
        Some(c) => Some(c.parse::<i64>().map_err(|_| Problem::bad_request("invalid-cursor", "not a cursor of ours"))?),
        None => None,
    };
    let pool = &state.engine.store.pool;
    let mut rows = hooks::deliveries(pool, q.subscription.as_deref(), q.status.as_deref(), before, limit + 1)
        .await
        .map_err(Problem::store)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|d| d.id.to_string()) } else { None };
    Ok(json(200, &json!({ "items": rows, "next_cursor": next_cursor })))
}

#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, description = "The delivery and every attempt", body = Object), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn delivery(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Response, Problem> {
    caller.require("admin")?;
    let pool = &state.engine.store.pool;
    let found = hooks::delivery(pool, id).await.map_err(Problem::store)?;
    let Some(found) = found else { return Err(Problem::not_found(&format!("no delivery {id}"))) };
    let attempts = hooks::attempts(pool, id).await.map_err(Problem::store)?;
    Ok(json(200, &json!({ "delivery": found, "attempts": attempts })))
}

#[utoipa::path(post, path = "/api/v1/deliveries/{id}/redeliver", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 202, description = "Queued again, with the same event id"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 409, body = ProblemDocument, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    caller.require("admin")?;
    let engine = &state.engine;
    if hooks::delivery(&engine.store.pool, id).await.map_err(Problem::store)?.is_none() {
        return Err(Problem::not_found(&format!("no delivery {id}")));
    }
    let mut tx = engine.store.begin().await.map_err(Problem::store)?;
    let queued = hooks::redeliver(&mut tx, id, millis(engine.now())).await.map_err(Problem::store)?;
    tx.commit().await.map_err(Problem::store)?;
    if !queued {
        return Err(Problem::new(409, "still-pending", "The delivery is pending or its subscription is gone"));
    }
    Ok(json(202, &json!({ "id": id, "status": "pending" })))
}
