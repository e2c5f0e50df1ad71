//! Operations: `/healthz` (the process answers), `/readyz` (the database answers and workflows
//! are loaded) and `/metrics` (Prometheus).

use super::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::Row;
use std::time::Instant;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(ready)).route("/metrics", get(metrics))
}

async fn ready(State(state): State<AppState>) -> Response {
    let db = sqlx::query("SELECT 1").fetch_one(&state.engine.store.pool).await;
    let workflows = state.engine.project().valid_workflows().count();
    match db {
        Ok(_) if workflows > 0 => {
            (StatusCode::OK, format!("ready: database ok, {workflows} workflows\n")).into_response()
        }
        Ok(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no valid workflow is loaded\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: the database does not answer\n").into_response()
        }
    }
}

/// Records every request's count and latency by route pattern (not by raw path, so that case
/// ids do not multiply the series).
pub async fn measure(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::histogram!("beslut_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Err(e) = database_gauges(&state).await {
        tracing::warn!(error = %e, "metrics: database");
    }
    let mut response = crate::telemetry::metrics().render().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// Reads what the database knows into gauges.
async fn database_gauges(state: &AppState) -> Result<(), sqlx::Error> {
    let pool = &state.engine.store.pool;
    let now = beslut_engine::store::millis(state.engine.now());
    let rows = sqlx::query("SELECT workflow, state, status, COUNT(*) FROM cases GROUP BY workflow, state, status")
        .fetch_all(pool)
        .await?;
    for r in rows {
        let labels = [("workflow", r.get::<String, _>(0)), ("state", r.get(1)), ("status", r.get(2))];
        metrics::gauge!("beslut_cases", &labels).set(r.get::<i64, _>(3) as f64);
    }
    let decided = sqlx::query("SELECT COUNT(*) FROM audit WHERE what = 'task.decided'").fetch_one(pool).await?;
    metrics::gauge!("beslut_decisions_total").set(decided.get::<i64, _>(0) as f64);
    let outbox =
        sqlx::query("SELECT kind, COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending' GROUP BY kind")
            .fetch_all(pool)
            .await?;
    for kind in ["email", "webhook", "call", "internal"] {
        let row = outbox.iter().find(|r| r.get::<String, _>(0) == kind);
        let depth = row.map_or(0, |r| r.get::<i64, _>(1));
        let age =
            row.and_then(|r| r.get::<Option<i64>, _>(2)).map_or(0.0, |oldest| (now - oldest).max(0) as f64 / 1000.0);
        metrics::gauge!("beslut_outbox_depth", "kind" => kind).set(depth as f64);
        metrics::gauge!("beslut_outbox_oldest_age_seconds", "kind" => kind).set(age);
    }
    let (pending, oldest) =
        beslut_engine::store::hooks::backlog(pool).await.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    metrics::gauge!("beslut_webhook_deliveries_pending").set(pending as f64);
    metrics::gauge!("beslut_webhook_oldest_pending_age_seconds")
        .set(oldest.map_or(0.0, |o| (now - o).max(0) as f64 / 1000.0));
    let failures = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'dead'), (SELECT COUNT(*) FROM deliveries WHERE status = 'dead'), \
         (SELECT COUNT(*) FROM delivery_attempts WHERE status_code IS NULL OR status_code < 200 OR status_code >= 300)",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("beslut_outbox_dead").set(failures.get::<i64, _>(0) as f64);
    metrics::gauge!("beslut_webhook_deliveries_dead").set(failures.get::<i64, _>(1) as f64);
    metrics::gauge!("beslut_webhook_failed_attempts_total").set(failures.get::<i64, _>(2) as f64);
    Ok(())
}
