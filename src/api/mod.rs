//! The JSON API under `/api/v1`, for the systems around Beslut (the registry, the IT plan,
//! e-services). Every request carries an API token with scopes ([`auth`]); every error is an
//! RFC 9457 problem document with a stable code ([`problem`]). The OpenAPI 3.1 document at
//! `/api/openapi.json` is generated from the handlers below, and `/api/docs` shows it.
//!
//! - [`cases`]: cases and tasks, audit trail and archive export.
//! - [`workflows`]: workflows, their versions and graphs.
//! - [`admin`]: webhook subscriptions and the delivery log.

pub mod admin;
pub mod auth;
pub mod cases;
pub mod problem;
pub mod workflows;

use crate::web::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Beslut API", description = "Cases, tasks, audit and webhooks of Beslut, the workflow engine for \
        municipal decisions. Authenticate with `Authorization: Bearer <token>` (`beslut token create`)."),
    paths(
        cases::start, cases::list, cases::get, cases::withdraw, cases::override_state, cases::decide,
        cases::delegate, cases::tasks, cases::audit_trail, cases::export,
        workflows::list, workflows::get, workflows::graph,
        admin::list, admin::create, admin::delete, admin::deliveries, admin::delivery, admin::redeliver,
    ),
    components(schemas(problem::ProblemDocument, problem::FieldProblem)),
    modifiers(&Security),
    tags((name = "cases"), (name = "tasks"), (name = "audit"), (name = "workflows"), (name = "webhooks")),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API token")).build();
        components.add_security_scheme("token", SecurityScheme::Http(scheme));
    }
}

pub fn router() -> Router<AppState> {
    let v1 = Router::new()
        .route("/cases", post(cases::start).get(cases::list))
        .route("/cases/{id}", get(cases::get))
        .route("/cases/{id}/withdraw", post(cases::withdraw))
        .route("/cases/{id}/override", post(cases::override_state))
        .route("/cases/{id}/tasks/{task}/decide", post(cases::decide))
        .route("/cases/{id}/tasks/{task}/delegate", post(cases::delegate))
        .route("/cases/{id}/audit", get(cases::audit_trail))
        .route("/cases/{id}/export", get(cases::export))
        .route("/tasks", get(cases::tasks))
        .route("/workflows", get(workflows::list))
        .route("/workflows/{id}", get(workflows::get))
        .route("/workflows/{id}/graph", get(workflows::graph))
        .route("/subscriptions", get(admin::list).post(admin::create))
        .route("/subscriptions/{id}", delete(admin::delete))
        .route("/deliveries", get(admin::deliveries))
        .route("/deliveries/{id}", get(admin::delivery))
        .route("/deliveries/{id}/redeliver", post(admin::redeliver))
        .fallback(problem::not_found);
    Router::new().nest("/api/v1", v1).route("/api/openapi.json", get(openapi)).route("/api/docs", get(docs))
}

async fn openapi() -> Response {
    let mut response = ApiDoc::openapi().to_pretty_json().unwrap_or_default().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A readable page of the API, rendered on the server from the same document: no scripts and
/// nothing fetched from elsewhere.
async fn docs() -> Response {
    let doc = ApiDoc::openapi();
    let mut body = String::from(
        "<h1>Beslut API</h1>\n<p>Maskinläsbar beskrivning / machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3.1). \
         Skicka <code>Authorization: Bearer &lt;token&gt;</code>; skapa en token med <code>beslut token create NAMN --scopes read,start</code>.</p>\n",
    );
    for (path, item) in &doc.paths.paths {
        let operations = [("GET", &item.get), ("POST", &item.post), ("DELETE", &item.delete)];
        for (method, op) in operations {
            let Some(op) = op else { continue };
            let summary = op.summary.clone().or_else(|| op.description.clone()).unwrap_or_default();
            body.push_str(&format!(
                "<h2><code>{method} {}</code></h2>\n<p>{}</p>\n",
                crate::web::esc(path),
                crate::web::esc(&summary)
            ));
            let codes: Vec<String> = op.responses.responses.keys().cloned().collect();
            body.push_str(&format!("<p class=\"note\">Svar / responses: {}</p>\n", crate::web::esc(&codes.join(", "))));
        }
    }
    let mut response = crate::web::page(axum::http::StatusCode::OK, Default::default(), "Beslut API", &body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
