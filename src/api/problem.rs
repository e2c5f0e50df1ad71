//! Errors as RFC 9457 `application/problem+json`, each with a stable `code` that clients can
//! match on. Internal failures are logged with an id and answered with that id only: never a
//! database message or a stack trace.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beslut_engine::runtime::Error as R;
use beslut_engine::service::Error;
use beslut_engine::store::StoreError;
use serde::Serialize;
use serde_json::Value;

/// A problem, as handlers return it; small, so that `Result<_, Problem>` stays cheap.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: Option<String>,
    pub errors: Vec<FieldProblem>,
}

/// A problem document as sent (`application/problem+json`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// A URI naming the kind of problem: `https://beslut.se/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// The stable code, e.g. `already-decided`.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-by-field problems with the data sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: u16, code: &'static str, title: &'static str) -> Problem {
        Problem { status, code, title, detail: None, errors: Vec::new() }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(404, "not-found", "Not found").detail(what.to_string())
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(400, code, "The request is not valid").detail(detail)
    }

    /// A failure of ours: logged in full, answered with a reference only.
    pub fn internal(error: impl std::fmt::Display) -> Problem {
        let reference = format!("{:016x}", rand_id());
        tracing::error!(reference = %reference, error = %error, "internal error");
        Problem::new(500, "internal", "Something went wrong on the server")
            .detail(format!("the error was logged with reference {reference}"))
    }
}

impl Problem {
    /// A failure of the store: 503 while the database is out of reach (nothing was saved, and
    /// the request may be repeated), else a logged 500.
    pub fn store(error: impl Into<StoreError>) -> Problem {
        Problem::from(Error::from(error.into()))
    }

    /// The database is out of reach for a moment: nothing was saved, and the client may repeat
    /// the request after `Retry-After` seconds.
    pub fn unavailable(error: impl std::fmt::Display) -> Problem {
        tracing::warn!(error = %error, "database unavailable");
        Problem::new(503, "unavailable", "The service is unavailable for a moment; nothing was saved")
            .detail(format!("{error}; repeat the request in {RETRY_AFTER_SECONDS} seconds"))
    }
}

/// How long clients are asked to wait before repeating a request the database could not take.
pub const RETRY_AFTER_SECONDS: u32 = 2;

fn rand_id() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let document = ProblemDocument {
            kind: format!("https://beslut.se/problems/{}", self.code),
            title: self.title.into(),
            status: self.status,
            code: self.code.into(),
            detail: self.detail,
            errors: self.errors,
        };
        let mut response = (status, Json(document)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

impl From<Error> for Problem {
    fn from(error: Error) -> Problem {
        match error {
            Error::NoSuchCase(id) => Problem::not_found(&format!("no case {id}")),
            Error::NoSuchWorkflow(w) => Problem::not_found(&format!("no valid workflow {w}")),
            Error::Conflict => Problem::new(409, "conflict", "The case changed at the same moment; try again"),
            Error::BadPayload(why) => {
                Problem::new(422, "bad-payload", "The body does not fit the workflow").detail(why)
            }
            e if e.is_unavailable() => Problem::unavailable(e),
            Error::Store(e) => Problem::internal(e),
            Error::Unavailable(_) => unreachable!("is_unavailable covers it"),
            Error::Rejected(r) => rejected(r),
        }
    }
}

/// A refusal by the workflow's rules: the request was understood but cannot be carried out.
fn rejected(r: R) -> Problem {
    let detail = r.to_string();
    let status = match &r {
        R::InvalidData(problems) => {
            let mut p = Problem::new(422, "invalid-data", "The data does not fit the workflow's fields");
            p.errors = problems
                .iter()
                .map(|x| FieldProblem { field: x.field.clone(), message: x.message.en.clone() })
                .collect();
            return p;
        }
        R::NoSuchTask(_) => 404,
        R::AlreadyDecided { .. } | R::TaskClosed | R::CaseClosed | R::NotWaiting => 409,
        R::FrameExceeded { .. } | R::AlreadyStarted => 409,
        R::NotAssignee(_) | R::NotAllowed(_) => 403,
        R::NoSuchAction(_) | R::CommentRequired | R::NoAssignee { .. } => 422,
        R::Expression { .. } | R::Loop | R::NoSuchState(_) => 422,
    };
    let code = r.code();
    Problem::new(status, code, "The workflow refused the request").detail(detail)
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        let status = r.status().as_u16();
        let code = if status == 415 { "unsupported-media-type" } else { "invalid-json" };
        Problem::new(if status == 415 { 415 } else { 400 }, code, "The body is not the JSON expected")
            .detail(r.body_text())
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Problem {
        Problem::bad_request("invalid-path", r.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Problem {
        Problem::bad_request("invalid-query", r.body_text())
    }
}

/// A JSON body whose rejection is a problem document.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Body<T>(pub T);

/// A query string whose rejection is a problem document.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

/// Path parameters whose rejection is a problem document.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

/// Unknown addresses under `/api`.
pub async fn not_found() -> Problem {
    Problem::not_found("no such API address; see /api/openapi.json")
}

/// A JSON value in a response.
pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, Json(serde_json::to_value(value).unwrap_or(Value::Null))).into_response()
}
